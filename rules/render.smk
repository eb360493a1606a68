# Tables and figures from every score of the run (`render`), or from whatever scores exist (`tables`).

# every table and figure, as pipeline_lib/outputs.py declares them (the render job writes exactly these)
OUTPUTS = outputs.applicable(PLAN.sweep_coordinates, PLAN.protocols)


def render_outputs():
    """The HTML report's entries (CSV tables, PNG figures, captioned), and every other file beside them."""
    captioned = {f"{o.kind}_{o.name}": report(o.reported_file(), category=f"{o.kind.title()}s",
                                              caption=f"../report/{o.caption}.rst") for o in OUTPUTS if o.caption}
    reported = {o.reported_file() for o in OUTPUTS if o.caption}
    return {**captioned, "other": [f for o in OUTPUTS for f in o.files() if f not in reported]}


def render_plan():
    """What the tables and figures depend on besides the score, prediction and metrics files."""
    return dict(
        datasets=PLAN.eval_sets, paper_rules=PLAN.paper_rules(), protocols=PLAN.protocols,
        train_parts={t: PLAN.mixture_parts(t) for t in PLAN.train_sets},
        published=str(Path(workflow.basedir) / "published"),
        published_names=PLAN.published_names(), published_adapters=PLAN.published_adapters(),
        published_training=PLAN.published_training(),
        sweeps=PLAN.sweep_coordinates, tables=paths.TABLES, figures=paths.FIGURES)


rule render:
    input:
        scores=SCORES,
        predictions=PREDICTIONS,
        adapters=ADAPTERS,
        contamination=paths.CONTAMINATION,
    output:
        **render_outputs(),
    params:
        files=lambda wc, input: cli(scores=input.scores, predictions=input.predictions, adapters=input.adapters,
                                    contamination=input.contamination),
        options=cli(plan=render_plan()),
    log:
        paths.log("render", "render"),
    shell:
        script("render.py")


rule tables:
    # Re-render every table and figure from the scores that exist: no training, no evaluation.
    params:
        files=cli(scores=SCORES, predictions=PREDICTIONS, adapters=ADAPTERS, contamination=paths.CONTAMINATION),
        options=cli(plan=render_plan()),
    log:
        paths.log("tables", "tables"),
    shell:
        script("render.py")
