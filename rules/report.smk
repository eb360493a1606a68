# Tables and figures from every score of the run (`report`), or from whatever scores exist (`tables`).

REPORT_ARGS = (
    "--datasets {params.datasets:q} --train-parts {params.train_parts:q} --published {params.published:q} "
    "--published-names {params.published_names:q} --methods {params.methods:q} --sweeps {params.sweeps:q} "
    "--tables results/tables --figures results/figures"
)


def report_params():
    return {
        "datasets": config["eval_sets"],
        "train_parts": json.dumps({t: config["mixtures"].get(t, [t]) for t in config["train_sets"]}),
        "published": str(Path(workflow.basedir) / "published" / "llm_adapters_readme.csv"),
        "published_names": json.dumps({m: d["published_as"] for m, d in config["model_defs"].items()
                                       if d.get("published_as")}),
        "methods": json.dumps({a: spec["method"] for a, spec in config["adapters"].items()}),
        "sweeps": json.dumps(SWEEPS),
    }


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
        **report_params(),
    log:
        "logs/report/report.log",
    shell:
        PY + " " + SCRIPTS + "/report.py --scores {input.scores:q} --adapters {input.adapters:q} "
        "--contamination {input.contamination:q} " + REPORT_ARGS + " > {log:q} 2>&1"


rule tables:
    # Re-render every table and figure from the scores that exist: no training, no evaluation.
    params:
        **report_params(),
        scores=ALL_SCORES,
        adapters=ALL_ADAPTERS,
    log:
        "logs/tables/tables.log",
    shell:
        PY + " " + SCRIPTS + "/report.py --scores {params.scores:q} --adapters {params.adapters:q} "
        "--contamination " + CONTAMINATION + " " + REPORT_ARGS + " > {log:q} 2>&1"
