# Tables and figures from every score of the run (`render`), or from whatever scores exist (`tables`).

# every table (CSV for the HTML report; Markdown and LaTeX beside it) and figure (PNG for the report; PDF beside),
# with the caption the HTML report shows it with (report/*.rst)
TABLES = {"accuracy_ci": "accuracy_table", "accuracy": None, "resources": "resources_table",
          "published": "published_table", "significance": "significance_table",
          "contamination": "contamination_table"}
FIGURES = ["accuracy", "tradeoff", "loss", "time"]
FIGURES += [f for f, on in (("placement", any(c["placement"] for c in PLAN.sweep_coordinates.values())),
                            ("size", any(c["size"] is not None for c in PLAN.sweep_coordinates.values()))) if on]


def render_outputs():
    """The HTML report's entries (CSV tables, PNG figures, captioned), and every other format beside them."""
    captioned = {f"table_{t}": report(paths.table(t, "csv"), category="Tables", caption=f"../report/{caption}.rst")
                 for t, caption in TABLES.items() if caption}
    captioned |= {f"figure_{f}": report(paths.figure(f, "png"), category="Figures",
                                        caption=f"../report/{f}_figure.rst") for f in FIGURES}
    others = [paths.table(t, ext) for t, caption in TABLES.items() for ext in ("csv", "md", "tex")
              if ext != "csv" or not caption]
    return {**captioned, "other": others + [paths.figure(f, "pdf") for f in FIGURES]}


def render_options():
    """What the tables and figures depend on besides the score, prediction and metrics files."""
    return dict(
        datasets=PLAN.eval_sets,
        train_parts={t: PLAN.mixture_parts(t) for t in PLAN.train_sets},
        published=str(Path(workflow.basedir) / "published" / "llm_adapters_readme.csv"),
        published_names={m: d["published_as"] for m, d in config["model_defs"].items() if d.get("published_as")},
        methods={a: spec["method"] for a, spec in PLAN.adapters.items()},
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
        files=lambda wc, input: cli(scores=input.scores, adapters=input.adapters, contamination=input.contamination),
        options=cli(**render_options()),
    log:
        paths.log("render", "render"),
    shell:
        script("render.py")


rule tables:
    # Re-render every table and figure from the scores that exist: no training, no evaluation.
    params:
        files=cli(scores=SCORES, adapters=ADAPTERS, contamination=paths.CONTAMINATION),
        options=cli(**render_options()),
    log:
        paths.log("tables", "tables"),
    shell:
        script("render.py")
