"""Checks and derived values for the run config (after JSON-schema validation has filled defaults)."""
from __future__ import annotations

from dataclasses import asdict, fields

from . import adapters, models
from .data import DATASETS, get_dataset
from .training import TrainConfig

BASE = "base"  # the adapter name meaning "no adapter"
NO_TRAIN_SET = "none"  # training-set slot of the base rows


class ConfigError(ValueError):
    pass


def check(config: dict) -> None:
    """Fail before any job runs on names that do not exist, naming each and listing the valid ones."""
    problems = []
    for name in config["models"]:
        try:
            models.model_source(name, config["model_defs"].get(name))
        except (KeyError, ValueError) as e:
            problems.append(f"models: {e.args[0]}")
    for name, spec in config["adapters"].items():
        if name == BASE:
            problems.append(f"adapters: {BASE!r} is reserved for the base model without adapter")
        try:
            adapters.check_method(spec["method"])
        except ValueError as e:
            problems.append(f"adapters.{name}: {e}")
    for mixture, parts in config["mixtures"].items():
        if mixture in DATASETS:
            problems.append(f"mixtures.{mixture}: the name is already a dataset")
        for part in parts:
            try:
                get_dataset(part, "train")
            except KeyError as e:
                problems.append(f"mixtures.{mixture}: {e.args[0]}")
    for key, split in (("train_sets", "train"), ("eval_sets", "eval")):
        for name in config[key]:
            if key == "train_sets" and name in config["mixtures"]:
                continue
            try:
                if get_dataset(name, split).source.sha256 is None:
                    problems.append(f"{key}: {name} is download-only (its upstream file is not mirrored and its "
                                    f"sha256 is not pinned in pipeline_lib/data/registry.py): it cannot run yet")
            except KeyError as e:
                problems.append(f"{key}: {e.args[0]}")
    try:
        models.check_quantization(config["quantization"], config["device"],
                                  [spec["method"] for spec in config["adapters"].values()])
    except ValueError as e:
        problems.append(f"quantization: {e}")
    if config["gpus_per_finetune"] > 1 and config["device"] != "cuda":
        problems.append(f"gpus_per_finetune: {config['gpus_per_finetune']} needs device: cuda (it is {config['device']})")
    for name in config["data"]["limits"]:
        try:
            get_dataset(name)
        except KeyError as e:
            problems.append(f"data.limits: {e.args[0]}")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def adapter_spec(config: dict, name: str) -> dict:
    """The adapter's method and options, without its training overrides."""
    return {k: v for k, v in config["adapters"][name].items() if k != "training"}


def train_config(config: dict, adapter: str) -> dict:
    """Global training settings, overridden by the adapter's own `training:` block."""
    merged = {**config["training"], **config["adapters"][adapter].get("training", {})}
    valid = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(merged) - valid)
    if unknown:
        raise ConfigError(f"adapters.{adapter}.training: unknown key(s) {unknown}; valid: {sorted(valid)}")
    return asdict(TrainConfig(**merged))


def data_limit(config: dict, name: str, split: str) -> int | None:
    data = config["data"]
    return data["limits"].get(name, data["train_limit" if split == "train" else "eval_limit"])


def rows(config: dict) -> list[tuple[str, str, str]]:
    """(model, adapter, training set) of every row of the result tables; base rows first."""
    out = [(m, BASE, NO_TRAIN_SET) for m in config["models"]] if config["include_base"] else []
    out += [(m, a, t) for m in config["models"] for a in config["adapters"] for t in config["train_sets"]]
    return out
