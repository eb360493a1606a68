import copy
import re

import pytest
import yaml

from bad_configs import BAD_CONFIGS
from pipeline_lib.plan import ConfigError, prepare
from snakemake_run import ROOT, run

DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())


def _filled():
    from snakemake.utils import validate

    config = copy.deepcopy(DEFAULT)
    validate(config, str(ROOT / "schemas/config.schema.yaml"))
    return config


def test_default_config_is_valid_and_rows_include_base():
    config = _filled()
    plan = prepare(config)
    assert plan.rows[0] == ("smollm2-135m", "base", "none")
    assert len(plan.rows) == 1 + len(config["adapters"]) * len(config["train_sets"])
    assert config["training"]["weight_decay"] == 0.0  # a default filled in by the schema
    assert plan.estimated_items("gsm8k", "eval") == 30 and plan.estimated_items("boolq", "eval") == 30


def test_the_plan_is_read_only_and_leaves_the_config_alone():
    config = _filled()
    before = copy.deepcopy(config)
    plan = prepare({**config, "sweeps": {"s": {"method": "lora", "grid": {"r": [2, 4]}}}})
    assert config == before and set(plan.adapters) == {"lora", "series", "parallel", "s-r2", "s-r4"}
    with pytest.raises(TypeError):
        plan.config["eval_sets"] = []
    with pytest.raises(TypeError):
        plan.adapters["lora"]["r"] = 1
    with pytest.raises(AttributeError):
        plan.rows = ()


def test_a_config_dataset_joins_the_runs_registry_only():
    from pipeline_lib.data.registry import BUILTIN

    config = _filled()
    config["datasets"] = {"mine": {"path": "/x/mine.json", "sha256": "0" * 64, "format": "llm_adapters",
                                   "split": "eval", "answer_type": "number"}}
    config["eval_sets"] = ["mine"]
    plan = prepare(config)
    assert plan.datasets["mine"].suite == "math" and "mine" not in BUILTIN
    assert plan.estimated_items("mine", "eval") == 30  # the limit; the file's size is unknown before reading it


def test_sweep_members_are_checked_against_the_schema():
    config = _filled()
    config["sweeps"] = {"s": {"method": "lora", "grid": {"r": [2]}, "training": {"learning_rate": "fast"}}}
    with pytest.raises(ConfigError, match=r"adapters.s-r2.training.learning_rate: 'fast' is not of type 'number'"):
        prepare(config)
    config["sweeps"] = {"s": {"method": "lora", "grid": {"r": [2]}, "training": "x"}}
    with pytest.raises(ConfigError, match=r"adapters.s-r2.training: 'x' is not of type 'object'"):
        prepare(config)


@pytest.mark.parametrize("overrides, message", BAD_CONFIGS, ids=[str(o)[:40] for o, _ in BAD_CONFIGS])
def test_a_bad_config_is_refused_naming_the_problem(overrides, message):
    """What the Snakefile does: config.yaml with the overrides merged in, schema validation, then the plan."""
    from snakemake.utils import update_config, validate

    config = copy.deepcopy(DEFAULT)
    update_config(config, copy.deepcopy(overrides))
    with pytest.raises(Exception, match=message):
        validate(config, str(ROOT / "schemas/config.schema.yaml"))
        prepare(config)


def test_a_mixture_is_a_training_set():
    config = _filled()
    config["mixtures"] = {"cs": ["boolq_train", "ARC-Easy_train"]}
    config["train_sets"] = ["cs"]
    assert ("smollm2-135m", "lora", "cs") in prepare(config).rows


def test_adapter_training_overrides_merge_over_global():
    config = _filled()
    config["adapters"]["lora"]["training"] = {"learning_rate": 1e-2}
    plan = prepare(config)
    merged = plan.train_config("lora")
    assert merged["learning_rate"] == 1e-2 and merged["batch_size"] == config["training"]["batch_size"]
    assert "training" not in plan.adapter_spec("lora")
    config["adapters"]["lora"]["training"] = {"lerning_rate": 1}
    with pytest.raises(ConfigError, match="adapters.lora.training: Additional properties .*'lerning_rate'"):
        prepare(config)


