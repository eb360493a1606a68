"""A run, planned from its config before any job: `prepare(config)` expands sweeps into adapters, builds the run's
dataset registry (built-ins + the config's datasets and pins), checks everything (planning/validation.py) and returns
an immutable RunPlan: the config's views and each job's settings, computed once. The rules read everything from the
plan; the config itself is never changed. Resource estimates: planning/estimates.py (`Estimates`); what the render
job reads: planning/render.py.

Importable without torch: planning a large run stays fast."""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from pipeline_lib.catalog import base_models, dtypes, methods, protocols
from pipeline_lib.catalog import datasets as data_registry
from pipeline_lib.catalog.runs import BASE, NO_TRAIN_SET, run_name
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.planning import sweeps, tuning, validation, views
from pipeline_lib.planning.views import thawed

DEFAULT_GPU_LOCKS = "/tmp/peft-bench-gpu-locks"  # per host: /tmp is the host's own
__all__ = ["BASE", "NO_TRAIN_SET", "ConfigError", "RunPlan", "prepare", "run_name", "thawed", "train_config"]


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RunPlan:
    """What the run is (its models, rows and runs, datasets, model sources) and what every model-loading job shares
    (labels, model options, GPUs), with one view per stage (planning/views.py) that the stage's rules read."""
    config: Mapping                          # the validated config (read-only view; adapters as configured)
    adapters: Mapping[str, dict]             # every adapter: the config's and the sweep members
    runs: Mapping[str, tuple]                # run name -> (adapter, seed or None): one fine-tune each
    sweep_coordinates: Mapping[str, dict]    # sweep member -> family, method, placement, size
    datasets: Mapping[str, data_registry.DatasetSpec]
    model_sources: Mapping[str, dict]        # model -> {"embedded"|"path"|"hub": ...}
    rows: tuple[tuple[str, str, str], ...]   # (model, run, training set) of every fine-tune/evaluation; base first
    unpinned: tuple[str, ...]                # download-only files the run needs without a pinned sha256
    floating: tuple[str, ...]                # hub models named by a branch rather than a commit (warnings)
    data: views.DataPlan
    training: views.TrainingPlan
    evaluation: views.EvaluationPlan
    tuning: views.TuningPlan
    costs: views.CostsPlan

    @property
    def models(self) -> list[str]:
        return list(self.config["models"])

    @property
    def train_sets(self) -> list[str]:
        return list(self.config["train_sets"])

    @property
    def eval_sets(self) -> list[str]:
        return list(self.config["eval_sets"])

    @property
    def fine_tuned_rows(self) -> list[tuple[str, str, str]]:
        """(model, run, training set) of every fine-tuned row of the tables (not the base, not a tuning trial)."""
        return [row for row in self.rows if row[1] != BASE]

    @property
    def evaluations(self) -> list[tuple[str, str, str, str, str]]:
        """(model, run, training set, protocol, evaluation set) of every evaluation job, row by row."""
        return [(*row, p, d) for row in self.rows for p, d in self.evaluation.pairs]

    @property
    def trial_rows(self) -> list[tuple[str, str, str]]:
        """(model, trial, training set) of every trial fine-tune and its validation."""
        return [(m, t.name, train) for m in self.models for t in self.tuning.trials for train in self.train_sets]

    def selections(self) -> list[tuple[str, str, str]]:
        """(model, adapter, training set) of every selection job."""
        return [(m, a, t) for m in self.models for a in self.tuning.tuned.values() for t in self.train_sets]

    @property
    def threads(self) -> int:
        return self.config["threads"]

    @property
    def gpu_lock_dir(self) -> str:
        """Absolute: every run on the host locks the same device files (a relative default gave each working folder
        its own, so two runs could take one GPU)."""
        return str(Path(self.config["gpu_lock_dir"] or DEFAULT_GPU_LOCKS).expanduser().resolve())

    def gpus(self, rule: str) -> int:
        """The GPUs a fine-tune or evaluation job asks for (its `gpu` resource): none off CUDA."""
        if self.config["device"] != "cuda":
            return 0
        return self.config["gpus_per_finetune"] if rule == "finetune" else 1

    def model_options(self, model: str) -> dict:
        """The options of every script that loads a base model (planning.commands.add_model_args)."""
        return {"device": self.config["device"], "quantization": self.quantization(model) or "none",
                "trust_remote_code": bool(self.model_sources[model].get("trust_remote_code"))}

    def labels(self, model: str, run: str, train: str) -> dict:
        """What every metrics and score file of the row says it is."""
        adapter, seed = (run, None) if run == BASE else self.runs[run]
        return {"model": model, "adapter": adapter, "train_set": train, "seed": seed, "run": run}

    def quantization(self, model: str) -> dict | None:
        """The base's bitsandbytes settings (model_defs.<model>.quantization over the global `quantization`),
        None when unquantized."""
        entry = self.config["model_defs"].get(model, {})
        return base_models.quantization_settings(thawed(entry.get("quantization", self.config["quantization"])))


