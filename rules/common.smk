# The run's plan (pipeline_lib/planning/plan.py: names checked, sweeps expanded, the run's dataset registry), the
# command helper every rule uses, and the few functions the rules share.
import re
import shlex
import sys
from pathlib import Path

from pipeline_lib.catalog.datasets import sources
from pipeline_lib.planning import paths
from pipeline_lib.planning.commands import cli
from pipeline_lib.planning.estimates import Estimates
from pipeline_lib.planning.plan import BASE, NO_TRAIN_SET, ConfigError, prepare
from pipeline_lib.planning.render import render_plan
from pipeline_lib.report import outputs

try:
    PLAN = prepare(config)  # every problem of the config stops the run here, before the DAG is built
except ConfigError as error:
    raise SystemExit(str(error))
for problem in [*PLAN.unpinned, *PLAN.floating]:
    print(f"WARNING: {problem}", file=sys.stderr)
ESTIMATES = Estimates(PLAN)  # each job's memory, GPU memory and runtime, for the rules' resources

PY = shlex.quote(sys.executable)
THREADS = PLAN.threads
SOURCES = sources(PLAN.datasets)  # every data file the registry knows, by its path in the mirror layout
# Where data files come from (mirror, base URL): not a param of fetch_data, as the bytes are sha256-verified and
# switching mirror <-> download must not re-run anything (Snakemake's code trigger sees only `{DATA_ORIGIN}`).
DATA_ORIGIN = cli(**PLAN.data_origin())


def script(name, prefix=PY, threads=False, unparams=""):
    """A rule's shell command: `python -m pipeline_lib.cli.<name>` with the job's files (`params.files`, from its
    input and output) and settings (`params.options`, from its wildcards and the config: Snakemake re-runs a job
    whose settings changed, and ignores params derived from files), both rendered by
    pipeline_lib.planning.commands.cli, which never renders an option without a value; then `unparams` (options
    that must not re-run the job when they change: a global of this file), its threads and log."""
    return (f"{prefix} -m pipeline_lib.cli.{name} {{params.files}} {{params.options}}"
            + (f" {unparams}" if unparams else "") + (" --threads {threads}" if threads else "") + " > {log:q} 2>&1")


def on_gpus(data_parallel=False):
    """Command prefix giving a job its `gpu` resource's count of GPUs of its own (pipeline_lib/runtime/gpu.py: the
    SLURM allocation inside a SLURM job, else a flock per device; then CUDA_VISIBLE_DEVICES; nothing for 0),
    read from the job's resources so that a profile's or --set-resources' count is the one used; with
    `data_parallel`, one torchrun process per GPU."""
    return (f"{PY} -m pipeline_lib.runtime.gpu --gpus {{resources.gpu}}{' --data-parallel' if data_parallel else ''} "
            f"--lock-dir {shlex.quote(PLAN.gpu_lock_dir)} -- {PY}")


FINETUNE_PY = on_gpus(data_parallel=True)
EVALUATE_PY = on_gpus()


def alternation(names):
    """A wildcard constraint matching exactly these names (and nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


def model_dir(wildcards):
    """A model given by path is used in place; others are converted or downloaded by a rule."""
    return PLAN.model_sources[wildcards.model].get("path") or paths.model_dir(wildcards.model)


# the run's result rows: every score and prediction, every fine-tuned adapter
SCORES = [paths.score(*e) for e in PLAN.evaluations]
PREDICTIONS = [paths.predictions(*e) for e in PLAN.evaluations]
ADAPTERS = [paths.adapter_dir(m, a, t) for (m, a, t) in PLAN.rows if a != BASE]
# tuning: every selection (which carries every trial's validation score and cost)
SELECTIONS = [paths.selection(*s) for s in PLAN.selections()]
# costs: each fine-tune's forgetting and merged-vs-unmerged inference (config `costs`)
FORGETTING = [paths.forgetting(*row) for row in PLAN.forgetting_rows()]
MERGING = [paths.merging(*row) for row in PLAN.merging_rows()]
