# Tables and figures from every score of the run.


rule report:
    input:
        scores=ALL_SCORES,
        contamination=CONTAMINATION,
    output:
        csv="results/tables/accuracy.csv",
        md="results/tables/accuracy.md",
        png="results/figures/accuracy.png",
        contamination_csv="results/tables/contamination.csv",
        contamination_md="results/tables/contamination.md",
    params:
        datasets=config["eval_sets"],
        train_parts=json.dumps({t: config["mixtures"].get(t, [t]) for t in config["train_sets"]}),
    log:
        "logs/report/report.log",
    shell:
        PY + " " + SCRIPTS + "/report.py --scores {input.scores:q} --datasets {params.datasets:q} "
        "--csv {output.csv:q} --md {output.md:q} --png {output.png:q} --contamination {input.contamination:q} "
        "--train-parts {params.train_parts:q} --contamination-csv {output.contamination_csv:q} "
        "--contamination-md {output.contamination_md:q} > {log:q} 2>&1"
