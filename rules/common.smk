# The run's plan (pipeline_lib/planning/plan.py: names checked, sweeps expanded, the run's dataset registry; a view
# per stage, planning/views.py), the command and resources helpers every rule uses, the wildcards' values, and the
# run's result files.
import re
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from pipeline_lib.catalog.datasets import sources
from pipeline_lib.planning import code, paths
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
SCRIPTS = Path(workflow.basedir) / "scripts"  # one per rule, named as the rule
THREADS = PLAN.threads
SOURCES = sources(PLAN.data.datasets)  # every data file the registry knows, by its path in the mirror layout
# Where data files come from (mirror, base URL): not a param of fetch_data, as the bytes are sha256-verified and
# switching mirror <-> download must not re-run anything (Snakemake's code trigger sees only `{DATA_ORIGIN}`).
DATA_ORIGIN = cli(**PLAN.data.origin())


def script(name, prefix=PY, threads=False, unparams=""):
    """A rule's shell command: `python scripts/<name>.py` with the job's files (`params.files`, from its input and
    output) and settings (`params.options`, from its wildcards and the plan: Snakemake re-runs a job whose settings
    changed, and ignores params derived from files), both rendered by pipeline_lib.planning.commands.cli, which
    never renders an option without a value; then `unparams` (options that must not re-run the job when they
    change: a global of this file), its threads and log. The command begins with the hash of the code the script
    runs (planning/code.py): a change to that code re-makes the job (Snakemake's `code` trigger) and the job
    records which code made it."""
    return (f"{code.VARIABLE}={code.stage_hash(SCRIPTS / f'{name}.py')} "
            f"{prefix} {shlex.quote(str(SCRIPTS / f'{name}.py'))} {{params.files}} {{params.options}}"
            + (f" {unparams}" if unparams else "") + (" --threads {threads}" if threads else "") + " > {log:q} 2>&1")


def on_gpus(data_parallel=False):
    """Command prefix giving a job its `gpu` resource's count of GPUs of its own (scripts/on_gpus.py: the SLURM
    allocation inside a SLURM job, else a flock per device; then CUDA_VISIBLE_DEVICES; nothing for 0), read from
    the job's resources so that a profile's or --set-resources' count is the one used; with `data_parallel`, one
    torchrun process per GPU."""
    return (f"{PY} {shlex.quote(str(SCRIPTS / 'on_gpus.py'))} --gpus {{resources.gpu}}"
            f"{' --data-parallel' if data_parallel else ''} --lock-dir {shlex.quote(PLAN.gpu_lock_dir)} -- {PY}")


FINETUNE_PY = on_gpus(data_parallel=True)
EVALUATE_PY = on_gpus()


def model_job(estimate, gpus):
    """A model job's resources: its GPUs, and the memory, GPU memory and runtime (minutes) `estimate(wildcards)`
    gives (pipeline_lib/planning/estimates.py), so that a scheduler does not overcommit. A retry (profiles/slurm:
    retries) asks for the memory and time times its attempt number: a job that a too-low estimate got killed does
    not meet the same limit again."""
    grows = {k: (lambda wc, attempt, k=k: estimate(wc)[k] * attempt) for k in ("mem_mb", "runtime")}
    return {"gpu": gpus, "gpu_mem_mb": lambda wc: estimate(wc)["gpu_mem_mb"], **grows}


