"""Prompt templates (their bytes are compared with upstream's functions in test_upstream_equivalence.py)."""
import pytest

from pipeline_lib.catalog.prompts import evaluation_prompt, training_prompt, training_text


def test_training_text_extends_the_training_prompt():
    record = {"instruction": "Q", "input": "", "output": "A"}
    assert training_text(record) == training_prompt("Q") + "A"
    assert training_text({**record, "input": "ctx"}) == training_prompt("Q", "ctx") + "A"


def test_training_and_evaluation_prompts_differ_in_whitespace_only():
    for args in (("How many?",), ("How many?", "Some context")):
        train, evaluate = training_prompt(*args), evaluation_prompt(*args)
        assert train != evaluate and train.split() == evaluate.split()
        assert evaluate.endswith("### Response:\n" + " " * 16) and "noqa" not in train + evaluate


def test_a_configured_template_for_training_and_evaluation_alike():
    from pipeline_lib.catalog.prompts import template_problem

    peft = "Question: {instruction} Think step by step.\nAnswer:"
    record = {"instruction": "What is 2 + 2?", "input": "", "output": " 2 + 2 = 4. The answer is: 4"}
    assert evaluation_prompt(record["instruction"], "", peft) == "Question: What is 2 + 2? Think step by step.\nAnswer:"
    assert training_text(record, peft) == training_prompt(record["instruction"], "", peft) + record["output"]
    assert training_text(record, peft) == "Question: What is 2 + 2? Think step by step.\nAnswer: 2 + 2 = 4. The answer is: 4"
    with pytest.raises(ValueError, match=r"has no \{input\}, and an item has an input: 'a table'"):
        evaluation_prompt("Sum the column.", "a table", peft)
    assert template_problem(peft) is None and template_problem("alpaca") is None
    assert "has no {instruction}" in template_problem("Question: {input}")
    assert "is not a template" in template_problem("Q: {instruction} {answer}")
