"""Evaluation protocols as data, and the option parsers the log-likelihood protocols read each item with."""
import json

import pytest

from helpers import DEFAULTS, filled_config, settings
from pipeline_lib.catalog import protocols
from pipeline_lib.catalog.datasets import DATASETS
from pipeline_lib.evaluation import choices, loglikelihood
from pipeline_lib.planning.estimates import Estimates
from pipeline_lib.planning.plan import ConfigError, prepare

MULTIPLE_CHOICE = [n for n, d in DATASETS.items() if d.answer_type in choices.FORMATS and d.source.sha256
                   and n != "commonsense_170k"]  # every mirrored commonsense file, test and train


@pytest.mark.parametrize("name", MULTIPLE_CHOICE)
def test_every_mirrored_item_parses_into_its_options(name, data_mirror):
    spec = DATASETS[name]
    items = json.loads((data_mirror / spec.source.relpath).read_text())
    counts = set()
    for i, item in enumerate(items):
        parsed = choices.parse(spec.answer_type, item["instruction"], f"{name} item {i}")
        assert item["answer"] in parsed.labels and len(parsed.options) == len(parsed.labels)
        assert parsed.question and all(parsed.options), (name, i)
        assert all(o not in ("", parsed.question) for o in parsed.options)
        if spec.answer_type == "option2":
            assert parsed.question.count("_") == 1, (name, i)  # the blank lm-eval's convention fills
        counts.add(len(parsed.options))
        assert choices.option_count(spec.answer_type, item["instruction"]) == len(parsed.options)
    assert counts <= {2, 3, 4, 5} and items


def test_the_parsers_read_each_format_exactly():
    piqa = ("Please choose the correct solution to the question: How do I dry a shirt?\n\nSolution1: hang it up"
            "\n\nSolution2: put it in water\n\nAnswer format: solution1/solution2")
    assert choices.parse("solution", piqa) == choices.Choices("How do I dry a shirt?", ("hang it up", "put it in water"),
                                                              ("solution1", "solution2"))
    arc = ("Please choose the correct answer to the question: Which is a gas?\n\nAnswer1: ice Answer2: steam "
           "Answer3: stone\n\nAnswer format: answer1/answer2/answer3")
    assert choices.parse("answer5", arc).options == ("ice", "steam", "stone")
    hellaswag = ("Please choose the correct ending to complete the given sentence: A man sits down. He\n\n"
                 "Ending1: eats. Ending2: flies. Ending3: sings. Ending4: sleeps.\n\n"
                 "Answer format: ending1/ending2/ending3/ending4")
    assert choices.parse("ending4", hellaswag).labels == ("ending1", "ending2", "ending3", "ending4")
    with pytest.raises(choices.FormatError, match=r"piqa.json item 7: the instruction does not follow the solution"):
        choices.parse("solution", piqa.replace("Solution2", "Option2"), "piqa.json item 7")
    with pytest.raises(choices.FormatError, match="answer type 'number' has no multiple-choice format"):
        choices.parse("number", "What is 2 + 2?", "gsm8k item 0")
    # options numbered out of order are refused, not misread
    with pytest.raises(choices.FormatError):
        choices.parse("answer5", arc.replace("Answer2: steam", "Answer3: steam"))


