"""Merged against unmerged inference (evaluation/merging.py): in float32 a merged LoRA gives the same greedy
outputs item by item; a method that cannot merge says why; the throughput of both forms is recorded."""
import pytest
import torch

from pipeline_lib import adapters
from pipeline_lib.evaluation import merging

RECORDS = [{"id": f"q{i}", "instruction": f"What is {i} plus {i}?", "input": "", "answer": str(2 * i),
            "answer_type": "number"} for i in range(6)]
SETTINGS = {"prompt": "alpaca", "batch_size": 3, "max_new_tokens": 6, "stop_strings": [], "cut_strings": [],
            "generation": {}, "protocol": "generate"}


def _moved(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    return model


def test_a_merged_lora_generates_what_the_unmerged_one_does_in_float32(tiny):
    model, tokenizer = tiny
    model = _moved(adapters.attach(model, {"method": "lora", "r": 4, "lora_alpha": 8,
                                          "target_modules": ["q_proj", "v_proj"]}))
    result = merging.compare(model.eval(), tokenizer, RECORDS, SETTINGS)
    assert result["mergeable"] and result["items"] == len(RECORDS)
    assert result["agreement"]["same_response"] == len(RECORDS) and result["agreement"]["different_response"] == 0
    assert result["merged"]["items_per_s"] > 0 and result["unmerged"]["items_per_s"] > 0
    assert result["speedup"] == pytest.approx(result["merged"]["items_per_s"] / result["unmerged"]["items_per_s"],
                                              rel=1e-2)


def test_a_method_that_cannot_merge_is_recorded_unmerged_with_the_reason(tiny):
    model, tokenizer = tiny
    model = adapters.attach(model, {"method": "series", "bottleneck_size": 8, "target_modules": ["up_proj"]})
    result = merging.compare(model.eval(), tokenizer, RECORDS[:2], SETTINGS)
    assert not result["mergeable"] and "non-linearity" in result["why"]
    assert result["unmerged"]["items_per_s"] > 0 and "merged" not in result
