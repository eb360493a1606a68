from pipeline_lib.evaluation import evaluate

RECORDS = [
    {"id": "a", "instruction": "How many apples?", "input": "", "answer": "3", "answer_type": "number"},
    {"id": "b", "instruction": "Which one? Answer Choices: (A) 1 (B) 2", "input": "", "answer": "B",
     "answer_type": "letter"},
    {"id": "c", "instruction": "How many clips did she sell altogether in April and May?", "input": "",
     "answer": "72", "answer_type": "number"},
]


def test_predictions_follow_record_order_and_summary_counts_them(tiny):
    model, tokenizer = tiny
    predictions, summary = evaluate(model, tokenizer, RECORDS, batch_size=2, max_new_tokens=6, progress=False)
    assert [p["id"] for p in predictions] == ["a", "b", "c"]
    assert [p["gold"] for p in predictions] == ["3", "B", "72"]
    assert summary["n"] == 3 and summary["correct"] == sum(p["correct"] for p in predictions)
    assert summary["accuracy"] == summary["correct"] / 3 and summary["wall_time_s"] >= 0
