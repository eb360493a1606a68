# Helpers shared by the rules: config checks, paths, and the parameters each job depends on.
import json
import re
from dataclasses import asdict
import shlex
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from pipeline_lib import config as cfg
from pipeline_lib.commands import cli
from pipeline_lib import distributed
from pipeline_lib import resources as estimate
from pipeline_lib.data.registry import SIZES
from pipeline_lib import models as model_registry
from pipeline_lib.data import DATASETS, SOURCES

config["adapters"], SWEEPS = cfg.expand_sweeps(config)  # grids become ordinary named adapters
cfg.register_datasets(config)  # datasets declared in the config join the registry before any check
cfg.check(config)  # unknown names stop here, before the DAG is built
UNPINNED = cfg.unpinned(config)
for problem in UNPINNED:
    print(f"WARNING: {problem}", file=sys.stderr)

PY = shlex.quote(sys.executable)
SCRIPTS = shlex.quote(str(Path(workflow.basedir) / "scripts"))
THREADS = config["threads"]
GPU = 1 if config["device"] == "cuda" else 0
FINETUNE_GPUS = config["gpus_per_finetune"] if GPU else 0


def script(name, prefix=PY, threads=False):
    """A rule's shell command: scripts/<name> with the job's files (`params.files`, from its input and output)
    and settings (`params.options`, from its wildcards and the config: Snakemake re-runs a job whose settings
    changed, and ignores params derived from files), both rendered by pipeline_lib.commands.cli, which never
    renders an option without a value; then its threads and its log."""
    return (f"{prefix} {SCRIPTS}/{name} {{params.files}} {{params.options}}"
            + (" --threads {threads}" if threads else "") + " > {log:q} 2>&1")


def on_gpus(count):
    """Command prefix giving a job `count` GPUs of its own (pipeline_lib/gpu.py: flock per device, then
    CUDA_VISIBLE_DEVICES); empty on CPU."""
    if not count:
        return ""
    allocator = shlex.quote(str(Path(workflow.basedir) / "pipeline_lib" / "gpu.py"))
    return f"{PY} {allocator} --gpus {count} --lock-dir {shlex.quote(config['gpu_lock_dir'])} -- "


# python, or python -m torch.distributed.run ... for a data-parallel fine-tune, on the GPUs the job holds
FINETUNE_PY = on_gpus(FINETUNE_GPUS) + " ".join([PY, *distributed.launcher(FINETUNE_GPUS)])
EVALUATE_PY = on_gpus(GPU) + PY
MODEL_SOURCES = {m: model_registry.model_source(m, config["model_defs"].get(m)) for m in config["models"]}
ROWS = cfg.rows(config)


def alternation(names):
    """A wildcard constraint matching exactly these names (and nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


TRAIN_PARTS = cfg.train_parts(config)  # training sets with mixtures expanded to their parts
CONTAMINATION = "results/data/contamination.json"


MODEL_PARAMS = {m: estimate.model_params(m, MODEL_SOURCES[m]) for m in config["models"]}


def items(name, split):
    """Items a job will see: the configured limit, else the set's known size (mixtures: their parts)."""
    known = sum(SIZES.get(p, estimate.DEFAULT_ITEMS) for p in config["mixtures"].get(name, [name]))
    limit = cfg.data_limit(config, name, split)
    return min(limit, known) if limit else known


def finetune_estimate(wc):
    return estimate.finetune(MODEL_PARAMS[wc.model], cfg.train_config(config, wc.adapter), items(wc.train, "train"),
                             config["device"], config["quantization"])


def evaluate_estimate(wc):
    return estimate.evaluate(MODEL_PARAMS[wc.model], cfg.evaluation_settings(config, wc.dataset),
                             items(wc.dataset, "eval"), config["device"], config["quantization"])


def full_path(dataset):
    return f"results/data/full/{dataset}.jsonl"


def raw_path(dataset):
    return f"resources/data/{DATASETS[dataset].source.relpath}"


def model_dir(wildcards):
    source = MODEL_SOURCES[wildcards.model]
    return source["path"] if "path" in source else f"resources/models/{wildcards.model}"


def model_options(model):
    """The options of every script that loads a base model (pipeline_lib/_common.add_model_args)."""
    return {"device": config["device"], "quantization": config["quantization"],
            "trust_remote_code": bool(MODEL_SOURCES[model].get("trust_remote_code"))}


def adapter_dir(model, adapter, train):
    return f"results/adapters/{model}/{adapter}/{train}"


def score_path(model, adapter, train, dataset):
    return f"results/scores/{model}/{adapter}/{train}/{dataset}.json"


ALL_SCORES = [score_path(m, a, t, d) for (m, a, t) in ROWS for d in config["eval_sets"]]
ALL_PREDICTIONS = [p.replace("results/scores/", "results/predictions/")[:-len(".json")] + ".jsonl" for p in ALL_SCORES]
ALL_ADAPTERS = [adapter_dir(m, a, t) for (m, a, t) in ROWS if a != cfg.BASE]
# every table (CSV for the HTML report; Markdown and LaTeX beside it) and figure (PNG for the report; PDF beside)
REPORT_TABLES = ["accuracy_ci", "resources", "published", "significance"]
REPORT_FIGURES = ["accuracy", "tradeoff", "loss", "time"]
REPORT_FIGURES += [f for f, on in (("placement", any(c["placement"] for c in SWEEPS.values())),
                                   ("size", any(c["size"] is not None for c in SWEEPS.values()))) if on]
REPORT_OTHER_OUTPUTS = (["results/tables/accuracy.csv", "results/tables/accuracy.md",
                         "results/tables/contamination.md"]
                        + [f"results/tables/{t}.{ext}" for t in REPORT_TABLES for ext in ("md", "tex")]
                        + [f"results/figures/{f}.pdf" for f in REPORT_FIGURES])
ACCURACY_OUTPUTS = ([f"results/tables/{t}.csv" for t in [*REPORT_TABLES, "contamination"]]
                    + [f"results/figures/{f}.png" for f in REPORT_FIGURES] + REPORT_OTHER_OUTPUTS)
