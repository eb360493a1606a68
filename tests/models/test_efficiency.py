"""MFU's parts (pipeline_lib/models/efficiency.py): the matmul weights counted, the FLOPs of each kind of job,
the peak (a GPU's datasheet by name, a CPU's cached measurement) and the ratio."""
import pytest
import torch

from pipeline_lib.models import efficiency


def test_matmul_weights_are_the_linear_layers_with_the_head_once_split_by_training(tiny):
    from pipeline_lib import adapters

    model, _ = tiny
    c = model.config
    layer = (2 * c.hidden_size * c.hidden_size  # q, o
             + 2 * c.hidden_size * c.num_key_value_heads * (c.hidden_size // c.num_attention_heads)  # k, v
             + 3 * c.hidden_size * c.intermediate_size)  # gate, up, down
    head = c.vocab_size * c.hidden_size  # the output head (tied or not: one matmul); the input lookup is none
    counted = efficiency.matmul_weights(model)
    assert sum(counted.values()) == c.num_hidden_layers * layer + head
    model = adapters.attach(model, {"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]})
    split = efficiency.matmul_weights(model)
    lora = c.num_hidden_layers * 4 * (c.hidden_size + c.hidden_size)  # A (r x in) and B (out x r) per q_proj
    assert split == {"frozen": c.num_hidden_layers * layer + head, "trainable": lora}


def test_flops_and_mfu_follow_the_formulas(monkeypatch):
    weights = {"frozen": 1000, "trainable": 10}
    assert efficiency.generation_flops(weights, prompt_tokens=50, new_tokens=30, rows=5) == \
        {"prefill": 2 * 1010 * 50, "decode": 2 * 1010 * 25}
    assert efficiency.training_flops(weights, 7) == {"training": (4 * 1000 + 6 * 10) * 7}
    monkeypatch.setattr(efficiency, "peak_flops", lambda device, dtype: {"flops_per_s": 1e6, "source": "test"})
    r = efficiency.record({"prefill": 3e5, "decode": 1e5}, {"prefill": 1.0, "decode": 1.0}, "cpu", "float32")
    assert r["achieved_flops_per_s"] == 2e5 and r["mfu"] == 0.2
    assert r["mfu_by_part"] == {"prefill": 0.3, "decode": 0.1}


@pytest.mark.parametrize("name, dtype, expected", [
    ("NVIDIA H100 80GB HBM3", "bfloat16", 989e12), ("NVIDIA H100 PCIe", "bfloat16", 756e12),
    ("NVIDIA A100-SXM4-80GB", "float32", 19.5e12), ("Tesla V100-SXM2-16GB", "bfloat16", None),
    ("NVIDIA Unknown GPU", "bfloat16", None)])
def test_a_gpus_peak_is_its_datasheets_by_name_or_none(monkeypatch, name, dtype, expected):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: name)
    peak = efficiency.peak_flops("cuda", dtype)
    assert peak["flops_per_s"] == expected and (expected is not None or "no datasheet" in peak["source"]
                                                or "not in the datasheet" in peak["source"])


def test_a_cpus_peak_is_measured_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("PEFT_BENCH_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(efficiency, "measure_matmul",
                        lambda dtype: calls.append(dtype) or {"flops_per_s": 5e10, "n": 2048, "samples": 5})
    first, again = efficiency.cpu_peak("float32"), efficiency.cpu_peak("float32")
    assert first == again and first["flops_per_s"] == 5e10 and calls == [torch.float32]
    efficiency.cpu_peak("bfloat16")
    assert calls == [torch.float32, torch.bfloat16]  # a dtype of its own
    monkeypatch.setenv("PEFT_BENCH_REPROBE", "1")
    efficiency.cpu_peak("float32")
    assert len(calls) == 3


def test_the_measured_matmul_shrinks_where_a_product_is_slow(monkeypatch):
    monkeypatch.setattr(efficiency, "PEAK_SAMPLE_S", 0.0)  # every size "too slow": down to the floor
    measured = efficiency.measure_matmul(torch.float32, n=1024, samples=2)
    assert measured["n"] == 256 and measured["flops_per_s"] > 0
