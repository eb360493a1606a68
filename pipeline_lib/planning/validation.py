"""Every problem of a config that the schema cannot see, found before any job and reported at once, each naming its
key and the valid values: sweep members and adapter training blocks against the schema (they exist only after
expansion), methods, models, datasets, mixtures and limits, target modules of a known architecture, protocols and
the packages their scorers need, the prompt template, and the download-only files without a pinned checksum."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Mapping

from pipeline_lib.catalog import base_models, methods, prompts, protocols, targets
from pipeline_lib.catalog import datasets as data_registry
from pipeline_lib.catalog.runs import BASE

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def problems(config: dict, adapters: Mapping[str, dict], registry: Mapping) -> list[str]:
    """Every problem of a schema-validated config (defaults filled) with its expanded adapters and dataset registry."""
    config_schema = schema()
    found = [p for name, spec in adapters.items() for p in _adapter_problems(name, spec, config, config_schema)]
    found += _name_problems(config, registry) + _target_problems(config, adapters) + _run_problems(config)
    found += _protocol_problems(config, registry) + _cost_problems(config)
    if prompt_problem := prompts.template_problem(config["prompt"]):
        found.append(f"prompt: {prompt_problem}")
    return found


def _cost_problems(config: dict) -> list[str]:
    """A merging set the run does not generate on, a local reference text that is not there."""
    costs, problems = config.get("costs") or {}, []
    merging, forgetting = costs.get("merging"), costs.get("forgetting")
    if merging and merging.get("dataset"):
        if merging["dataset"] not in config["eval_sets"]:
            problems.append(f"costs.merging.dataset: {merging['dataset']!r} is not among the run's eval_sets "
                            f"({', '.join(config['eval_sets'])})")
        elif "generate" not in config["evaluation"]["protocols"]:
            problems.append("costs.merging: the run has no generate protocol to compare merged and unmerged outputs "
                            "with (add it to evaluation.protocols, or set costs.merging: null)")
    reference = (forgetting or {}).get("reference")
    if isinstance(reference, dict) and "path" in reference and not Path(reference["path"]).is_file():
        problems.append(f"costs.forgetting.reference.path: {forgetting['reference']['path']} does not exist")
    return problems


def unpinned(names, registry) -> tuple[str, ...]:
    """The run's download-only datasets (not mirrored, no sha256 pinned): a real run must stop before any job,
    saying where each file comes from and how to pin it; a dry run can still show the whole DAG."""
    return tuple(f"{n}: download-only file {registry[n].source.url} has no pinned sha256. Download it, check it, "
                 f"and pin it in the config: data: {{pins: {{{n}: <sha256>}}}} (then data.mirror or the URL "
                 f"supplies it)" for n in dict.fromkeys(names)
                 if n in registry and registry[n].source.sha256 is None and not registry[n].via_datasets)


def floating_models(model_sources: Mapping[str, Mapping]) -> tuple[str, ...]:
    """Hub models named by a branch or tag rather than a commit: a warning, not an error (offline, the commit cannot be
    looked up before the download, which records it; later rows computed on another commit are flagged under the
    tables)."""
    return tuple(f"{m}: hub model {s['hub']} at revision {s['revision']!r}, a branch or tag; the download records the "
                 f"commit it gets (resources/models/{m}/SOURCE.json). Pin it to keep every later download the same: "
                 f"model_defs: {{{m}: {{revision: <commit>}}}}"
                 for m, s in model_sources.items() if "hub" in s and not base_models.is_commit(s["revision"]))


NULL_TEXT = ("null", "None", "none", "~")  # how a null given on Snakemake's command line arrives: as text


def raw_problems(config: dict) -> list[str]:
    """The config as given (files and --config merged), checked against the schema before Snakemake fills its
    defaults (whose validator fails on a wrongly typed value without naming the key): every problem with its key.
    A nested null given on the command line (`--config 'costs={forgetting: null}'`, which Snakemake reads as the
    text 'null') is taken as null where the key accepts null; a name listed twice is refused."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema())
    for _ in range(20):  # each pass may uncover a deeper value
        fixed = [e for e in validator.iter_errors(config)
                 if isinstance(e.instance, str) and e.instance in NULL_TEXT and _accepts_null(e.schema)]
        for error in fixed:
            _set(config, list(error.absolute_path), None)
        if not fixed:
            break
    return sorted({_describe(e) for e in validator.iter_errors(config)})


def _accepts_null(subschema: dict) -> bool:
    types = subschema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return True
    return any(_accepts_null(s) for s in subschema.get("anyOf", []) + subschema.get("oneOf", []))


def _set(config: dict, path: list, value) -> None:
    for key in path[:-1]:
        config = config[key]
    config[path[-1]] = value


def _describe(error) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "the config"
    if error.validator == "uniqueItems":
        twice = sorted({str(v) for v in error.instance if error.instance.count(v) > 1})
        return f"{where}: {', '.join(twice)} listed more than once; each name once"
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[int, list] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0], []).append(sub)
        # the forms of the right kind (a mapping for a mapping...): their problems say what is wrong inside
        kind = [errs for errs in branches.values()
                if not any(not e.path and e.validator in ("type", "enum", "const") for e in errs)]
        if kind:
            return _describe(max(kind[0], key=lambda e: len(e.absolute_path)))
        accepted = "; ".join(" or ".join(map(repr, b.get("enum", []))) or str(b.get("type") or b.get("const"))
                             for b in error.validator_value)
        return f"{where}: {error.instance!r} is none of the accepted forms ({accepted})"
    return f"{where}: {error.message}"


def schema() -> dict:
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
            if (base_models.quantization_settings(quantization) or {}).get("bits") != 4:
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
            base_models.model_source(name, config["model_defs"].get(name))
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
        try:
            model_type = base_models.model_type(model, config["model_defs"].get(model))
        except (KeyError, ValueError):  # an unknown model: _name_problems says so
            continue
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


def _run_problems(config: dict) -> list[str]:
    # no method is refused on a quantized base by name: what fails there depends on the device's kernels, so
    # each fine-tune checks its own (adapters/quantized_check.py)
    problems = []
    if config["gpus_per_finetune"] > 1 and config["device"] != "cuda":
        problems.append(f"gpus_per_finetune: {config['gpus_per_finetune']} needs device: cuda "
                        f"(it is {config['device']})")
    return problems


def _protocol_problems(config: dict, registry: Mapping) -> list[str]:
    """The old single `protocol` key, a protocol no evaluation set of the run can take, a scorer's missing package."""
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
                            f"(pyproject.toml's `harness` extra pins them)")
    return problems
