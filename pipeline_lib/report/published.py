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

from pipeline_lib.catalog.datasets import BUILTIN

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
    protocol: dict  # how the published numbers were produced, in the terms a run records (see `differences`)


# LLM-Adapters' finetune.py (train_on_inputs default True, left padding, EOS appended) and evaluate.py /
# commonsense_evaluate.py (batch 1, 4 beams, 256 / 32 new tokens, their extraction rules); its README's tables:
# 3 epochs at cutoff 256. DoRA trained and evaluated with the same scripts.
# Its math_running_commands: batch 16 of micro-batches of 4, 3e-4 (Prefix: 3e-2 in batches of 8 for 5 epochs);
# finetune.py's Trainer: AdamW, linear decay after 100 warmup steps, clipping 1.0, fp16 mixed precision, weight
# decay 0; the alpaca template; the base models named by a hub branch, no commit recorded.
LLM_ADAPTERS = {"train_on_inputs": True, "cutoff_len": 256, "length": {"Prefix": "5 epochs", "": "3 epochs"},
                "decoding": "4-beam search, batch 1", "max_new_tokens": {"math": 256, "commonsense": 32},
                "padding": "left", "answer rule": "upstream's (paper)",
                "learning rate": {"Prefix": "0.03", "": "0.0003"},
                "batch": {"Prefix": "8 per step", "": "16 per step, 4 per forward pass"},
                "schedule": "AdamW, weight decay 0, linear decay, 100 warmup steps, clipping 1.0",
                "precision": "float16 mixed", "prompt": "alpaca", "model revision": "not recorded"}
DORA = {k: v for k, v in LLM_ADAPTERS.items() if k not in ("learning rate", "batch", "length")}  # its own commands
# PEFT's method_comparison/MetaMathQA: the whole text trained on, cutoff 768, 5000 steps, greedy decoding of at
# most 300 new tokens, no EOS appended, its answer parser (the number after "The answer is")
PEFT = {"train_on_inputs": True, "cutoff_len": 768, "length": "5000 optimizer steps", "decoding": "greedy",
        "max_new_tokens": 300, "padding": "right", "answer rule": "the number after 'The answer is'"}

SOURCES = [Source("llm_adapters_readme.csv", "LLM-Adapters README", _llm_adapters, LLM_ADAPTERS),
           Source("dora_commonsense.csv", "DoRA README", _dora, DORA),
           Source("peft_method_comparison.csv", "PEFT method_comparison", _peft, PEFT)]
PROTOCOLS = {s.name: s.protocol for s in SOURCES}


def differences(ours: dict, source: str, adapter: str = "") -> str:
    """Where a row of ours was produced otherwise than the published numbers it stands beside (`adapter`: their
    name for it): `setting: ours X, theirs Y`, for every setting both state; empty where they agree. A setting of
    the source may depend on the suite or on the adapter (its "" entry: every other adapter)."""
    def theirs(value):
        if not isinstance(value, dict):
            return value
        return value.get(ours.get("suite"), value.get(adapter, value.get("")))
    stated = {k: theirs(v) for k, v in PROTOCOLS[source].items()}
    return "; ".join(f"{k}: ours {ours[k]}, theirs {v}" for k, v in stated.items()
                     if k in ours and v is not None and str(ours[k]) != str(v))


def load(directory: str | Path) -> pd.DataFrame:
    parts = [s.read(pd.read_csv(Path(directory) / s.file, keep_default_na=False)).assign(source=s.name)
             for s in SOURCES]
    return pd.concat([p[COLUMNS] for p in parts], ignore_index=True)
