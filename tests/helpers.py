"""What the tests share, in one place: where the project is, the one Snakemake runner (the real Snakefile in a scratch
directory, as a user would run it), the environment of an AVX2-only CPU, an evaluation job's settings as the plan
gives them, upstream LLM-Adapters' own functions read from the data mirror, the training records of the small loop
tests, and every bad configuration the tests try."""
from __future__ import annotations

import ast
import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TINY = ("tests/configs/tiny.yaml",)  # the tests' tiny run: a tiny random LLaMA, a few items per set
ONE_LORA = ("tests/configs/one-lora.yaml",)  # the tiny run with one adapter
FAULT_SUMMARY = pytest.StashKey[list]()  # tests/pipeline/test_faults.py's summary, printed by conftest.py


# --- Snakemake, as a user runs it

def filled_config(**overrides) -> dict:
    """config.yaml with `overrides` on top, validated (and so filled with the schema's defaults)."""
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config.update(copy.deepcopy(overrides))
    validate(config, str(ROOT / "schemas/config.schema.yaml"))
    return config


def merged(*configs: dict) -> dict:
    """The configs merged in order as Snakemake merges --configfile's (mappings deep, the rest replaced)."""
    from snakemake.utils import update_config

    out: dict = {}
    for config in configs:
        update_config(out, copy.deepcopy(config))
    return out


def command(workdir: Path, overrides: dict, *extra: str, configfiles=TINY, cores=2) -> list[str]:
    """Config = the given files (project-relative) + overrides (written to workdir/override.yaml), replacing the
    workflow's config.yaml."""
    workdir.mkdir(parents=True, exist_ok=True)
    override = workdir / "override.yaml"
    override.write_text(yaml.safe_dump(overrides))
    return [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", str(cores),
            "--configfile", *(str(ROOT / c) for c in configfiles), str(override), "--replace-workflow-config", *extra]


def run(workdir: Path, overrides: dict, *extra: str, configfiles=TINY, timeout=900, env=None,
        cores=2, **kwargs):
    """Run to completion; `env`: the environment of Snakemake and its jobs (default: this process's)."""
    return subprocess.run(command(workdir, overrides, *extra, configfiles=configfiles, cores=cores),
                          capture_output=True, text=True, timeout=timeout, env=env, **kwargs)