def test_snakemake_stops_before_any_job_on_a_bad_config(tmp_path):
    for overrides, message in (BAD_CONFIGS[0], BAD_CONFIGS[-1]):  # one the schema refuses, one the plan does
        result = run(tmp_path, overrides, "--dry-run", configfiles=("config.yaml",))
        assert result.returncode != 0
        assert re.search(message, result.stdout + result.stderr)
        assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_quantization_per_model_and_no_method_refused_by_name():
    config = _filled()
    config["quantization"] = "4bit"
    plan = prepare(config)  # LoRA, Series and Parallel train on a 4-bit base, on CPU too
    assert plan.quantization("smollm2-135m")["quant_type"] == "nf4"
    # device-dependent on 4 bits: checked by each job on its device (test_quantized_check), never refused by name
    config["adapters"]["d"] = {"method": "dora"}
    config["adapters"]["a"] = {"method": "adalora", "init_r": 4, "target_r": 2, "total_step": 10}
    prepare(config)
    del config["adapters"]["a"]
    config["quantization"] = "none"
    plan = prepare({**config, "adapters": {"lora": config["adapters"]["lora"]},
                    "model_defs": {"tiny": {"path": "/x", "quantization": {"bits": 8}}}, "models": ["smollm2-135m",
                                                                                                   "tiny"]})
    assert plan.quantization("smollm2-135m") is None and plan.quantization("tiny") == {"bits": 8}


def test_cuda_check_script_skips_cleanly_without_cuda():
    import subprocess
    import sys

    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs the real check")
    out = subprocess.run([sys.executable, str(ROOT / "scripts/cuda_check.py"), "unused"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "no CUDA device" in out.stdout


def test_multi_gpu_finetune_dry_run_launches_torchrun_on_the_gpus_it_holds(tmp_path):
    result = run(tmp_path, {"device": "cuda", "gpus_per_finetune": 2}, "--dry-run", "--printshellcmds",
                 configfiles=("config.yaml",))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    finetunes = [line for line in out.splitlines() if "scripts/finetune.py" in line]
    # each job first takes its own devices (its gpu resource): two for a fine-tune, started as two torchrun
    # processes, one for an evaluation
    assert len(finetunes) == 3 and all("pipeline_lib/gpu.py --gpus 2 --data-parallel --lock-dir "
                                       ".snakemake/gpu-locks -- " in line for line in finetunes)
    evaluations = [line for line in out.splitlines() if "scripts/evaluate.py" in line]
    assert evaluations and all("pipeline_lib/gpu.py --gpus 1 --lock-dir" in line for line in evaluations)
    assert "gpu=2" in out.replace(" ", "")


def test_several_gpus_per_finetune_need_cuda():
    config = _filled()
    config["gpus_per_finetune"] = 2
    with pytest.raises(ConfigError, match="gpus_per_finetune: 2 needs device: cuda"):
        prepare(config)


def test_seeds_make_one_run_per_seed_with_stable_names():
    config = _filled()
    config["seeds"] = [1, 2]
    config["adapters"]["series"]["seeds"] = [7]
    plan = prepare(config)
    assert set(plan.runs) == {"lora-seed1", "lora-seed2", "parallel-seed1", "parallel-seed2", "series-seed7"}
    assert plan.runs["lora-seed2"] == ("lora", 2) and plan.train_config("lora-seed2")["seed"] == 2
    assert "seeds" not in plan.adapter_spec("series-seed7") and plan.adapter_spec("lora-seed1")["r"] == 32
    assert plan.labels("smollm2-135m", "lora-seed2", "gsm8k_train") == {
        "model": "smollm2-135m", "adapter": "lora", "train_set": "gsm8k_train", "seed": 2, "run": "lora-seed2"}
    assert ("smollm2-135m", "base", "none") in plan.rows  # the base row has no seed
    grown = prepare({**config, "seeds": [1, 2, 3]})
    assert set(plan.runs) < set(grown.runs)  # a grown list keeps every existing run's name
    assert prepare(_filled()).train_config("lora")["seed"] == 42  # without seeds: training.seed, plain names
