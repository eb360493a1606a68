# Tables and figures from every score of the run (`report`), or from whatever scores exist (`tables`).

def report_options():
    """What the tables and figures depend on besides the score, prediction and metrics files."""
    return dict(
        datasets=config["eval_sets"],
        train_parts={t: config["mixtures"].get(t, [t]) for t in config["train_sets"]},
        published=str(Path(workflow.basedir) / "published" / "llm_adapters_readme.csv"),
        published_names={m: d["published_as"] for m, d in config["model_defs"].items() if d.get("published_as")},
        methods={a: spec["method"] for a, spec in config["adapters"].items()},
        sweeps=SWEEPS, tables="results/tables", figures="results/figures")


CAPTIONS = {"accuracy_ci": "accuracy_table", "resources": "resources_table", "published": "published_table",
            "significance": "significance_table", "contamination": "contamination_table"}
# the CSV tables and PNG figures go into the HTML report (snakemake --report results/report.html)
REPORT_OUTPUTS = {
    **{f"table_{t}": report(f"results/tables/{t}.csv", category="Tables", caption=f"../report/{CAPTIONS[t]}.rst")
       for t in [*REPORT_TABLES, "contamination"]},
    **{f"figure_{f}": report(f"results/figures/{f}.png", category="Figures", caption=f"../report/{f}_figure.rst")
       for f in REPORT_FIGURES},
    "other": REPORT_OTHER_OUTPUTS,
}


rule report:
    input:
        scores=ALL_SCORES,
        predictions=ALL_PREDICTIONS,
        adapters=ALL_ADAPTERS,
        contamination=CONTAMINATION,
    output:
        **REPORT_OUTPUTS,
    params:
        files=lambda wc, input: cli(scores=input.scores, adapters=input.adapters, contamination=input.contamination),
        options=cli(**report_options()),
    log:
        "logs/report/report.log",
    shell:
        script("report.py")


rule tables:
    # Re-render every table and figure from the scores that exist: no training, no evaluation.
    params:
        files=cli(scores=ALL_SCORES, adapters=ALL_ADAPTERS, contamination=CONTAMINATION),
        options=cli(**report_options()),
    log:
        "logs/tables/tables.log",
    shell:
        script("report.py")
