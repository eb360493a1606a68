"""The log-likelihood protocols through lm-eval on our models: its per-choice log-likelihoods are a plain forward
pass of the model we give it (within 1e-4), the adapter is really applied (LoRA, a bottleneck adapter, a 4-bit
base), and the scores come back per item."""
import json

import pytest
import torch

from helpers import settings
from pipeline_lib import adapters, models
from pipeline_lib.catalog import base_models
from pipeline_lib.catalog.datasets import DATASETS
from pipeline_lib.evaluation import loglikelihood

pytest.importorskip("lm_eval")
SETS = ["boolq", "piqa", "winogrande", "ARC-Challenge"]  # four formats, winogrande's partial evaluation included


@pytest.fixture(scope="module")
def records(data_mirror):
    out = []
    for name in SETS:
        spec = DATASETS[name]
        for i, item in enumerate(json.loads((data_mirror / spec.source.relpath).read_text())[:3]):
            out.append({**item, "id": f"{name}-{i}", "dataset": name, "answer_type": spec.answer_type})
    return out


def plain_loglikelihood(model, tokenizer, context: str, continuation: str) -> float:
    """Ours: one unpadded forward pass; the continuation's tokens are those of context + continuation after the
    context's (lm-eval's split, a context's trailing spaces moved to the continuation)."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole, head = tokenizer.encode(context + continuation), tokenizer.encode(context)
    with torch.no_grad():
        logprobs = model(torch.tensor([whole])).logits.float().log_softmax(-1)[0]
    return sum(float(logprobs[len(head) + i - 1, t]) for i, t in enumerate(whole[len(head):]))


def harness_and_plain(model, tokenizer, records, variant="options"):
    """Every (context, continuation) lm-eval scored on `model`: its log-likelihood and ours."""
    pairs = []
    for name in dict.fromkeys(r["dataset"] for r in records):
        docs, multiple = loglikelihood.documents([r for r in records if r["dataset"] == name], variant,
                                           "the correct answer is")
        _, samples, _ = loglikelihood.run_task(model, tokenizer, docs, multiple, batch_size=4)
        for s in samples:
            for (context, continuation), (ll, _) in zip(s["arguments"], s["filtered_resps"]):
                pairs.append((float(ll), plain_loglikelihood(model, tokenizer, context, continuation)))
    return pairs


def perturbed(model):
    """Adapter weights moved off their identity initialisation, so that applying the adapter shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.5 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("variant", ["options", "labels"])
def test_harness_loglikelihoods_are_a_plain_forward_pass(tiny, records, variant):
    model, tokenizer = tiny
    pairs = harness_and_plain(model.eval(), tokenizer, records, variant)
    assert len(pairs) >= 2 * len(records)
    worst = max(abs(a - b) for a, b in pairs)
    print(f"{variant}: {len(pairs)} choices, largest |lm-eval - ours| = {worst:.2e}")
    assert worst < 1e-4


@pytest.mark.parametrize("spec", [
    {"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
    {"method": "series", "bottleneck_size": 8, "target_modules": ["up_proj", "gate_proj"]},
], ids=["lora", "series"])
def test_the_adapter_is_what_lm_eval_scores(tiny_dir, records, spec):
    base, tokenizer = models.load(tiny_dir)
    base_pairs = harness_and_plain(base.eval(), tokenizer, records)
    adapted, _ = models.load(tiny_dir)
    adapted = perturbed(adapters.attach(adapted, dict(spec)))
    pairs = harness_and_plain(adapted, tokenizer, records)
    assert max(abs(a - b) for a, b in pairs) < 1e-4  # lm-eval scored the adapted model ...
    moved = max(abs(a - b) for (a, _), (b, _) in zip(pairs, base_pairs))
    print(f"{spec['method']}: adapter moves lm-eval's log-likelihoods by up to {moved:.3f}")
    assert moved > 1e-2  # ... not the base it was built on


def test_a_4bit_base_with_lora_through_the_harness(tiny64_dir, records):
    pytest.importorskip("bitsandbytes")
    model, tokenizer = models.load(tiny64_dir, quantization=base_models.quantization_settings("4bit"))
    model = perturbed(adapters.attach(model, {"method": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]}))
    pairs = harness_and_plain(model, tokenizer, records[:3])
    assert max(abs(a - b) for a, b in pairs) < 1e-3  # 4-bit kernels: batched and single rows round alike


def test_evaluate_returns_per_item_outcomes_and_lm_evals_scores(tiny, records):
    model, tokenizer = tiny
    boolq = [r for r in records if r["dataset"] == "boolq"]
    predictions, summary = loglikelihood.evaluate(model.eval(), tokenizer, boolq,
                                            settings({"batch_size": 2}, "commonsense", "harness"), "boolq.jsonl")
    assert [p["id"] for p in predictions] == [r["id"] for r in boolq]
    for p in predictions:
        chosen = max(range(2), key=p["loglikelihoods"].__getitem__)
        assert p["extracted"] == ("true", "false")[chosen] and p["correct"] == (p["extracted"] == p["gold"])
        assert set(p["rules"]) == {"acc", "acc_norm"}
    assert summary["accuracy"] == pytest.approx(summary["lm_eval"]["acc"])
    assert summary["rules"]["acc_norm"] == pytest.approx(summary["lm_eval"]["acc_norm"])
    assert "acc_stderr" in summary["lm_eval"] and summary["protocol"] == "harness" and summary["n"] == 3
    assert "dataset_path: json" in summary["task"] and "<job scratch>" in summary["task"]