def test_harness_documents_follow_lm_evals_conventions():
    winogrande = {"id": "w", "answer_type": "option2", "answer": "option2", "input": "",
                  "instruction": "Please choose the correct answer to fill in the blank to complete the given sentence: "
                                 "Sarah was a better surgeon than Maria so _ got the easier cases.\n\nOption1: Sarah "
                                 "Option2: Maria Answer format: option1/option2"}
    boolq = {"id": "b", "answer_type": "true_false", "answer": "false", "input": "",
             "instruction": "Please answer the following question with true or false, question: is the sky green?"
                            "\n\nAnswer format: true/false"}
    docs, multiple = loglikelihood.documents([winogrande], "options", protocols.ANSWER_LEAD)
    assert multiple and docs[0] == {"id": "w", "gold": 1, "continuation": "got the easier cases.",
                                    "contexts": ["Sarah was a better surgeon than Maria so Sarah",
                                                 "Sarah was a better surgeon than Maria so Maria"]}
    docs, multiple = loglikelihood.documents([boolq], "options", protocols.ANSWER_LEAD)
    assert not multiple and docs[0]["context"] == "Question: is the sky green?\nAnswer:" and docs[0]["gold"] == 1
    docs, _ = loglikelihood.documents([winogrande, boolq][1:], "labels", protocols.ANSWER_LEAD)
    assert docs[0]["context"].endswith("### Response:\n                the correct answer is")
    assert docs[0]["choices"] == ["true", "false"]


def test_protocol_settings_and_where_they_apply():
    assert list(protocols.PROTOCOLS) == ["generate", "paper", "harness", "harness_labels"]
    harness_settings = settings({"batch_size": 8}, "commonsense", "harness")
    assert harness_settings == {"protocol": "harness", "scorer": "loglikelihood", "suite": "commonsense",
                                "dtype": DEFAULTS["dtype"], "prompt": "alpaca", "batch_size": 8, "variant": "options",
                                "answer_lead": "the correct answer is", "reported": "acc"}
    assert settings({}, "math", "generate")["scorer"] == "generate"
    assert not protocols.get("harness").applies("math") and protocols.get("paper").applies("math")
    with pytest.raises(ValueError, match="unknown evaluation protocol 'beam'; valid: generate, paper, harness"):
        protocols.get("beam")


def test_the_plan_makes_one_job_per_applicable_protocol():
    config = filled_config()
    config["eval_sets"] = ["gsm8k", "boolq"]
    config["evaluation"]["protocols"] = ["generate", "harness"]
    plan = prepare(config)
    assert plan.evaluation.protocols_for("gsm8k") == ["generate"] and plan.evaluation.protocols_for("boolq") == ["generate", "harness"]
    per_row = [e[3:] for e in plan.evaluations if e[1] == "lora"]
    assert per_row == [("generate", "gsm8k"), ("generate", "boolq"), ("harness", "boolq")]
    assert plan.evaluation.settings("boolq", "harness")["scorer"] == "loglikelihood"
    with pytest.raises(ValueError, match="gsm8k is not evaluated under 'harness' in this run; its protocols: generate"):
        plan.evaluation.settings("gsm8k", "harness")
    estimates = Estimates(plan)
    estimate = estimates.evaluate("smollm2-135m", "boolq", "harness")
    assert estimate["runtime"] > 0 and estimate != estimates.evaluate("smollm2-135m", "boolq", "generate")
    config["evaluation"]["protocols"] = ["harness_labels"]
    config["eval_sets"] = ["gsm8k"]
    with pytest.raises(ConfigError, match="harness_labels scores commonsense sets only"):
        prepare(config)


def test_chance_is_one_over_each_items_own_options(data_mirror):
    """1/k per item, averaged: ARC-Easy's answer5 items have 3 to 5 answers (mostly 4), BoolQ 2, AQuA's lettered
    choices 5; a number has no chance level."""
    def records(name):
        spec = DATASETS[name]
        items = json.loads((data_mirror / spec.source.relpath).read_text())
        return [{"answer_type": spec.answer_type, "instruction": i["instruction"]} for i in items]
    arc = records("ARC-Easy")
    counts = [choices.option_count("answer5", r["instruction"]) for r in arc]
    assert set(counts) <= {3, 4, 5} and counts.count(4) > 0.9 * len(counts)
    assert choices.chance(arc) == pytest.approx(sum(1 / k for k in counts) / len(counts))
    assert choices.chance(records("boolq")) == 0.5 and choices.chance(records("AQuA")) == pytest.approx(0.2)
    assert choices.chance(records("gsm8k")) is None
