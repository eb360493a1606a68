"""Prompt templates (their bytes are compared with upstream's functions in test_upstream_equivalence.py)."""
from pipeline_lib.prompts import evaluation_prompt, training_prompt, training_text


def test_training_text_extends_the_training_prompt():
    record = {"instruction": "Q", "input": "", "output": "A"}
    assert training_text(record) == training_prompt("Q") + "A"
    assert training_text({**record, "input": "ctx"}) == training_prompt("Q", "ctx") + "A"


def test_training_and_evaluation_prompts_differ_in_whitespace_only():
    for args in (("How many?",), ("How many?", "Some context")):
        train, evaluate = training_prompt(*args), evaluation_prompt(*args)
        assert train != evaluate and train.split() == evaluate.split()
        assert evaluate.endswith("### Response:\n" + " " * 16) and "noqa" not in train + evaluate