def train_config(training: Mapping, adapter: Mapping, name: str) -> dict:
    merged = {**training, **adapter.get("training", {})}
    valid = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(merged) - valid)
    if unknown:
        raise ConfigError(f"adapters.{name}.training: unknown key(s) {unknown}; valid: {sorted(valid)}")
    return asdict(TrainConfig(**{**merged, "autocast": dtypes.canonical(merged.get("autocast", dtypes.AUTO))}))


def _frozen(value):
    """A read-only deep view: mappings become MappingProxyType, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def prepare(config: dict) -> RunPlan:
    """The plan of a run whose config the schema has validated (defaults filled); every problem at once, as a
    ConfigError naming each key and the valid values."""
    config = copy.deepcopy(config)
    try:
        adapters, coordinates = sweeps.expand_all(config["sweeps"], config["adapters"])
    except sweeps.SweepError as e:
        raise ConfigError(f"invalid config:\n  {e}") from e
    try:
        registry = data_registry.with_config(config["datasets"], config["data"]["pins"])
    except data_registry.RegistryError as e:
        raise ConfigError(f"invalid config:\n  {e.args[0]}") from e
    trials, tuned = (), {}
    if config.get("tuning"):
        try:
            trial_specs, trials, tuned_specs = tuning.expand(config.get("tuning"), adapters)
        except tuning.TuningError as e:
            raise ConfigError(f"invalid config:\n  {e}") from e
        tuned = {name: spec["tuned_from"] for name, spec in tuned_specs.items()}
        adapters = {**adapters, **tuned_specs, **trial_specs}
    problems = validation.problems(config, adapters, registry)
    trial_names = {t.name for t in trials}  # a trial runs once, at training.seed: seeds apply to the chosen setting
    runs = {run_name(a, s): (a, s) for a, spec in adapters.items()
            for s in ([None] if a in trial_names else spec.get("seeds", config["seeds"]) or [None])}
    problems += [f"adapters.{a}: its run {r!r} with seed {s} clashes with the adapter of that name"
                 for r, (a, s) in runs.items() if s is not None and r in adapters]
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    train_parts = tuple(dict.fromkeys(p for t in config["train_sets"] for p in config["mixtures"].get(t, [t])))
    if config.get("tuning"):
        problems += tuning.validation_problems(config.get("tuning"), list(train_parts),
                                               {p: registry[p].items for p in train_parts if p in registry})
        if problems:
            raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    rows = [(m, BASE, NO_TRAIN_SET) for m in config["models"]] if config["include_base"] else []
    rows += [(m, r, t) for m in config["models"] for r, (a, _) in runs.items() if a not in trial_names
             for t in config["train_sets"]]
    training = {**config["training"], "prompt": config["prompt"]}
    train_configs = {r: {**train_config(training, adapters[a], a), **({"seed": s} if s is not None else {})}
                     for r, (a, s) in runs.items()}
    evaluation_configs = {(d, p): protocols.settings(p, config["evaluation"], registry[d].suite, config["prompt"])
                          for d in config["eval_sets"] for p in config["evaluation"]["protocols"]
                          if protocols.get(p).applies(registry[d].suite)}
    sources = {m: base_models.model_source(m, config["model_defs"].get(m)) for m in config["models"]}
    frozen = _frozen(config)
    data = views.DataPlan(
        datasets=registry, settings=frozen["data"], train_sets=tuple(config["train_sets"]),
        eval_sets=tuple(config["eval_sets"]), train_parts=train_parts, mixtures=frozen["mixtures"],
        policy=config["decontaminate"], contamination=frozen["contamination"],
        validation_size=config["tuning"]["validation"]["size"] if config.get("tuning") else None)
    evaluation = views.EvaluationPlan(
        eval_sets=tuple(config["eval_sets"]), protocols=tuple(config["evaluation"]["protocols"]),
        suites=MappingProxyType({d: registry[d].suite for d in config["eval_sets"]}),
        answer_types=MappingProxyType({d: registry[d].answer_type for d in config["eval_sets"]}),
        configs=MappingProxyType({k: _frozen(v) for k, v in evaluation_configs.items()}))
    plan = RunPlan(
        config=frozen, adapters=_frozen(adapters), runs=MappingProxyType(runs),
        sweep_coordinates=_frozen(coordinates), datasets=registry, model_sources=_frozen(sources),
        rows=tuple(rows), unpinned=validation.unpinned([*train_parts, *config["eval_sets"]], registry),
        floating=validation.floating_models(sources), data=data, evaluation=evaluation,
        training=views.TrainingPlan(adapters=_frozen(adapters), runs=MappingProxyType(runs),
                                    settings=_frozen(train_configs), trials=frozenset(trial_names),
                                    tuned=MappingProxyType(tuned)),
        tuning=views.TuningPlan(settings=frozen.get("tuning"), trials=tuple(trials), tuned=MappingProxyType(tuned),
                                validation=_frozen(_validation(config, data, evaluation))),
        costs=None)
    return dataclasses.replace(plan, costs=_costs(config, plan))


def _validation(config: dict, data: views.DataPlan, evaluation: views.EvaluationPlan) -> dict:
    """Training set -> how its tuning trials are scored on its validation split: the metric, and for accuracy the
    protocol's settings at the split's suite (a mixture of suites has no one way: an error, raised when asked)."""
    v = (config.get("tuning") or {}).get("validation")
    if not v:
        return {}
    if v["metric"] == "loss":
        return {t: {"metric": "loss"} for t in config["train_sets"]}
    found = {}
    for train_set in config["train_sets"]:
        suites = data.suites_of(train_set)
        if len(suites) != 1:
            found[train_set] = {"error": f"training set {train_set!r} mixes suites {suites}: its validation split "
                                         f"has no one way to be generated and scored (use metric: loss)"}
            continue
        protocol = v["protocol"] or next(p for p in evaluation.protocols if protocols.get(p).applies(suites[0]))
        settings = {**config["evaluation"], **({"max_new_tokens": v["max_new_tokens"]} if v["max_new_tokens"] else {})}
        found[train_set] = {"metric": "accuracy", **protocols.settings(protocol, settings, suites[0], config["prompt"])}
    return found


def _costs(config: dict, plan: RunPlan) -> views.CostsPlan:
    """The cost jobs: forgetting for every fine-tuned row; merged against unmerged on the configured set (else the
    run's first that protocol generate applies to) for rows whose method merges on an unquantized base."""
    costs = plan.config.get("costs") or {}
    forgetting, merging = costs.get("forgetting"), costs.get("merging")
    dataset = merging and (merging["dataset"] or next(
        (d for d in plan.eval_sets if "generate" in plan.evaluation.protocols_for(d)), None))
    mergeable = [(m, r, t) for m, r, t in plan.fine_tuned_rows
                 if methods.merges(plan.adapters[plan.runs[r][0]]["method"]) and not plan.quantization(m)]
    return views.CostsPlan(forgetting=forgetting, merging=merging, merging_dataset=dataset or None,
                           forgetting_rows=tuple(plan.fine_tuned_rows if forgetting else ()),
                           merging_rows=tuple(mergeable if dataset else ()))
