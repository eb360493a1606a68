"""A run, planned from its config before any job: `prepare(config)` checks every name (models, methods,
datasets, training sets, target modules), expands sweeps into adapters and checks their options against the
schema, builds the run's dataset registry (built-ins + the config's datasets and pins) and returns an
immutable RunPlan. The rules read everything from the plan; the config itself is never changed.

Importable without torch: planning a large run stays fast."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from . import answers, methods, models, prompts, protocols, published, resources, sweeps, targets
from .data import registry as data_registry
from .train_config import TrainConfig

BASE = "base"  # the adapter name meaning "no adapter"
NO_TRAIN_SET = "none"  # training-set slot of the base rows
NOT_OPTIONS = ("training", "seeds", "published_as")  # keys of an adapter entry that are not the method's options


def run_name(adapter: str, seed: int | None) -> str:
    """The name of one fine-tune of an adapter in paths and rule wildcards: the adapter's own name without
    seeds, `<adapter>-seed<N>` with them (stable when the seed list grows)."""
    return adapter if seed is None else f"{adapter}-seed{seed}"
SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"
UNKNOWN_ITEMS = 10_000  # a dataset whose size is unknown before preparation, for the resource estimates


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
    # estimates and sizes, computed once per key: the rules ask for each job's memory, GPU memory and runtime
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

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
        """The options of every script that loads a base model (scripts/_common.add_model_args)."""
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
        for the check."""
        return self.config["decontaminate"] in (split, "fail" if split == "train" else None)

    def selection_options(self, name: str, split: str) -> dict:
        """How a prepared set is selected from the normalized one: its limit, the sampling seed, the policy."""
        return {"limit": self.data_limit(name, split), "seed": self.config["data"]["seed"],
                "policy": self.config["decontaminate"], "level": self.config["contamination"]["level"]}

    def paper_rules(self) -> dict[str, str]:
        """Evaluation set -> the extraction rule upstream scored it by (its answer type's `paper` rule)."""
        return {d: answers.get_type(self.datasets[d].answer_type).paper for d in self.eval_sets}

    def published_names(self) -> dict[str, str]:
        """Our model name -> the published tables', where the config says."""
        return {m: d["published_as"] for m, d in self.config["model_defs"].items() if d.get("published_as")}

    def published_adapters(self) -> dict[str, list[str]]:
        """Each adapter -> the published adapter names it can meet (pipeline_lib.published)."""
        return {a: published.adapter_labels(thawed(spec)) for a, spec in self.adapters.items()}

    def published_training(self) -> dict[str, list[str]]:
        """Each training set -> what published tables call what it was trained on."""
        return {t: published.training_keys(t, thawed(self.config["datasets"].get(t))) for t in self.train_sets}

    def mixture_parts(self, train_set: str) -> list[str]:
        return list(self.config["mixtures"].get(train_set, [train_set]))

    def adapter_spec(self, run: str) -> dict:
        """The run's adapter: its method and options, without its training overrides and seeds."""
        adapter = self.runs[run][0]
        return {k: thawed(v) for k, v in self.adapters[adapter].items() if k not in NOT_OPTIONS}

    def train_config(self, run: str) -> dict:
        """Global training settings, overridden by the adapter's own `training:` block, with the run's seed and
        prompt template."""
        adapter, seed = self.runs[run]
        settings = train_config({**thawed(self.config["training"]), "prompt": self.config["prompt"]},
                                thawed(self.adapters[adapter]), adapter)
        return settings if seed is None else {**settings, "seed": seed}

    def labels(self, model: str, run: str, train: str) -> dict:
        """What every metrics and score file of the row says it is."""
        adapter, seed = (run, None) if run == BASE else self.runs[run]
        return {"model": model, "adapter": adapter, "train_set": train, "seed": seed, "run": run}

    def evaluation_settings(self, dataset: str, protocol: str) -> dict:
        """One evaluation job's settings (pipeline_lib.protocols)."""
        if protocol not in self.protocols_for(dataset):
            raise ValueError(f"{dataset} is not evaluated under {protocol!r} in this run; its protocols: "
                             f"{', '.join(self.protocols_for(dataset)) or 'none'}")
        return protocols.settings(protocol, thawed(self.config["evaluation"]), self.datasets[dataset].suite,
                                  self.config["prompt"])

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
        return models.quantization_settings(thawed(entry.get("quantization", self.config["quantization"])))

    def model_params(self, model: str) -> float:
        return resources.model_params(model, self.model_sources[model])

    def _once(self, key: tuple, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return copy.deepcopy(self._memo[key])  # callers may change what they get

    def _sizes(self, model: str) -> dict:
        def compute():
            params = self.model_params(model)  # reads a local model's config.json: once per model
            return {"params": params, "quantization": self.quantization(model),
                    "embedding": resources.embedding_params(model, self.model_sources[model], params)}
        return self._once(("sizes", model), compute)

    def finetune_estimate(self, model: str, run: str, train: str) -> dict:
        def compute():
            sizes = self._sizes(model)
            return resources.finetune(sizes["params"], self.train_config(run), self.estimated_items(train, "train"),
                                      self.config["device"], sizes["quantization"], sizes["embedding"])
        return self._once(("finetune", model, run, train), compute)

    def evaluate_estimate(self, model: str, dataset: str, protocol: str) -> dict:
        def compute():
            sizes = self._sizes(model)
            return resources.evaluate(sizes["params"], self.evaluation_settings(dataset, protocol),
                                      self.estimated_items(dataset, "eval"), self.config["device"],
                                      sizes["quantization"], sizes["embedding"])
        return self._once(("evaluate", model, dataset, protocol), compute)


def train_config(training: Mapping, adapter: Mapping, name: str) -> dict:
    merged = {**training, **adapter.get("training", {})}
    valid = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(merged) - valid)
    if unknown:
        raise ConfigError(f"adapters.{name}.training: unknown key(s) {unknown}; valid: {sorted(valid)}")
    return asdict(TrainConfig(**merged))


