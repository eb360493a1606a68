# Tables and figures from every score of the run (`render`), or from whatever scores exist (`tables`).

# every table and figure, as pipeline_lib/report/outputs.py declares them (the render job writes exactly these)
OUTPUTS = outputs.applicable(PLAN.sweep_coordinates, PLAN.protocols, bool(PLAN.tuned))


def render_outputs():
    """The HTML report's entries (CSV tables, PNG figures, captioned), and every other file beside them."""
    captioned = {f"{o.kind}_{o.name}": report(o.reported_file(), category=f"{o.kind.title()}s",
                                              caption=f"../report/{o.caption}.rst") for o in OUTPUTS if o.caption}
    reported = {o.reported_file() for o in OUTPUTS if o.caption}
    return {**captioned, "other": [f for o in OUTPUTS for f in o.files() if f not in reported]}


# what the render job reads besides the scores (pipeline_lib/planning/render.py), as JSON on its command line
RENDER_PLAN = render_plan(PLAN, str(Path(workflow.basedir) / "published")).to_json()


rule render:
    input:
        scores=SCORES,
        predictions=PREDICTIONS,
        adapters=ADAPTERS,
        selections=SELECTIONS,
        forgetting=FORGETTING,
        merging=MERGING,
        contamination=paths.CONTAMINATION,
    output:
        **render_outputs(),
    params:
        files=lambda wc, input: cli(scores=input.scores, predictions=input.predictions, adapters=input.adapters,
                                    selections=input.selections, forgetting=input.forgetting, merging=input.merging,
                                    contamination=input.contamination),
        options=lambda wc: cli(plan=RENDER_PLAN),  # a function: the plan's text (prompt templates) holds braces
    log:
        paths.log("render", "render"),
    shell:
        script("render")


rule tables:
    # Re-render every table and figure from the scores that exist: no training, no evaluation.
    params:
        files=cli(scores=SCORES, predictions=PREDICTIONS, adapters=ADAPTERS, selections=SELECTIONS,
                  forgetting=FORGETTING, merging=MERGING, contamination=paths.CONTAMINATION),
        options=lambda wc: cli(plan=RENDER_PLAN),  # a function: the plan's text (prompt templates) holds braces
    log:
        paths.log("tables", "tables"),
    shell:
        script("render")
