"""End to end on the real embedded model (SmolLM2-135M from its PyPI wheel), minimal sizes, offline data."""
import json

import pytest

from helpers import job_counts, run

pytestmark = pytest.mark.slow


def test_default_path_runs_on_the_embedded_model(tmp_path, data_mirror):
    overrides = {
        "data": {"mirror": str(data_mirror), "train_limit": 8, "eval_limit": 2},
        "adapters": {"lora": {"method": "lora", "r": 8, "lora_alpha": 16,
                              "target_modules": ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]}},
        "eval_sets": ["MultiArith"],
        "training": {"max_steps": 1, "batch_size": 2, "micro_batch_size": 2, "warmup_steps": 0, "cutoff_len": 128,
                     "max_truncated": 1.0},  # most GSM8K examples are longer: cut on purpose (speed)
        "evaluation": {"batch_size": 2, "max_new_tokens": 12, "dtype": "float32"},
        "costs": {"forgetting": {"tokens": 64, "sequence_length": 32}, "merging": {"items": 2}},  # small: the jobs run
    }
    result = run(tmp_path, overrides, configfiles=(), timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    assert job_counts(result.stdout + result.stderr) == {
        "download_model_wheel": 1, "convert_model": 1, "fetch_data": 2, "normalize_data": 2, "contamination": 1,
        "prepare_data": 2, "finetune": 1, "forgetting": 1, "forgetting_base": 1, "merging": 1,
        "evaluate": 2, "render": 1, "all": 1}
    model_dir = tmp_path / "resources/models/smollm2-135m"
    assert json.loads((model_dir / "config.json").read_text())["model_type"] == "llama"
    assert (model_dir / "model.safetensors").stat().st_size > 500e6  # dequantized float32 weights
    metrics = json.loads((tmp_path / "results/adapters/smollm2-135m/lora/gsm8k_train/metrics.json").read_text())
    assert metrics["trainable_params"] > 1e6 and metrics["steps"] == 1
    costs = tmp_path / "results/costs/smollm2-135m/lora/gsm8k_train"
    forgot = json.loads((costs / "forgetting.json").read_text())  # the real model on CPython's docs: a real loss
    assert 0.5 < forgot["cross_entropy_disabled"] < 8 and forgot["tokens_scored"] == 2 * 31
    merged = json.loads((costs / "merging.json").read_text())
    assert merged["mergeable"] and merged["agreement"]["same_response"] + merged["agreement"]["different_response"] == 2
    for row in ["base/none", "lora/gsm8k_train"]:
        score = json.loads((tmp_path / f"results/scores/smollm2-135m/{row}/generate/MultiArith.json").read_text())
        assert score["n"] == 2
        preds = [json.loads(line) for line in
                 (tmp_path / f"results/predictions/smollm2-135m/{row}/generate/MultiArith.jsonl").read_text().splitlines()]
        assert all(p["response"].strip() for p in preds)  # the real model writes real text
    # the same run on a 4-bit base (QLoRA, on CPU), the fine-tune's row alone (the 4-bit base row's evaluation is
    # tests/pipeline/test_pipeline_quantized.py's): the converted model is reused, the model jobs re-run
    quantized = run(tmp_path, {**overrides, "quantization": "4bit", "include_base": False}, configfiles=(),
                    timeout=1200)
    assert quantized.returncode == 0, quantized.stderr[-4000:]
    assert job_counts(quantized.stdout + quantized.stderr) == {"finetune": 1, "evaluate": 1, "forgetting": 1,
                                                               "forgetting_base": 1, "render": 1, "all": 1}
    # no merging into 4-bit; the base pass re-made on the 4-bit base
    metrics = json.loads((tmp_path / "results/adapters/smollm2-135m/lora/gsm8k_train/metrics.json").read_text())
    assert metrics["quantization"]["bits"] == 4 and metrics["loss"][0] > 0
    assert "smollm2-135m 4bit nf4" in (tmp_path / "results/tables/accuracy_ci.md").read_text()