def _schema() -> dict:
    import yaml

    return yaml.safe_load(SCHEMA.read_text())


def _schema_problems(instance, schema: dict, where: str) -> list[str]:
    from jsonschema import Draft202012Validator

    return [f"{where}{''.join(f'.{p}' for p in e.absolute_path)}: {e.message}"
            for e in Draft202012Validator(schema).iter_errors(instance)]


def _adapter_problems(name: str, spec: dict, config: dict, schema: dict) -> list[str]:
    """The adapter's own entry and its merged training settings against the schema (sweep members included,
    which exist only after expansion), and its method's name."""
    problems = _schema_problems(spec, schema["properties"]["adapters"]["additionalProperties"], f"adapters.{name}")
    if name == BASE:
        problems.append(f"adapters: {BASE!r} is reserved for the base model without adapter")
    try:
        entry = methods.get(spec["method"])
    except ValueError as e:
        return problems + [f"adapters.{name}: {e}"]
    if entry.not_applicable:
        problems.append(f"adapters.{name}: method {entry.name!r} is not applicable to a benchmark fine-tune: "
                        f"{entry.not_applicable}")
    if entry.needs_base == "4bit":
        for model in config["models"]:
            quantization = config["model_defs"].get(model, {}).get("quantization", config["quantization"])
            if (models.quantization_settings(quantization) or {}).get("bits") != 4:
                problems.append(f"adapters.{name}: method {entry.name!r} needs a 4-bit base; model {model!r} has "
                                f"quantization {quantization!r} (set quantization: 4bit)")
    overrides = spec.get("training", {})
    if isinstance(overrides, dict):
        training = {**config["training"], **overrides}
        problems += _schema_problems(training, schema["properties"]["training"], f"adapters.{name}.training")
    return problems


def _name_problems(config: dict, registry: Mapping) -> list[str]:
    """Models, mixtures, training and evaluation sets, limits that do not exist, each listing the valid ones."""
    problems = []
    for name in config["models"]:
        try:
            models.model_source(name, config["model_defs"].get(name))
        except (KeyError, ValueError) as e:
            problems.append(f"models: {e.args[0]}")
    for mixture, parts in config["mixtures"].items():
        if mixture in registry:
            problems.append(f"mixtures.{mixture}: the name is already a dataset")
        problems += [f"mixtures.{mixture}: {e}" for e in _lookup(parts, "train", registry)]
    problems += [f"train_sets: {e}" for e in _lookup([n for n in config["train_sets"] if n not in config["mixtures"]],
                                                     "train", registry)]
    problems += [f"eval_sets: {e}" for e in _lookup(config["eval_sets"], "eval", registry)]
    problems += [f"data.limits: {e}" for e in _lookup(config["data"]["limits"], None, registry)]
    problems += [f"datasets.{n}.path: {d.hf['path']} does not exist" for n, d in registry.items()
                 if d.via_datasets and "path" in d.hf and not Path(d.hf["path"]).exists()]
    return problems


def _lookup(names, split, registry) -> list[str]:
    problems = []
    for name in names:
        try:
            data_registry.get_dataset(name, split, registry)
        except KeyError as e:
            problems.append(e.args[0])
    return problems


