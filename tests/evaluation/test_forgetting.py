"""Forgetting (evaluation/forgetting.py): the reference text from each kind of source, its windows, and the
cross-entropy change measured numerically: zero for an adapter that is an identity, the base model's own
cross-entropy with the adapter disabled, and a change once the adapter's weights move."""
import json

import pytest
import torch

from pipeline_lib import adapters
from pipeline_lib.evaluation import forgetting

LORA = {"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}


def test_the_builtin_reference_needs_no_network_and_is_identified():
    text, about = forgetting.reference_text("python-docs")
    assert len(text) > 100_000 and about["kind"] == "builtin" and "Python" in about["name"]
    assert about["sha256"] == forgetting.reference_text("python-docs")[1]["sha256"]  # deterministic


def test_local_files_and_their_errors(tmp_path):
    (tmp_path / "a.txt").write_text("one two three")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "first"}) + "\n\n" + json.dumps({"text": "second"}) + "\n")
    assert forgetting.reference_text({"path": str(tmp_path / "a.txt")})[0] == "one two three"
    text, about = forgetting.reference_text({"path": str(tmp_path / "b.jsonl")})
    assert text == "first\n\nsecond" and about["documents"] == 2
    with pytest.raises(forgetting.ReferenceError, match=r"b.jsonl:1: no field 'body'"):
        forgetting.reference_text({"path": str(tmp_path / "b.jsonl"), "field": "body"})
    with pytest.raises(forgetting.ReferenceError, match="missing.txt does not exist"):
        forgetting.reference_text({"path": str(tmp_path / "missing.txt")})
    with pytest.raises(forgetting.ReferenceError, match="unknown 'wiki'; valid: python-docs"):
        forgetting.reference_text("wiki")


def test_a_datasets_folder_is_a_reference(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["alpha beta", "", "gamma"]}).save_to_disk(str(tmp_path / "ref"))
    text, about = forgetting.reference_text({"datasets": str(tmp_path / "ref"), "field": "text"})
    assert text == "alpha beta\n\ngamma" and about["documents"] == 2 and about["kind"] == "datasets"


def test_windows_start_with_bos_and_hold_the_first_tokens(tiny):
    _, tokenizer = tiny
    text, _ = forgetting.reference_text("python-docs")
    rows = forgetting.windows(tokenizer, text, tokens=300, sequence_length=64)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    body = 64 - (tokenizer.bos_token_id is not None)
    assert rows.shape == (300 // body, 64)
    assert rows[:, -body:].reshape(-1).tolist() == ids[:rows.shape[0] * body]
    with pytest.raises(forgetting.ReferenceError, match="fewer than one window"):
        forgetting.windows(tokenizer, "short", tokens=300, sequence_length=64)


def test_forgetting_is_zero_at_identity_and_moves_with_the_weights(tiny):
    model, tokenizer = tiny
    text, _ = forgetting.reference_text("python-docs")
    rows = forgetting.windows(tokenizer, text, tokens=256, sequence_length=32)
    base = forgetting.cross_entropy(model, rows, batch_size=3)
    # the same value from logits computed by hand, one window at a time
    with torch.no_grad():
        by_hand = torch.cat([torch.nn.functional.cross_entropy(model(r[None]).logits[0, :-1], r[1:], reduction="none")
                             for r in rows]).mean()
    assert base == pytest.approx(float(by_hand), rel=1e-5)
    model = adapters.attach(model, LORA)  # LoRA starts as an identity (B = 0)
    assert forgetting.cross_entropy(model, rows) == pytest.approx(base, abs=1e-6)
    generator = torch.Generator().manual_seed(0)  # whatever tests ran before: the same perturbation
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    with adapters.disabled(model):
        assert forgetting.cross_entropy(model, rows) == pytest.approx(base, abs=1e-6)
    assert abs(forgetting.cross_entropy(model, rows) - base) > 1e-3
