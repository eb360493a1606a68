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


def test_windows_start_with_bos_and_come_from_across_the_documents(tiny):
    """Round-robin: the first window of every document before any document's second; a window is a document's
    consecutive tokens; the builtin reference's topics come in a seeded order, not alphabetically."""
    _, tokenizer = tiny
    documents, about = forgetting.reference_documents("python-docs")
    assert "seed" in about["order"] and documents[:2] != [d for _, d in sorted(
        __import__("pydoc_data.topics").topics.topics.items())][:2]
    rows = forgetting.windows(tokenizer, documents, tokens=16 * 63, sequence_length=64)
    body = 64 - (tokenizer.bos_token_id is not None)
    assert rows.shape == (16, 64)
    firsts = [ids[:body] for ids in tokenizer(documents, add_special_tokens=False)["input_ids"] if len(ids) >= body]
    assert rows[:, -body:].tolist() == firsts[:16]  # 16 windows from 16 documents
    few = forgetting.windows(tokenizer, ["a b c " * 200, "d e f " * 200], tokens=10_000, sequence_length=64)
    whole = [tokenizer(d, add_special_tokens=False)["input_ids"] for d in ("a b c " * 200, "d e f " * 200)]
    assert few[0, -body:].tolist() == whole[0][:body] and few[1, -body:].tolist() == whole[1][:body]
    assert few[2, -body:].tolist() == whole[0][body:2 * body]
    with pytest.raises(forgetting.ReferenceError, match="no document of at least one window"):
        forgetting.windows(tokenizer, ["short"], tokens=300, sequence_length=64)


def test_forgetting_is_zero_at_identity_and_moves_with_the_weights(tiny):
    model, tokenizer = tiny
    text, _ = forgetting.reference_text("python-docs")
    rows = forgetting.windows(tokenizer, text, tokens=256, sequence_length=32)
    base = forgetting.mean(forgetting.cross_entropy(model, rows, batch_size=3))
    # the same value from logits computed by hand, one window at a time
    with torch.no_grad():
        by_hand = torch.cat([torch.nn.functional.cross_entropy(model(r[None]).logits[0, :-1], r[1:], reduction="none")
                             for r in rows]).mean()
    assert base == pytest.approx(float(by_hand), rel=1e-5)
    model = adapters.attach(model, LORA)  # LoRA starts as an identity (B = 0)
    assert forgetting.mean(forgetting.cross_entropy(model, rows)) == pytest.approx(base, abs=1e-6)
    generator = torch.Generator().manual_seed(0)  # whatever tests ran before: the same perturbation
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    with adapters.disabled(model):
        assert forgetting.mean(forgetting.cross_entropy(model, rows)) == pytest.approx(base, abs=1e-6)
    assert abs(forgetting.mean(forgetting.cross_entropy(model, rows)) - base) > 1e-3


def test_documents_of_unequal_length_score_as_each_alone(tiny):
    """Padded and masked in one batch, each document's summed loss and tokens are those of it scored by itself."""
    model, tokenizer = tiny
    documents = ["one two three four five six seven", "alpha beta", "x y z " * 30]
    rows = forgetting.document_rows(tokenizer, documents, sequence_length=40)
    assert [len(r) for r in rows][2] == 40  # truncated
    together = forgetting.cross_entropy(model, rows, batch_size=3)
    alone = [forgetting.cross_entropy(model, [r], batch_size=1)[0] for r in rows]
    assert [n for _, n in together] == [len(r) - 1 for r in rows] == [n for _, n in alone]
    assert [s for s, _ in together] == pytest.approx([s for s, _ in alone], rel=1e-4)


def test_the_interval_of_a_difference_is_paired_by_window():
    """Two fine-tunes that differ by the same amount on every window: a tight interval around it, although the
    windows themselves vary widely."""
    import numpy as np

    rng = np.random.default_rng(0)
    base = rng.uniform(1, 5, 64)
    a, b = [(x * 10, 10) for x in base + 0.05], [(x * 10, 10) for x in base]
    low, high = forgetting.bootstrap_difference(a, b)
    assert low == pytest.approx(0.05, abs=1e-9) and high == pytest.approx(0.05, abs=1e-9)
    noisy = [(x * 10, 10) for x in base + rng.normal(0, 0.5, 64)]
    low, high = forgetting.bootstrap_difference(noisy, b)
    assert low < 0 < high


