"""Quantized bases end to end under Snakemake on CPU (bitsandbytes): a tiny LLaMA (hidden size 64, as the CPU
4-bit kernel needs) fine-tuned and evaluated on a 4-bit nf4 base and on an 8-bit one, the quantization recorded
in every metrics and score file and shown in the tables, its compute dtype `auto` resolved by the jobs' own
precision verdict (recorded with its basis; on a model this small a decoder layer is too small for bf16 to pay)."""
import json

import pandas as pd
import pytest

from helpers import job_counts, run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("quantization, shown", [("4bit", "4bit nf4 double-quant {compute}"), ({"bits": 8}, "8bit")])
def test_quantized_base_fine_tunes_and_evaluates(tmp_path, tiny64_dir, data_mirror, quantization, shown):
    lora = {"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "up_proj"]}
    series = {"method": "series", "bottleneck_size": 8, "target_modules": ["up_proj", "gate_proj"]}
    overrides = {  # the whole config: tiny.yaml's three adapters would be merged in otherwise
        "models": ["tiny-llama"], "model_defs": {"tiny-llama": {"path": str(tiny64_dir), "quantization": quantization}},
        "data": {"mirror": str(data_mirror), "train_limit": 12, "eval_limit": 3}, "eval_sets": ["MultiArith"],
        "adapters": {"lora": lora, "series": series} if quantization == "4bit" else {"lora": lora},  # 8-bit: slow
        "training": {"max_steps": 2, "batch_size": 4, "micro_batch_size": 2, "warmup_steps": 1, "cutoff_len": 128,
                     "max_truncated": 1.0},  # the tiny tokenizer: every example reaches 128 tokens
        "evaluation": {"batch_size": 3, "max_new_tokens": 8, "dtype": "float32"}, "threads": 1}
    result = run(tmp_path, overrides, configfiles=())
    assert result.returncode == 0, result.stderr[-4000:]
    adapters = sorted(overrides["adapters"])
    assert job_counts(result.stdout + result.stderr)["finetune"] == len(adapters)
    for adapter in adapters:
        metrics = json.loads((tmp_path / f"results/adapters/tiny-llama/{adapter}/gsm8k_train/metrics.json").read_text())
        score = json.loads((tmp_path / f"results/scores/tiny-llama/{adapter}/gsm8k_train/generate/MultiArith.json").read_text())
        compute = score["precision"]["chosen"]  # the job's verdict on this machine, its basis on record
        assert compute in ("float32", "bfloat16") and score["precision"]["requested"] == "auto"
        assert score["precision"].get("basis"), score["precision"]
        expected = {"bits": 4, "quant_type": "nf4", "double_quant": True, "compute_dtype": compute} \
            if quantization == "4bit" else {"bits": 8}
        assert metrics["quantization"] == score["quantization"] == expected
        assert len(metrics["loss"]) == 2 and score["n"] == 3
    shown = shown.format(compute=compute)
    resources = pd.read_csv(tmp_path / "results/tables/resources.csv")
    assert set(resources.base) == {shown}
    assert f"Base weights: tiny-llama {shown}." in (tmp_path / "results/tables/accuracy_ci.md").read_text()