def popen(workdir: Path, overrides: dict, *extra: str, configfiles=TINY, env=None, cores=2,
          **kwargs):
    """Start in the background (its own session, so that a test can kill the whole process group)."""
    return subprocess.Popen(command(workdir, overrides, *extra, configfiles=configfiles, cores=cores), env=env,
                            start_new_session=True, **kwargs)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints before running."""
    block = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", block, re.MULTILINE)}


# --- an AVX2-only x86 CPU, emulated (tests/emulate_avx2/)

EMULATION = TESTS / "emulate_avx2"


def avx2_env() -> dict:
    """The environment of an AVX2-only x86 CPU (no AVX-512, no native bf16), emulated: see emulate_avx2/."""
    return {**with_pythonpath(EMULATION), "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def tests_env() -> dict:
    """This process's environment with the tests' helper modules importable (for a test's own subprocess)."""
    return with_pythonpath(TESTS)


def with_pythonpath(folder: Path, env: dict | None = None) -> dict:
    """`env` (default: this process's environment) with `folder` first on PYTHONPATH (its sitecustomize.py, if any,
    is the one Python runs)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(folder), env.get("PYTHONPATH", "")] if p)
    return env


# --- an evaluation job's settings as the plan gives them: the schema's defaults, the test's overrides

_SCHEMA = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())["properties"]
DEFAULTS = {k: v["default"] for k, v in _SCHEMA["evaluation"]["properties"].items() if "default" in v}
PROMPT = _SCHEMA["prompt"]["default"]


def settings(overrides: dict, suite: str, protocol: str = "generate", prompt: str = PROMPT) -> dict:
    from pipeline_lib.catalog import protocols

    return protocols.settings(protocol, {**DEFAULTS, **overrides}, suite, prompt)


# --- upstream LLM-Adapters' own functions, read from its scripts in the data mirror and executed alone.
# The scripts import upstream's vendored peft fork at module level, so they cannot be imported; `function()` reads
# one function's source with `ast` and executes just that definition (nested ones too, e.g. `tokenize` inside
# finetune.py's `train`) in a namespace the caller provides. None of upstream's code is in the project.

SCRIPTS = ("finetune.py", "evaluate.py", "commonsense_evaluate.py")


def function(mirror: Path, script: str, name: str, namespace: dict | None = None):
    """The function `name` defined anywhere in upstream's `script` (the first definition found)."""
    path = Path(mirror) / "LLM-Adapters" / script
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
    if not found:
        raise LookupError(f"{path}: no function {name!r}")
    namespace = {} if namespace is None else namespace  # shared: later functions see earlier ones
    namespace.setdefault("re", __import__("re"))
    exec(compile(ast.Module(body=[found[0]], type_ignores=[]), str(path), "exec"), namespace)
    return namespace[name]


def args(dataset: str) -> SimpleNamespace:
    """The `args` upstream's extraction functions read (only `dataset`)."""
    return SimpleNamespace(dataset=dataset)


# --- the small training set of the loop tests

RECORDS = [{"instruction": f"How many apples are {i} and {i + 1}?", "input": "", "output": f"The answer is {2 * i + 1}.",
            "answer": str(2 * i + 1)} for i in range(12)]


# --- every bad configuration the tests try, once: (overrides merged over config.yaml as Snakemake merges a
# --configfile, the message the refusal must contain, as a regular expression); tests/planning/test_config.py
# checks each in process, through the same schema validation and plan as the Snakefile, two under Snakemake

BAD_CONFIGS = [
    # the schema
    ({"training": {"lerning_rate": 0.1}}, r"Additional properties .*'lerning_rate'"),
    ({"training": {"learning_rate": "fast"}}, r"'fast' is not of type 'number'"),
    ({"training": {"batch_size": 0}}, r"0 is less than the minimum of 1"),
    ({"training": {"lr_scheduler": "step"}}, r"'step' is not one of"),
    ({"evaluation": {"dtype": "float8"}}, r"'float8' is not one of"),
    ({"evaluation": {"protocols": ["beam"]}}, r"'beam' is not one of"),
    ({"evaluation": {"protocol": "paper"}}, r"evaluation.protocol: replaced by evaluation.protocols, a list; protocol: paper is now protocols: \[paper\]"),
    ({"evaluation": {"protocols": ["harness"]}}, r"evaluation.protocols: harness scores commonsense sets only .*none of eval_sets is one: gsm8k, SVAMP"),
    ({"device": "tpu"}, r"'tpu' is not one of"),
    ({"quantization": "2bit"}, r"quantization: '2bit' is none of the accepted forms \('none' or '8bit' or '4bit'; object\)"),
    ({"decontaminate": "ignore"}, r"'ignore' is not one of"),
    ({"contamination": {"threshold": 1.5}}, r"1.5 is greater than the maximum of 1"),
    ({"data": {"eval_limit": 0}}, r"0 is less than the minimum of 1"),
    ({"data": {"pins": {"math_10k": "abc"}}}, r"'abc' does not match"),
    ({"models": []}, r"\[\] should be non-empty"),
    ({"adapters": {"x; rm -rf ~": {"method": "lora"}}}, r"'x; rm -rf ~' does not match"),
    ({"model_defs": {"m": {"url": "http://x"}}}, r"'url' was unexpected|Additional properties .*'url'"),
    ({"sweeps": {"s": {"method": "lora", "grid": {"r": []}}}}, r"\[\] should be non-empty"),
    ({"datasets": {"d": {"path": "/x.json", "sha256": "z", "format": "llm_adapters", "split": "eval",
                         "answer_type": "number"}}}, r"datasets.d.sha256: 'z' does not match"),
    ({"quantization": {"bits": 4, "compute_dtype": "float8"}}, r"quantization.compute_dtype: 'float8' is not one of"),
    ({"threads": 0}, r"0 is less than the minimum of 1"),
    ({"prompt": "Question: {query}"}, r"prompt: 'Question: \{query\}' does not match"),
    # a name listed twice, a value of the wrong type in a nested block: named with the key
    ({"eval_sets": ["gsm8k", "AQuA", "gsm8k"]}, r"eval_sets: gsm8k listed more than once"),
    ({"models": ["smollm2-135m", "smollm2-135m"]}, r"models: smollm2-135m listed more than once"),
    ({"train_sets": ["gsm8k_train", "gsm8k_train"]}, r"train_sets: gsm8k_train listed more than once"),
    ({"costs": {"forgetting": "often"}}, r"costs.forgetting: 'often' is none of the accepted forms \(null; object\)"),
    ({"costs": {"forgetting": {"tokens": "many"}}}, r"costs.forgetting.tokens: 'many' is not of type 'integer'"),
    ({"threads": "two"}, r"threads: 'two' is not of type 'integer'"),
    ({"prompt": "Q: {instruction} {answer}"}, r"prompt: 'Q: \{instruction\} \{answer\}' is not a template of"),
    # the plan: names, with the valid ones listed
    ({"models": ["gpt-17"]}, r"models: unknown model 'gpt-17'; valid: bloomz-7b, gpt-j-6b, llama-13b, llama-3.2-3b, llama-7b, smollm2-135m \(or define it under model_defs"),
    ({"eval_sets": ["gsm9k"]}, r"eval_sets: unknown evaluation set 'gsm9k'; valid: AQuA, ARC-Challenge, .*gsm8k"),
    ({"train_sets": ["alpaca"]}, r"train_sets: unknown training set 'alpaca'; valid: .*gsm8k_train"),
    ({"adapters": {"x": {"method": "lorax"}}}, r"adapters.x: unknown adapter method 'lorax'; valid: .*lora"),
    ({"adapters": {"base": {"method": "lora"}}}, r"'base' is reserved"),
    ({"adapters": {"x": {"method": "xlora"}}}, r"adapters.x: method 'xlora' is not applicable .*several trained LoRA"),
    ({"adapters": {"x": {"method": "loftq"}}}, r"adapters.x: method 'loftq' needs a 4-bit base; model 'smollm2-135m'"),
    ({"adapters": {"lora": {"target_modules": ["q_proj", "c_attn"]}}},
     r"adapters.lora.target_modules: \['c_attn'\] not in smollm2-135m \(llama\); valid: q_proj, k_proj"),
    ({"model_defs": {"m": {"path": "/x", "hub": "a/b"}}, "models": ["m"]}, r"exactly one of"),
    ({"mixtures": {"mix": ["boolq_train", "boolq"]}, "train_sets": ["mix"]}, r"mixtures.mix: unknown training set 'boolq'"),
    ({"mixtures": {"gsm8k": ["boolq_train"]}}, r"mixtures.gsm8k: the name is already a dataset"),
    ({"sweeps": {"s": {"method": "lora", "r": 4, "grid": {"r": [8]}}}}, r"both a fixed option and a grid key"),
    ({"datasets": {"gsm8k": {"path": "/x.json", "sha256": "0" * 64, "format": "llm_adapters", "split": "eval",
                             "answer_type": "number"}}}, r"datasets.gsm8k: the name is already a built-in dataset"),
    ({"gpus_per_finetune": 2}, r"gpus_per_finetune: 2 needs device: cuda"),
    # costs: a merging set outside the run, a reference file that is not there
    ({"costs": {"merging": {"dataset": "boolq"}}}, r"costs.merging.dataset: 'boolq' is not among the run's eval_sets"),
    ({"costs": {"forgetting": {"reference": {"path": "/no/such.txt"}}}},
     r"costs.forgetting.reference.path: /no/such.txt does not exist"),
    ({"costs": {"forgetting": {"reference": "wiki"}}},
     r"costs.forgetting.reference: 'wiki' is none of the accepted forms \('python-docs'; object\)"),
    # tuning: each problem named by its key (tests/planning/test_tuning.py has the rest)
    ({"tuning": {"budget": 2, "search": "random", "space": {"all": {"learning_rate": [1e-4, 1e-3]},
                                                            "lora": {"bottleneck_size": [8]}}}},
     r"tuning.space: \['bottleneck_size'\] for lora: method 'lora' has no such option"),
]