def _target_problems(config: dict, adapters: Mapping[str, dict]) -> list[str]:
    """Target modules that do not exist in a model's architecture, where the architecture is known before any
    download (embedded models, local directories)."""
    problems = []
    for model in config["models"]:
        model_type = models.model_type(model, config["model_defs"].get(model))
        if model_type not in targets.ARCHITECTURES:
            continue
        for name, spec in adapters.items():
            modules = spec.get("target_modules")
            if isinstance(modules, list):
                bad = targets.unknown_targets(model_type, modules)
                if bad:
                    problems.append(f"adapters.{name}.target_modules: {bad} not in {model} ({model_type}); valid: "
                                    f"{', '.join(targets.known_modules(model_type))}, or a target preset: "
                                    f"{', '.join(targets.PRESETS)}, paper")
    return problems


def _run_problems(config: dict, adapters: Mapping[str, dict]) -> list[str]:
    # no method is refused on a quantized base by name: what fails there depends on the device's kernels, so
    # each fine-tune checks its own (adapters/quantized_check.py)
    problems = []
    if config["gpus_per_finetune"] > 1 and config["device"] != "cuda":
        problems.append(f"gpus_per_finetune: {config['gpus_per_finetune']} needs device: cuda "
                        f"(it is {config['device']})")
    return problems


def _unpinned(names, registry) -> tuple[str, ...]:
    """The run's download-only datasets (not mirrored, no sha256 pinned): a real run must stop before any job,
    saying where each file comes from and how to pin it; a dry run can still show the whole DAG."""
    return tuple(f"{n}: download-only file {registry[n].source.url} has no pinned sha256. Download it, check it, "
                 f"and pin it in the config: data: {{pins: {{{n}: <sha256>}}}} (then data.mirror or the URL "
                 f"supplies it)" for n in dict.fromkeys(names)
                 if n in registry and registry[n].source.sha256 is None and not registry[n].via_datasets)


def _frozen(value):
    """A read-only deep view: mappings become MappingProxyType, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _protocol_problems(config: dict, registry: Mapping) -> list[str]:
    """The old single `protocol` key, a protocol no evaluation set of the run can take, a scorer's missing package."""
    import importlib.util

    evaluation, problems = config["evaluation"], []
    if "protocol" in evaluation:
        new = {"fast": "generate"}.get(evaluation["protocol"], evaluation["protocol"])
        problems.append(f"evaluation.protocol: replaced by evaluation.protocols, a list; protocol: "
                        f"{evaluation['protocol']} is now protocols: [{new}]")
    suites = {d: registry[d].suite for d in config["eval_sets"] if d in registry}
    for name in evaluation["protocols"]:
        spec = protocols.get(name)
        if suites and not any(spec.applies(s) for s in suites.values()):
            problems.append(f"evaluation.protocols: {name} scores {'/'.join(spec.suites)} sets only (a choice "
                            f"between options); none of eval_sets is one: {', '.join(suites)}")
        missing = [m for m in spec.requires if importlib.util.find_spec(m) is None]
        if missing:
            problems.append(f"evaluation.protocols: {name} needs the Python package(s) {', '.join(missing)} "
                            f"(requirements.txt pins them)")
    return problems


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
    schema = _schema()
    problems = [p for name, spec in adapters.items() for p in _adapter_problems(name, spec, config, schema)]
    problems += _name_problems(config, registry) + _target_problems(config, adapters) + _run_problems(config, adapters)
    problems += _protocol_problems(config, registry)
    if prompt_problem := prompts.template_problem(config["prompt"]):
        problems.append(f"prompt: {prompt_problem}")
    runs = {run_name(a, s): (a, s) for a, spec in adapters.items()
            for s in (spec.get("seeds", config["seeds"]) or [None])}
    problems += [f"adapters.{a}: its run {r!r} with seed {s} clashes with the adapter of that name"
                 for r, (a, s) in runs.items() if s is not None and r in adapters]
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    train_parts = tuple(dict.fromkeys(p for t in config["train_sets"] for p in config["mixtures"].get(t, [t])))
    rows = [(m, BASE, NO_TRAIN_SET) for m in config["models"]] if config["include_base"] else []
    rows += [(m, r, t) for m in config["models"] for r in runs for t in config["train_sets"]]
    return RunPlan(
        config=_frozen(config), adapters=_frozen(adapters), runs=MappingProxyType(runs),
        sweep_coordinates=_frozen(coordinates),
        datasets=registry,
        model_sources=_frozen({m: models.model_source(m, config["model_defs"].get(m)) for m in config["models"]}),
        rows=tuple(rows), train_parts=train_parts,
        unpinned=_unpinned([*train_parts, *config["eval_sets"]], registry))

