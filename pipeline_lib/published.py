"""Published results that a run's scores are put beside (published/, each file with its source in its README),
read into one frame: which training set the numbers were trained on, their model and adapter names, our dataset
name, accuracy in percent. A run's row meets a published one when the training set, the model (config
`model_defs.<m>.published_as`), the adapter (its entry's `published_as`, else its method's published name, alone
or with its rank) and the dataset are the same.

trained_on  our training set's name, or `hub:<owner/name>` for a set read from the Hugging Face Hub (a config
            dataset with that `hub` meets it whatever the run calls it)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from . import methods
from .data.registry import BUILTIN

COLUMNS = ["source", "trained_on", "model", "adapter", "dataset", "accuracy"]


def _llm_adapters(frame: pd.DataFrame) -> pd.DataFrame:
    """The LLM-Adapters README's math and commonsense tables, each trained on the built-in set that says so."""
    trained_on = {d.published: name for name, d in BUILTIN.items() if d.published}
    return frame[frame.adapter != ""].assign(trained_on=frame.suite.map(trained_on))


def _dora(frame: pd.DataFrame) -> pd.DataFrame:
    """DoRA's commonsense tables (commonsense_170k): its adapters are told apart by rank (`LoRA r=32`); the rank
    sweep repeats some cells of the main table, which come first."""
    frame = frame.assign(adapter=frame.adapter + " r=" + frame["rank"].astype(str), trained_on="commonsense_170k")
    return frame.drop_duplicates(["model", "adapter", "dataset"])


def _peft(frame: pd.DataFrame) -> pd.DataFrame:
    """PEFT's MetaMathQA benchmark: each experiment on GSM8K's test set, accuracy a fraction."""
    return pd.DataFrame({"trained_on": "hub:meta-math/MetaMathQA", "model": frame.model_id,
                         "adapter": frame.experiment, "dataset": "gsm8k", "accuracy": 100 * frame.test_accuracy})


@dataclass(frozen=True)
class Source:
    file: str
    name: str
    read: Callable[[pd.DataFrame], pd.DataFrame]


SOURCES = [Source("llm_adapters_readme.csv", "LLM-Adapters README", _llm_adapters),
           Source("dora_commonsense.csv", "DoRA README", _dora),
           Source("peft_method_comparison.csv", "PEFT method_comparison", _peft)]


def load(directory: str | Path) -> pd.DataFrame:
    parts = [s.read(pd.read_csv(Path(directory) / s.file, keep_default_na=False)).assign(source=s.name)
             for s in SOURCES]
    return pd.concat([p[COLUMNS] for p in parts], ignore_index=True)


def adapter_labels(spec: dict) -> list[str]:
    """The published names an adapter entry can meet: its own `published_as`, else its method's published name,
    alone and with the entry's rank."""
    if spec.get("published_as"):
        return [spec["published_as"]]
    name = methods.get(spec["method"]).published_as
    if not name:
        return []
    return [name] + ([f"{name} r={spec['r']}"] if "r" in spec else [])


def training_keys(name: str, entry: dict | None) -> list[str]:
    """What a training set can have been trained on in published tables: its name, and its hub dataset."""
    return [name] + ([f"hub:{entry['hub']}"] if entry and entry.get("hub") else [])
