import json

import pytest

from helpers import settings
from pipeline_lib.evaluation.generate import evaluate

RECORDS = [
    {"id": "a", "instruction": "How many apples?", "input": "", "answer": "3", "answer_type": "number"},
    {"id": "b", "instruction": "Which one? Answer Choices: (A) 1 (B) 2", "input": "", "answer": "B",
     "answer_type": "letter"},
    {"id": "c", "instruction": "How many clips did she sell altogether in April and May?", "input": "",
     "answer": "72", "answer_type": "number"},
    {"id": "d", "instruction": "Is the sky blue? Answer format: true/false", "input": "", "answer": "true",
     "answer_type": "true_false"},
]
CFG = settings({"batch_size": 2, "max_new_tokens": 6}, "math")


def test_predictions_follow_record_order_and_summary_counts_them(tiny):
    model, tokenizer = tiny
    predictions, summary = evaluate(model, tokenizer, RECORDS, CFG, progress=False)
    assert [p["id"] for p in predictions] == ["a", "b", "c", "d"]
    assert [p["gold"] for p in predictions] == ["3", "B", "72", "true"]
    assert summary["n"] == 4 and summary["correct"] == sum(p["correct"] for p in predictions)
    assert summary["accuracy"] == summary["correct"] / 4
    low, high = summary["ci95"]
    assert 0 <= low <= summary["accuracy"] <= high <= 1
    assert set(predictions[0]["rules"]) == {"paper", "strict"} and set(predictions[1]["rules"]) == {"stated", "paper"}


def test_killed_evaluation_resumes_with_the_items_not_written(tiny, tmp_path):
    model, tokenizer = tiny
    partial = tmp_path / "p.jsonl.partial"
    full, _ = evaluate(model, tokenizer, RECORDS, CFG, partial=partial, fingerprint="f1", progress=False)
    # simulate a kill after the first batch: keep the header and two predictions, then a cut line
    lines = partial.read_text().splitlines()
    partial.write_text("\n".join(lines[:3]) + '\n{"id": "c", "resp')
    resumed, summary = evaluate(model, tokenizer, RECORDS, CFG, partial=partial, fingerprint="f1", progress=False)
    assert summary["resumed_items"] == 2
    assert resumed == full
    assert len(partial.read_text().splitlines()) == 1 + len(RECORDS)  # the cut line is gone
    # a partial file from other inputs is not reused
    _, fresh = evaluate(model, tokenizer, RECORDS, CFG, partial=partial, fingerprint="f2", progress=False)
    assert fresh["resumed_items"] == 0
    assert json.loads(partial.read_text().splitlines()[0]) == {"fingerprint": "f2"}


def test_evaluation_killed_after_its_last_item_resumes_with_nothing_to_generate(tiny, tmp_path):
    # found by the random-kill test: every item was in the partial file, only the final write was missing
    model, tokenizer = tiny
    partial = tmp_path / "p.jsonl.partial"
    full, _ = evaluate(model, tokenizer, RECORDS, CFG, partial=partial, fingerprint="f1", progress=False)
    resumed, summary = evaluate(model, tokenizer, RECORDS, CFG, partial=partial, fingerprint="f1", progress=False)
    assert resumed == full and summary["resumed_items"] == len(RECORDS) and summary["items_per_s"] is None


def test_protocol_settings_per_suite():
    paper = settings({"batch_size": 16, "max_new_tokens": 64}, "math", "paper")
    assert (paper["batch_size"], paper["max_new_tokens"], paper["stop_strings"]) == (1, 256, [])
    assert paper["generation"] == {"num_beams": 4, "temperature": 0.1, "top_p": 0.75, "top_k": 40}
    assert settings({}, "commonsense", "paper")["max_new_tokens"] == 32  # commonsense_evaluate.py
    fast = settings({"batch_size": 16, "max_new_tokens": None}, "commonsense")
    assert (fast["batch_size"], fast["max_new_tokens"]) == (16, 32) and "### Instruction:" in fast["stop_strings"]
    assert settings({"batch_size": 16, "max_new_tokens": 64}, "commonsense")["max_new_tokens"] == 64


def test_paper_protocol_runs_beam_search_without_stop_strings(tiny, monkeypatch):
    model, tokenizer = tiny
    seen = []
    generate = model.generate

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return generate(*args, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
    paper = {**settings({}, "math", "paper"), "max_new_tokens": 4}
    predictions, summary = evaluate(model, tokenizer, RECORDS[:2], paper, progress=False)
    assert summary["protocol"] == "paper" and len(predictions) == 2
    assert [k["num_beams"] for k in seen] == [4, 4] and [k["input_ids"].shape[0] for k in seen] == [1, 1]
    assert all(k["stop_strings"] is None for k in seen)


def test_paper_protocol_cuts_the_response_where_upstream_splits_it():
    from pipeline_lib.evaluation.decoding import cut_at_stop

    paper = settings({}, "math", "paper")
    text = "The answer is 5.\n### Instruction:\nWhat is 2 + 9?\n### Response:\n11"
    # upstream: output.split("### Response:")[1] keeps a run-on instruction, and its last number counts
    assert cut_at_stop(text, paper["cut_strings"]) == "The answer is 5.\n### Instruction:\nWhat is 2 + 9?"
    assert cut_at_stop(text, settings({}, "math")["cut_strings"]) == "The answer is 5."


def test_beam_search_is_refused_for_prompt_learning(tiny):
    from pipeline_lib import adapters

    model, tokenizer = tiny
    model = adapters.attach(model, {"method": "prompt_tuning", "num_virtual_tokens": 2})
    with pytest.raises(ValueError, match="beam search .* not available for prompt-learning"):
        evaluate(model, tokenizer, RECORDS[:1], settings({}, "math", "paper"), progress=False)