def alternation(names):
    """A wildcard constraint matching exactly these names (and nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


# Every wildcard's values, once; a rule narrows one only where two rules write the same path pattern (which model
# is converted and which downloaded, which dataset is normalized and which loaded).
wildcard_constraints:
    model=alternation(PLAN.models),
    run=alternation([BASE, *PLAN.training.runs]),  # an adapter's name, <adapter>-seed<N>, a trial, <adapter>.tuned
    train=alternation([NO_TRAIN_SET, *PLAN.train_sets]),
    protocol=alternation(PLAN.evaluation.protocols),
    dataset=alternation(PLAN.eval_sets),
    trial=alternation(t.name for t in PLAN.tuning.trials),
    adapter=alternation(PLAN.tuning.tuned.values()),
    mixture=alternation(PLAN.data.mixtures),
    relpath=alternation(SOURCES),
    split="train|eval|val",


def model_dir(wildcards):
    """A model given by path is used in place; others are converted or downloaded by a rule."""
    return PLAN.model_sources[wildcards.model].get("path") or paths.model_dir(wildcards.model)


# the run's result rows: every score and prediction, every fine-tuned adapter
SCORES = [paths.score(*e) for e in PLAN.evaluations]
PREDICTIONS = [paths.predictions(*e) for e in PLAN.evaluations]
ADAPTERS = [paths.adapter_dir(m, a, t) for (m, a, t) in PLAN.fine_tuned_rows]
# tuning: every selection (which carries every trial's validation score and cost)
SELECTIONS = [paths.selection(*s) for s in PLAN.selections()]
# costs: each fine-tune's forgetting and merged-vs-unmerged inference (config `costs`)
FORGETTING = [paths.forgetting(*row) for row in PLAN.costs.forgetting_rows]
MERGING = [paths.merging(*row) for row in PLAN.costs.merging_rows]
# what the render job reads besides the scores (pipeline_lib/planning/render.py, the report stage's view of the plan)
RENDER = render_plan(PLAN, str(Path(workflow.basedir) / "published"))
RENDER_PLAN = RENDER.to_json()
# `snakemake tables` renders whatever exists into results/interim/: no live run's outputs are ever overwritten
INTERIM_PLAN = replace(RENDER, tables=paths.INTERIM_TABLES, figures=paths.INTERIM_FIGURES).to_json()
# every table and figure, as pipeline_lib/report/outputs.py declares them (the render job writes exactly these)
OUTPUTS = outputs.of(RENDER)


RENDER_INPUTS = dict(scores=SCORES, predictions=PREDICTIONS, adapters=ADAPTERS, selections=SELECTIONS,
                     forgetting=FORGETTING, merging=MERGING, contamination=paths.CONTAMINATION)


# --- the rules' input functions (kept here, not beside their rules: Snakemake's linter asks for rules and
# functions in separate files, as the snakemake-workflows template does)


def selection_input(wildcards):
    adapter = PLAN.training.tunes(wildcards.run)
    return [paths.selection(wildcards.model, adapter, wildcards.train)] if adapter else []


def adapter_input(wildcards):
    return [] if wildcards.run == BASE else [paths.adapter_dir(wildcards.model, wildcards.run, wildcards.train)]


def local_dataset_files(wildcards):
    """A local dataset's file, or every file of its save_to_disk folder: a changed file re-runs what uses it."""
    entry = PLAN.data.datasets[wildcards.name].hf
    if "path" not in entry:
        return []  # a hub dataset: its pinned revision, a param, is what changes
    path = Path(entry["path"])
    return sorted(str(f) for f in path.rglob("*") if f.is_file()) if path.is_dir() else [str(path)]


def contamination_input(wildcards):
    return [paths.CONTAMINATION] if PLAN.data.waits_for_contamination(wildcards.split) else []


def holdout_input(wildcards):
    """Under tuning, a training set's validation split: its fine-tunes train without those items."""
    return [paths.prepared_data("val", wildcards.name)] \
        if PLAN.data.holds_out_validation(wildcards.name, wildcards.split) else []


def render_outputs():
    """The HTML report's entries (CSV tables, PNG figures, captioned), and every other file beside them."""
    captioned = {f"{o.kind}_{o.name}": report(o.reported_file(), category=f"{o.kind.title()}s",
                                              caption=f"../captions/{o.caption}.rst") for o in OUTPUTS if o.caption}
    reported = {o.reported_file() for o in OUTPUTS if o.caption}
    return {**captioned, "other": [f for o in OUTPUTS for f in o.files() if f not in reported]}


def evaluation_sets(data, predictions, scores):
    """The evaluate job's sets, in PLAN.evaluation.pairs' order: each (protocol, set)'s data, predictions and
    score files (its settings go apart, in `params.options`, where a change re-runs the job)."""
    return [{"protocol": p, "dataset": d, "data": x, "predictions": y, "score": z}
            for (p, d), x, y, z in zip(PLAN.evaluation.pairs, data, predictions, scores)]
