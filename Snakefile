# PEFT benchmark pipeline: data -> fine-tune -> evaluate -> tables and figures. See README.md.
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"


onstart:
    # a real run stops here, before any job, when a dataset's file cannot be verified (a dry run shows the DAG)
    if PLAN.unpinned:
        raise SystemExit("cannot run: " + "\n  ".join(PLAN.unpinned))


include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/finetune.smk"
include: "rules/tuning.smk"
include: "rules/evaluate.smk"
include: "rules/costs.smk"
include: "rules/render.smk"


rule all:
    # the run's final outputs are the tables and figures; everything else is built on the way to them
    input:
        rules.render.output,
    default_target: True