def test_the_job_keeps_every_window_an_interval_and_the_precision_floor(tiny, tiny_dir, tmp_path, monkeypatch):
    """The forgetting job's record: per-window values, the mean they give, a 95% interval holding it; in bf16, the
    disabled model's cross-entropy in float32 on the first windows beside the bf16 one."""
    from pipeline_lib.evaluation.jobs import forgetting as forgetting_job
    from pipeline_lib.models import precision

    model, _ = tiny
    model = adapters.attach(model, LORA)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.5)
    adapters.save(model, tmp_path / "adapter")
    original = precision.resolve
    monkeypatch.setattr(precision, "resolve", lambda requested, device, work=None: (
        ("bfloat16", {"chosen": "bfloat16", "basis": "set"}) if requested == "auto" else
        original(requested, device, work)))
    record = forgetting_job(str(tiny_dir), str(tmp_path / "adapter"), str(tmp_path / "f.json"), {"model": "m"},
                            {"builtin": "python-docs"}, tokens=31 * 20, sequence_length=32, batch_size=4)
    windows = record["per_window"]
    assert record["windows"] == 20 == len(windows["enabled"]) == len(windows["disabled"])
    mean = (sum(windows["enabled"]) - sum(windows["disabled"])) / sum(windows["tokens"])
    assert record["forgetting"] == pytest.approx(mean, abs=1e-3) and record["dtype"] == "bfloat16"
    low, high = record["forgetting_ci95"]
    assert low <= record["forgetting"] <= high
    floor = record["precision_floor"]
    assert floor["windows"] == 16 and floor["difference"] == pytest.approx(
        floor["cross_entropy_bfloat16"] - floor["cross_entropy_float32"], abs=1e-5)
    # the base pass computed once carries the float32 floor too: a job that takes it writes the same record
    from pipeline_lib.evaluation.jobs import forgetting_base

    base = forgetting_base(str(tiny_dir), str(tmp_path / "base.json"), {"builtin": "python-docs"}, 31 * 20, 32, 4)
    assert base["dtype"] == "bfloat16" and len(base["floor_float32"]) == 16
    shared = forgetting_job(str(tiny_dir), str(tmp_path / "adapter"), str(tmp_path / "g.json"), {"model": "m"},
                            {"builtin": "python-docs"}, tokens=31 * 20, sequence_length=32, batch_size=4,
                            base=str(tmp_path / "base.json"))
    assert "base.json" in shared["disabled_pass"]
    assert {k: shared[k] for k in ("forgetting", "per_window", "precision_floor")} == \
        {k: record[k] for k in ("forgetting", "per_window", "precision_floor")}


@pytest.mark.parametrize("spec", [LORA, {"method": "series", "bottleneck_size": 8, "target_modules": ["up_proj"]},
                                  {"method": "parallel", "bottleneck_size": 8, "target_modules": ["up_proj"]},
                                  {"method": "prefix_tuning", "num_virtual_tokens": 4}])
def test_the_base_pass_computed_once_is_each_adapters_disabled_pass(tiny_dir, tmp_path, spec):
    """forgetting_base (once per model) gives, window by window and bit for bit, the disabled pass a fine-tune's
    job would compute itself, so the job takes it and writes the record it would have written alone; a base pass
    made another way (here: other windows) is not taken."""
    from pipeline_lib import models
    from pipeline_lib.evaluation.jobs import ReferencePass, forgetting_base
    from pipeline_lib.evaluation.jobs import forgetting as forgetting_job

    torch.manual_seed(0)
    model = adapters.attach(models.load(tiny_dir)[0], dict(spec))
    with torch.no_grad():  # an adapter that is not the identity, as after training
        for p in (p for p in model.parameters() if p.requires_grad):
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.1)
    adapters.save(model, tmp_path / "adapter")
    options = ({"builtin": "python-docs"}, 31 * 6, 32, 4)
    base = forgetting_base(str(tiny_dir), str(tmp_path / "base.json"), *options)
    own = ReferencePass(str(tiny_dir), str(tmp_path / "adapter"), *options, "cpu", None, False, "windows")
    assert own.made == base["made"]
    assert own.cross_entropy(disabled=True) == [tuple(x) for x in base["per_window"]]  # exactly
    alone = forgetting_job(str(tiny_dir), str(tmp_path / "adapter"), str(tmp_path / "alone.json"), {"model": "m"},
                           *options)
    shared = forgetting_job(str(tiny_dir), str(tmp_path / "adapter"), str(tmp_path / "shared.json"), {"model": "m"},
                            *options, base=str(tmp_path / "base.json"))
    assert alone["disabled_pass"] == "computed in this job" and "base.json" in shared["disabled_pass"]
    same = ("cross_entropy_disabled", "cross_entropy_enabled", "forgetting", "forgetting_ci95", "per_window")
    assert {k: shared[k] for k in same} == {k: alone[k] for k in same}
    assert shared["forgetting"] != 0
    other = forgetting_job(str(tiny_dir), str(tmp_path / "adapter"), str(tmp_path / "other.json"), {"model": "m"},
                           {"builtin": "python-docs"}, 31 * 5, 32, 4, base=str(tmp_path / "base.json"))
    assert other["disabled_pass"] == "computed in this job" and other["windows"] == 5
