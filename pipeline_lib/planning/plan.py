"""A run, planned from its config before any job: `prepare(config)` expands sweeps into adapters, builds the run's
dataset registry (built-ins + the config's datasets and pins), checks everything (planning/validation.py) and returns
an immutable RunPlan: the config's views and each job's settings, computed once. The rules read everything from the
plan; the config itself is never changed. Resource estimates: planning/estimates.py (`Estimates`); what the render
job reads: planning/render.py.

Importable without torch: planning a large run stays fast."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType
from typing import Mapping

from pipeline_lib.catalog import answers, base_models, dtypes, methods, protocols
from pipeline_lib.catalog import datasets as data_registry
from pipeline_lib.catalog.published import adapter_labels, training_keys
from pipeline_lib.catalog.runs import BASE, NO_TRAIN_SET, run_name
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.planning import sweeps, tuning, validation

# keys of an adapter entry that are not the method's options
NOT_OPTIONS = ("training", "seeds", "published_as", "tuned_from")
UNKNOWN_ITEMS = 10_000  # a dataset whose size is unknown before preparation, for the resource estimates

__all__ = ["BASE", "NO_TRAIN_SET", "ConfigError", "RunPlan", "prepare", "run_name", "thawed", "train_config"]


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RunPlan:
    config: Mapping                          # the validated config (read-only view; adapters as configured)
    adapters: Mapping[str, dict]             # every adapter: the config's and the sweep members
    runs: Mapping[str, tuple]                # run name -> (adapter, seed or None): one fine-tune each
    sweep_coordinates: Mapping[str, dict]    # sweep member -> family, method, placement, size
    datasets: Mapping[str, data_registry.DatasetSpec]
    model_sources: Mapping[str, dict]        # model -> {"embedded"|"path"|"hub": ...}
    rows: tuple[tuple[str, str, str], ...]   # (model, run, training set) of every fine-tune/evaluation; base first
    train_parts: tuple[str, ...]             # the training datasets, mixtures expanded, each once
    unpinned: tuple[str, ...]                # download-only files the run needs without a pinned sha256
    floating: tuple[str, ...]                # hub models named by a branch rather than a commit (warnings)
    train_configs: Mapping[str, Mapping]     # run -> its fine-tune's training settings
    evaluation_configs: Mapping[tuple, Mapping]  # (evaluation set, protocol) -> its evaluation's settings
    trials: tuple[tuning.Trial, ...] = ()    # tuning: every trial (an adapter of its own, fine-tuned once)
    tuned: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # `<adapter>.tuned` -> adapter

    @property
    def tuning(self) -> Mapping | None:
        return self.config.get("tuning")

    @property
    def trial_rows(self) -> list[tuple[str, str, str]]:
        """(model, trial, training set) of every trial fine-tune and its validation."""
        return [(m, t.name, train) for m in self.models for t in self.trials for train in self.train_sets]

    def is_trial(self, run: str) -> bool:
        """A tuning trial: its failure (a diverged loss, memory) is recorded for the selection, not fatal."""
        return any(t.name == run for t in self.trials)

    def trials_of(self, adapter: str) -> list[tuning.Trial]:
        return [t for t in self.trials if t.adapter == adapter]

    def selections(self) -> list[tuple[str, str, str]]:
        """(model, adapter, training set) of every selection job."""
        return [(m, a, t) for m in self.models for a in self.tuned.values() for t in self.train_sets]

    def tunes(self, run: str) -> str | None:
        """For a run of a tuned adapter (`<adapter>.tuned`, or one seed of it): the adapter it tunes; else None."""
        return self.tuned.get(self.runs[run][0]) if run in self.runs else None

    def train_suites(self, train_set: str) -> list[str]:
        """The suites a training set's parts belong to: their answer types' suites (a mixed-type set: the suite of
        the table it was published for)."""
        suites = set()
        for part in self.mixture_parts(train_set):
            spec = self.datasets[part]
            if spec.suite:
                suites.add(spec.suite)
            elif spec.answer_type != answers.AUTO:
                suites.add(answers.get_type(spec.answer_type).suite)
            else:
                suites.add(spec.published or "math")
        return sorted(suites)

    def validation_suite(self, train_set: str) -> str:
        """The suite a training set's validation split is generated and scored with: its parts' (train_suites)."""
        suites = set(self.train_suites(train_set))
        if len(suites) != 1:
            raise ValueError(f"training set {train_set!r} mixes suites {sorted(suites)}: its validation split has "
                             f"no one way to be generated and scored (use metric: loss)")
        return suites.pop()

    def validation_settings(self, train_set: str) -> dict:
        """How a trial is scored on the validation split of `train_set`: the metric, and for accuracy the protocol's
        settings at the split's suite."""
        v = self.config.get("tuning")["validation"]
        if v["metric"] == "loss":
            return {"metric": "loss"}
        suite = self.validation_suite(train_set)
        protocol = v["protocol"] or next(p for p in self.protocols if protocols.get(p).applies(suite))
        evaluation = {**thawed(self.config["evaluation"]),
                      **({"max_new_tokens": v["max_new_tokens"]} if v["max_new_tokens"] else {})}
        return {"metric": "accuracy", **protocols.settings(protocol, evaluation, suite, self.config["prompt"])}

    @property
    def costs(self) -> Mapping:
        """config `costs`: forgetting and merging, each None when not measured."""
        return self.config.get("costs") or {}

    @property
    def fine_tuned_rows(self) -> list[tuple[str, str, str]]:
        """(model, run, training set) of every fine-tuned row of the tables (not the base, not a tuning trial)."""
        return [row for row in self.rows if row[1] != BASE]

    def forgetting_rows(self) -> list[tuple[str, str, str]]:
        return self.fine_tuned_rows if self.costs.get("forgetting") else []

    def forgetting_options(self) -> dict:
        f = self.costs["forgetting"]
        reference = f["reference"]  # a name ("python-docs") or a source; the job takes JSON either way
        return {"reference": {"builtin": reference} if isinstance(reference, str) else thawed(reference),
                "tokens": f["tokens"], "sequence_length": f["sequence_length"],
                "batch_size": f["batch_size"]}

    def forgetting_inputs(self) -> list[str]:
        """A local reference file is an input of every forgetting job (a changed file re-runs them)."""
        f = self.costs.get("forgetting")
        return [f["reference"]["path"]] if f and isinstance(f["reference"], dict) and "path" in f["reference"] else []

    def merging_dataset(self) -> str | None:
        """The evaluation set the merged/unmerged comparison generates: configured, else the run's first that
        protocol generate applies to (None: the run generates none)."""
        m = self.costs.get("merging")
        if not m:
            return None
        if m["dataset"]:
            return m["dataset"]
        return next((d for d in self.eval_sets if "generate" in self.protocols_for(d)), None)

    def merging_rows(self) -> list[tuple[str, str, str]]:
        """Fine-tuned rows whose adapter can merge, on an unquantized base (a quantized one is never merged)."""
        if self.merging_dataset() is None:
            return []
        return [(m, r, t) for m, r, t in self.fine_tuned_rows
                if methods.merges(self.adapters[self.runs[r][0]]["method"]) and not self.quantization(m)]

    @property
    def eval_sets(self) -> list[str]:
        return list(self.config["eval_sets"])

    @property
    def protocols(self) -> list[str]:
        return list(self.config["evaluation"]["protocols"])

    def protocols_for(self, dataset: str) -> list[str]:
        """The run's protocols that apply to the set's suite (the log-likelihood ones: commonsense only)."""
        return [p for p in self.protocols if protocols.get(p).applies(self.datasets[dataset].suite)]

    @property
    def evaluations(self) -> list[tuple[str, str, str, str, str]]:
        """(model, run, training set, protocol, evaluation set) of every evaluation job, row by row."""
        return [(*row, p, d) for row in self.rows for d in self.eval_sets for p in self.protocols_for(d)]

    @property
    def train_sets(self) -> list[str]:
        return list(self.config["train_sets"])

    @property
    def models(self) -> list[str]:
        return list(self.config["models"])

    @property
    def mixtures(self) -> list[str]:
        return list(self.config["mixtures"])

    @property
    def threads(self) -> int:
        return self.config["threads"]

    @property
    def gpu_lock_dir(self) -> str:
        return self.config["gpu_lock_dir"]

    def gpus(self, rule: str) -> int:
        """The GPUs a fine-tune or evaluation job asks for (its `gpu` resource): none off CUDA."""
        if self.config["device"] != "cuda":
            return 0
        return self.config["gpus_per_finetune"] if rule == "finetune" else 1

    def model_options(self, model: str) -> dict:
        """The options of every entry point that loads a base model (pipeline_lib/cli/common.add_model_args)."""
        return {"device": self.config["device"], "quantization": self.quantization(model) or "none",
                "trust_remote_code": bool(self.model_sources[model].get("trust_remote_code"))}

    def data_origin(self) -> dict:
        """Where the data files come from: a mirror or the base URL (not a job setting: the bytes are verified)."""
        return {"mirror": self.config["data"]["mirror"], "base_url": self.config["data"]["base_url"]}

    def contamination_options(self) -> dict:
        c = self.config["contamination"]
        return {"ngram": c["ngram"], "threshold": c["threshold"], "level": c["level"],
                "policy": self.config["decontaminate"]}

    def waits_for_contamination(self, split: str) -> bool:
        """Only the split the policy drops from depends on the run's other sets; under `fail`, training waits
        for the check; a validation split always (it never holds a test set's question, whatever the policy)."""
        return split == "val" or self.config["decontaminate"] in (split, "fail" if split == "train" else None)

    def selection_options(self, name: str, split: str) -> dict:
        """How a prepared set is selected from the normalized one: its limit (a validation split: its size), the
        sampling seed, the policy."""
        limit = self.config.get("tuning")["validation"]["size"] if split == "val" else self.data_limit(name, split)
        return {"limit": limit, "seed": self.config["data"]["seed"],
                "policy": self.config["decontaminate"], "level": self.config["contamination"]["level"]}

    def holds_out_validation(self, name: str, split: str) -> bool:
        """Under tuning, every training set's fine-tunes train without its validation split."""
        return bool(self.config.get("tuning")) and split == "train" and name in self.train_parts

    def paper_rules(self) -> dict[str, str]:
        """Evaluation set -> the extraction rule upstream scored it by (its answer type's `paper` rule)."""
        return {d: answers.get_type(self.datasets[d].answer_type).paper for d in self.eval_sets}

    def published_names(self) -> dict[str, str]:
        """Our model name -> the published tables', where its source (the catalogue or the config) says."""
        return {m: s["published_as"] for m, s in self.model_sources.items() if s.get("published_as")}

    def published_adapters(self) -> dict[str, list[str]]:
        """Each adapter -> the published adapter names it can meet (pipeline_lib.catalog.published)."""
        return {a: adapter_labels(thawed(spec)) for a, spec in self.adapters.items()}

    def published_training(self) -> dict[str, list[str]]:
        """Each training set -> what published tables call what it was trained on."""
        return {t: training_keys(t, thawed(self.config["datasets"].get(t))) for t in self.train_sets}

    def mixture_parts(self, train_set: str) -> list[str]:
        return list(self.config["mixtures"].get(train_set, [train_set]))

    def adapter_spec(self, run: str) -> dict:
        """The run's adapter: its method and options, without its training overrides and seeds."""
        adapter = self.runs[run][0]
        return {k: thawed(v) for k, v in self.adapters[adapter].items() if k not in NOT_OPTIONS}

    def train_config(self, run: str) -> dict:
        """Global training settings, overridden by the adapter's own `training:` block, with the run's seed and
        prompt template (computed once, in `prepare`)."""
        return thawed(self.train_configs[run])

    def labels(self, model: str, run: str, train: str) -> dict:
        """What every metrics and score file of the row says it is."""
        adapter, seed = (run, None) if run == BASE else self.runs[run]
        return {"model": model, "adapter": adapter, "train_set": train, "seed": seed, "run": run}

    def evaluation_settings(self, dataset: str, protocol: str) -> dict:
        """One evaluation job's settings (pipeline_lib.catalog.protocols)."""
        if protocol not in self.protocols_for(dataset):
            raise ValueError(f"{dataset} is not evaluated under {protocol!r} in this run; its protocols: "
                             f"{', '.join(self.protocols_for(dataset)) or 'none'}")
        return thawed(self.evaluation_configs[(dataset, protocol)])

    def data_limit(self, name: str, split: str) -> int | None:
        data = self.config["data"]
        return data["limits"].get(name, data["train_limit" if split == "train" else "eval_limit"])

    def estimated_items(self, name: str, split: str) -> int:
        """Items a job will see, before any file is read: the configured limit, else the set's known size
        (a mixture: its parts')."""
        known = sum(self.datasets[p].items or UNKNOWN_ITEMS for p in self.mixture_parts(name))
        limit = self.data_limit(name, split)
        return min(limit, known) if limit else known

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


def thawed(value):
    """A plain (JSON-serialisable) copy of a frozen view."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thawed(v) for v in value]
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
    return RunPlan(
        config=_frozen(config), adapters=_frozen(adapters), runs=MappingProxyType(runs),
        sweep_coordinates=_frozen(coordinates), datasets=registry, model_sources=_frozen(sources),
        rows=tuple(rows), train_parts=train_parts,
        unpinned=validation.unpinned([*train_parts, *config["eval_sets"]], registry),
        floating=validation.floating_models(sources),
        train_configs=_frozen(train_configs), evaluation_configs=MappingProxyType(
            {k: _frozen(v) for k, v in evaluation_configs.items()}),
        trials=tuple(trials), tuned=MappingProxyType(tuned))
