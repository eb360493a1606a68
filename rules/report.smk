# Tables and figures from every score of the run.


rule report:
    input:
        ALL_SCORES,
    output:
        csv="results/tables/accuracy.csv",
        md="results/tables/accuracy.md",
        png="results/figures/accuracy.png",
    params:
        datasets=config["eval_sets"],
    log:
        "logs/report/report.log",
    shell:
        PY + " " + SCRIPTS + "/report.py --scores {input:q} --datasets {params.datasets:q} "
        "--csv {output.csv:q} --md {output.md:q} --png {output.png:q} > {log:q} 2>&1"
