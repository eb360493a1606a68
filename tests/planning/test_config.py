import copy
import re

import pytest
import yaml

from helpers import BAD_CONFIGS, ROOT, filled_config, job_counts, run
from pipeline_lib.planning.plan import ConfigError, prepare

DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())


def test_default_config_is_valid_and_rows_include_base():
    config = filled_config()
    plan = prepare(config)
    assert plan.rows[0] == ("smollm2-135m", "base", "none")
    assert len(plan.rows) == 1 + len(config["adapters"]) * len(config["train_sets"])
    assert config["training"]["weight_decay"] == 0.0  # a default filled in by the schema
    limit = config["data"]["eval_limit"]
    assert plan.data.estimated_items("gsm8k", "eval") == limit and plan.data.estimated_items("boolq", "eval") == limit


def test_the_plan_is_read_only_and_leaves_the_config_alone():
    config = filled_config()
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
    from pipeline_lib.catalog.datasets import BUILTIN

    config = filled_config()
    config["datasets"] = {"mine": {"path": "/x/mine.json", "sha256": "0" * 64, "format": "llm_adapters",
                                   "split": "eval", "answer_type": "number"}}
    config["eval_sets"] = ["mine"]
    plan = prepare(config)
    assert plan.datasets["mine"].suite == "math" and "mine" not in BUILTIN
    # the limit; the file's size is unknown before reading it
    assert plan.data.estimated_items("mine", "eval") == config["data"]["eval_limit"]


def test_sweep_members_are_checked_against_the_schema():
    config = filled_config()
    config["sweeps"] = {"s": {"method": "lora", "grid": {"r": [2]}, "training": {"learning_rate": "fast"}}}
    with pytest.raises(ConfigError, match=r"adapters.s-r2.training.learning_rate: 'fast' is not of type 'number'"):
        prepare(config)
    config["sweeps"] = {"s": {"method": "lora", "grid": {"r": [2]}, "training": "x"}}
    with pytest.raises(ConfigError, match=r"adapters.s-r2.training: 'x' is not of type 'object'"):
        prepare(config)


@pytest.mark.parametrize("overrides, message", BAD_CONFIGS, ids=[str(o)[:40] for o, _ in BAD_CONFIGS])
def test_a_bad_config_is_refused_naming_the_problem(overrides, message):
    """What the Snakefile does: config.yaml with the overrides merged in, the raw config checked (every problem with
    its key), schema validation (defaults filled), then the plan."""
    from snakemake.utils import update_config, validate

    from pipeline_lib.planning.validation import raw_problems

    config = copy.deepcopy(DEFAULT)
    update_config(config, copy.deepcopy(overrides))
    with pytest.raises(Exception, match=message):
        if problems := raw_problems(config):
            raise ValueError("invalid config:\n  " + "\n  ".join(problems))
        validate(config, str(ROOT / "schemas/config.schema.yaml"))
        prepare(config)


def test_a_mixture_is_a_training_set():
    config = filled_config()
    config["mixtures"] = {"cs": ["boolq_train", "ARC-Easy_train"]}
    config["train_sets"] = ["cs"]
    assert ("smollm2-135m", "lora", "cs") in prepare(config).rows


def test_adapter_training_overrides_merge_over_global():
    config = filled_config()
    config["adapters"]["lora"]["training"] = {"learning_rate": 1e-2}
    plan = prepare(config)
    merged = plan.training.train_config("lora")
    assert merged["learning_rate"] == 1e-2 and merged["batch_size"] == config["training"]["batch_size"]
    assert "training" not in plan.training.adapter_spec("lora")
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
    config = filled_config()
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


def test_several_gpus_per_finetune_need_cuda():
    config = filled_config()
    config["gpus_per_finetune"] = 2
    with pytest.raises(ConfigError, match="gpus_per_finetune: 2 needs device: cuda"):
        prepare(config)


def test_seeds_make_one_run_per_seed_with_stable_names():
    config = filled_config()
    config["seeds"] = [1, 2]
    config["adapters"]["series"]["seeds"] = [7]
    plan = prepare(config)
    assert set(plan.runs) == {"lora-seed1", "lora-seed2", "parallel-seed1", "parallel-seed2", "series-seed7"}
    assert plan.runs["lora-seed2"] == ("lora", 2) and plan.training.train_config("lora-seed2")["seed"] == 2
    assert "seeds" not in plan.training.adapter_spec("series-seed7") and plan.training.adapter_spec("lora-seed1")["r"] == 32
    assert plan.labels("smollm2-135m", "lora-seed2", "gsm8k_train") == {
        "model": "smollm2-135m", "adapter": "lora", "train_set": "gsm8k_train", "seed": 2, "run": "lora-seed2"}
    assert ("smollm2-135m", "base", "none") in plan.rows  # the base row has no seed
    grown = prepare({**config, "seeds": [1, 2, 3]})
    assert set(plan.runs) < set(grown.runs)  # a grown list keeps every existing run's name
    assert prepare(filled_config()).training.train_config("lora")["seed"] == 42  # without seeds: training.seed, plain names


def test_a_null_given_on_the_command_line_is_null(tmp_path):
    """`--config 'costs={forgetting: null}'`: Snakemake reads the nested null as the text 'null' (and its validator,
    filling defaults, then failed with an AttributeError naming no key); it is taken as null where the key takes
    null, so the run plans no forgetting job."""
    result = run(tmp_path, {}, "--dry-run", "--config", "costs={forgetting: null, merging: null}",
                 configfiles=("config.yaml",))
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    assert not {"forgetting", "forgetting_base", "merging"} & set(job_counts(result.stdout))


def test_a_wrong_type_given_on_the_command_line_is_named_with_its_key(tmp_path):
    """A value of the wrong type inside a block given with --config is refused naming its key, before Snakemake's own
    validation (filling defaults into it) can trip on it, and before any job."""
    result = run(tmp_path, {}, "--dry-run", "--config", "costs={forgetting: often}", configfiles=("config.yaml",))
    assert result.returncode != 0
    assert "costs.forgetting: 'often' is none of the accepted forms (null; object)" in result.stdout + result.stderr
    assert "AttributeError" not in result.stdout + result.stderr and not (tmp_path / "results").exists()
