# Helpers shared by the rules: config checks, paths, and the parameters each job depends on.
import json
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from pipeline_lib import config as cfg
from pipeline_lib import distributed
from pipeline_lib import models as model_registry
from pipeline_lib.data import DATASETS, SOURCES

cfg.check(config)  # unknown names stop here, before the DAG is built

PY = shlex.quote(sys.executable)
SCRIPTS = shlex.quote(str(Path(workflow.basedir) / "scripts"))
THREADS = config["threads"]
GPU = 1 if config["device"] == "cuda" else 0
FINETUNE_GPUS = config["gpus_per_finetune"] if GPU else 0
# python, or python -m torch.distributed.run ... for a data-parallel fine-tune
FINETUNE_PY = " ".join([PY, *distributed.launcher(FINETUNE_GPUS)])
MODEL_SOURCES = {m: model_registry.model_source(m, config["model_defs"].get(m)) for m in config["models"]}
ROWS = cfg.rows(config)


def alternation(names):
    """A wildcard constraint matching exactly these names (and nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


def raw_path(dataset):
    return f"resources/data/{DATASETS[dataset].source.relpath}"


def model_dir(wildcards):
    source = MODEL_SOURCES[wildcards.model]
    return source["path"] if "path" in source else f"resources/models/{wildcards.model}"


def trust_flag(wildcards):
    return "--trust-remote-code" if MODEL_SOURCES[wildcards.model].get("trust_remote_code") else ""


def adapter_dir(model, adapter, train):
    return f"results/adapters/{model}/{adapter}/{train}"


def score_path(model, adapter, train, dataset):
    return f"results/scores/{model}/{adapter}/{train}/{dataset}.json"


ALL_SCORES = [score_path(m, a, t, d) for (m, a, t) in ROWS for d in config["eval_sets"]]
ACCURACY_OUTPUTS = ["results/tables/accuracy.csv", "results/tables/accuracy.md", "results/figures/accuracy.png"]
