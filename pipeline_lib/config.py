"""Checks and derived values for the run config (after JSON-schema validation has filled defaults)."""
from __future__ import annotations

from dataclasses import asdict, fields

from . import methods, models
from .data import DATASETS, get_dataset
from .train_config import TrainConfig

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
            methods.check_method(spec["method"])
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
                get_dataset(name, split)
            except KeyError as e:
                problems.append(f"{key}: {e.args[0]}")
    problems += _target_problems(config)
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


def expand_sweeps(config: dict) -> tuple[dict, dict]:
    """(adapters with every sweep member added, member -> sweep coordinates); a bad sweep is a ConfigError."""
    from . import sweeps

    try:
        return sweeps.expand_all(config["sweeps"], config["adapters"])
    except sweeps.SweepError as e:
        raise ConfigError(f"invalid config:\n  {e}") from e


def register_datasets(config: dict) -> None:
    """Add the config's `datasets:` entries to the registry (names that clash with built-ins fail)."""
    from .data import registry

    problems = []
    for name, entry in config["datasets"].items():
        try:
            registry.register(name, entry)
        except KeyError as e:
            problems.append(e.args[0])
    for name, sha256 in config["data"]["pins"].items():
        try:
            registry.pin(name, sha256)
        except KeyError as e:
            problems.append(f"data.pins: {e.args[0]}")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def train_parts(config: dict) -> list[str]:
    """The run's training datasets, mixtures expanded, each once."""
    parts = [p for t in config["train_sets"] for p in config["mixtures"].get(t, [t])]
    return list(dict.fromkeys(parts))


def _target_problems(config: dict) -> list[str]:
    """Target modules that do not exist in a model's architecture, where the architecture is known before any
    download (embedded models, local directories)."""
    from . import placement

    problems = []
    for model in config["models"]:
        model_type = models.model_type(model, config["model_defs"].get(model))
        if model_type not in placement.ARCHITECTURES:
            continue
        for name, spec in config["adapters"].items():
            targets = spec.get("target_modules")
            if isinstance(targets, list):
                bad = placement.unknown_targets(model_type, targets)
                if bad:
                    problems.append(f"adapters.{name}.target_modules: {bad} not in {model} ({model_type}); valid: "
                                    f"{', '.join(placement.known_modules(model_type))}, or a placement: "
                                    f"{', '.join(placement.PLACEMENTS)}, paper")
    return problems


def unpinned(config: dict) -> list[str]:
    """The run's download-only datasets (not mirrored, no sha256 pinned): a real run must stop before any job,
    saying where each file comes from and how to pin it; a dry run can still show the whole DAG."""
    from .data import DATASETS

    names = [*train_parts(config), *config["eval_sets"]]
    return [f"{n}: download-only file {DATASETS[n].source.url} has no pinned sha256. Download it, check it, "
            f"and pin it in the config: data: {{pins: {{{n}: <sha256>}}}} (then data.mirror or the URL supplies it)"
            for n in dict.fromkeys(names) if n in DATASETS and DATASETS[n].source.sha256 is None]


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


def evaluation_settings(config: dict, dataset: str) -> dict:
    """One evaluation's generation settings: the config's `evaluation` block with its set's suite defaults, or
    upstream's settings under `protocol: paper` (pipeline_lib.suites)."""
    from . import suites

    return suites.settings(config["evaluation"], DATASETS[dataset].suite or "math")


def data_limit(config: dict, name: str, split: str) -> int | None:
    data = config["data"]
    return data["limits"].get(name, data["train_limit" if split == "train" else "eval_limit"])


def rows(config: dict) -> list[tuple[str, str, str]]:
    """(model, adapter, training set) of every row of the result tables; base rows first."""
    out = [(m, BASE, NO_TRAIN_SET) for m in config["models"]] if config["include_base"] else []
    out += [(m, a, t) for m in config["models"] for a in config["adapters"] for t in config["train_sets"]]
    return out
