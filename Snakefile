# PEFT benchmark pipeline: data -> fine-tune -> evaluate -> tables. See README.md.
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"


onstart:
    # a real run stops here, before any job, when a dataset's file cannot be verified (a dry run shows the DAG)
    if UNPINNED:
        raise SystemExit("cannot run: " + "\n  ".join(UNPINNED))


rule all:
    input:
        ACCURACY_OUTPUTS,
    default_target: True


include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/finetune.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
