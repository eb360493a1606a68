"""Merged against unmerged inference (evaluation/merging.py, the merging job of evaluation/jobs.py), measured on the
model as the evaluation builds it: merged in float32 then cast, so its greedy outputs are exactly what `evaluate`
scores; in float32 the two forms agree item by item; in bf16 the record carries the float32 control and the base
model's own bf16-vs-float32 floor; speed in generated tokens per second, the forms alternating; a method that cannot
merge says why."""
import json

import pytest
import torch

from helpers import settings as protocol_settings
from pipeline_lib import adapters
from pipeline_lib.evaluation import merging
from pipeline_lib.evaluation.jobs import evaluate
from pipeline_lib.evaluation.jobs import merging as merging_job
from pipeline_lib.runtime.files import read_jsonl, write_jsonl

RECORDS = [{"id": f"q{i}", "dataset": "t", "instruction": f"What is {i} plus {i}?", "input": "", "output": "",
            "answer": str(2 * i), "answer_type": "number"} for i in range(6)]
LABELS = {"model": "tiny-llama", "adapter": "lora", "train_set": "t", "seed": None, "run": "lora"}


def _saved(tiny, tmp_path, spec) -> str:
    """A tiny adapter whose weights move the model (LoRA's B drawn, not zero), saved as a fine-tune saves it."""
    model, _ = tiny
    model = adapters.attach(model, spec)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    out = tmp_path / "adapter"
    adapters.save(model, out)
    return str(out)


def _run(tiny_dir, adapter, tmp_path, dtype):
    data = tmp_path / "data.jsonl"
    write_jsonl(data, RECORDS)
    settings = {**protocol_settings({"batch_size": 3, "max_new_tokens": 6, "dtype": dtype}, "math"),
                "stop_strings": [], "cut_strings": []}
    record = merging_job(str(tiny_dir), adapter, str(data), len(RECORDS), str(tmp_path / "merging.json"), LABELS,
                         settings)
    return record, settings, data


LORA = {"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}


def test_in_float32_the_merged_form_agrees_and_speed_is_in_generated_tokens(tiny, tiny_dir, tmp_path):
    record, _, _ = _run(tiny_dir, _saved(tiny, tmp_path, LORA), tmp_path, "float32")
    assert record["mergeable"] and record["dtype"] == "float32" and record["items"] == len(RECORDS)
    assert record["agreement"]["same_response"] == len(RECORDS)
    for form in ("merged", "unmerged"):
        speed = record[form]
        assert speed["rounds"] == merging.ROUNDS and speed["new_tokens"] > 0
        assert speed["new_tokens_per_s"] == pytest.approx(speed["new_tokens"] / speed["wall_time_s"], rel=1e-2)
    assert record["speedup"] == pytest.approx(record["merged"]["new_tokens_per_s"] /
                                              record["unmerged"]["new_tokens_per_s"], rel=1e-2)
    assert "float32_control" not in record and json.loads((tmp_path / "merging.json").read_text()) == record


def test_in_bf16_the_merged_form_is_what_evaluate_scores_with_a_control_and_a_floor(tiny, tiny_dir, tmp_path,
                                                                                      monkeypatch):
    adapter = _saved(tiny, tmp_path, LORA)
    seen = {}
    original = merging.timed

    def spy(*args, **kwargs):
        seen.update(original(*args, **kwargs))
        return seen
    monkeypatch.setattr(merging, "timed", spy)
    record, settings, data = _run(tiny_dir, adapter, tmp_path, "bfloat16")
    assert record["dtype"] == "bfloat16" and record["merged_in"].startswith("float32, then cast")
    control, floor = record["float32_control"], record["precision_floor"]
    assert control["same_response"] == len(RECORDS)  # merging itself is exact up to float32 rounding
    assert floor["items"] == len(RECORDS) and "bfloat16 against float32" in floor["of"]
    # the merged form's responses are the evaluation's: the same weights, built the same way
    evaluate(str(tiny_dir), adapter, [{"protocol": settings["protocol"], "dataset": "t", "data": str(data),
                                       "predictions": str(tmp_path / "p.jsonl"), "score": str(tmp_path / "s.json")}],
             [settings], LABELS)
    scored = [p["response"] for p in read_jsonl(tmp_path / "p.jsonl")]
    assert [p["response"] for p in seen["merged"]["predictions"]] == scored


def test_a_method_that_cannot_merge_is_recorded_with_the_reason(tiny, tiny_dir, tmp_path):
    adapter = _saved(tiny, tmp_path, {"method": "series", "bottleneck_size": 8, "target_modules": ["up_proj"]})
    record, _, _ = _run(tiny_dir, adapter, tmp_path, "float32")
    assert not record["mergeable"] and "non-linearity" in record["why"] and "merged" not in record
