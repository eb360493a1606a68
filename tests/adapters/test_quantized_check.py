"""The start-of-job check of methods whose support on a 4-bit base depends on the device's kernels."""
import pytest
import torch

from pipeline_lib import adapters, models
from pipeline_lib.adapters import quantized_check
from pipeline_lib.catalog import base_models
from pipeline_lib.runtime.files import write_jsonl
from pipeline_lib.training.job import finetune

LORA = {"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}


def four_bit(tiny64_dir):
    return models.load(tiny64_dir, quantization=base_models.FOUR_BIT)[0]


def test_a_working_adapter_passes_and_the_pass_is_cached(tiny64_dir):
    model = adapters.attach(four_bit(tiny64_dir), dict(LORA))
    quantized_check.check(model, LORA, base_models.FOUR_BIT, "a tiny 4-bit base")
    assert all(p.grad is None for p in model.parameters())  # nothing left behind for the first step
    model.forward = None  # a second check with the same method, base and machine does not run the model again
    quantized_check.check(model, LORA, base_models.FOUR_BIT, "a tiny 4-bit base")


def test_an_adapter_that_is_not_the_identity_at_its_default_start_is_stopped(tiny64_dir):
    model = adapters.attach(four_bit(tiny64_dir), dict(LORA))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.5)  # as a kernel that computes the base and the adapter path differently would look
    spec = {**LORA, "r": 5}  # another key: not the cached pass
    with pytest.raises(quantized_check.QuantizedBaseError, match=r"lora on a tiny 4-bit base: at its default "
                       r"\(identity\) initialisation the adapter changes the logits by .*quantization: none"):
        quantized_check.check(model, spec, base_models.FOUR_BIT, "a tiny 4-bit base")


def test_the_fine_tune_job_checks_checked_methods_only(tiny64_dir, tmp_path, monkeypatch):
    """DoRA (`checked`) is checked when its job starts, and either trains or stops before writing anything;
    LoRA (`ok` on every kernel path measured) is not checked."""
    seen = []
    real = quantized_check.check
    monkeypatch.setattr(quantized_check, "check", lambda model, spec, *a: seen.append(spec["method"]) or
                        real(model, spec, *a))
    data = tmp_path / "train.jsonl"
    write_jsonl(data, [{"instruction": f"What is {i} plus 1?", "input": "", "output": f"{i + 1}", "answer": str(i + 1)}
                       for i in range(4)])
    training = {"max_steps": 1, "batch_size": 2, "micro_batch_size": 2, "warmup_steps": 0, "cutoff_len": 32,
                "max_truncated": 1.0, "checkpoint_every": None}  # the tiny tokenizer's examples reach 32: cut on purpose
    for spec in ({**LORA, "method": "dora"}, LORA):
        out = tmp_path / spec["method"]
        try:
            assert finetune(str(tiny64_dir), str(data), str(out), spec, training, {},
                                 quantization=base_models.FOUR_BIT)["steps"] == 1
        except quantized_check.QuantizedBaseError as e:
            assert spec["method"] == "dora" and "dora on a 4bit nf4 double-quant" in str(e) and not out.exists()
    assert seen == ["dora"]
