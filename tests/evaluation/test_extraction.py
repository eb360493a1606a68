"""Answer extraction on realistic responses: every rule of every answer type."""
import pytest

from pipeline_lib.catalog.answers import ANSWER_TYPES, get_type
from pipeline_lib.evaluation.extraction import RULES, score, score_all_rules

NUMBER_CASES = [  # response, gold, paper rule correct?, strict rule correct?
    ("He needs 24 * 24 = 576 tiles. The answer is 576.", "576.0", True, True),
    ("The total is 1,234 dollars.", "1234", True, True),
    ("It drops to -5 degrees.", "-5", True, True),
    ("Temperature: 3 - 8 = -5. The answer is -5.", "-5", True, True),
    ("She pays 2.50 each, 7.5 in all", "7.5", True, True),
    ("3 apples and 4 pears make 7", "7", True, True),
    ("The answer is $18.00.", "18", True, True),
    ("The answer is $1,080.", "1080.0", True, True),
    ("The answer is 3/4.", "0.75", False, True),
    ("Half of 10 is 5, so 5 cookies remain.", "5", True, True),
    ("The answer is 42. I hope this helps! Step 3 of 3.", "42", False, True),
    ("The answer is 12 apples, 3 left over.", "12", False, True),
    ("The answer is 7 hours and 30 minutes.", "7", False, True),
    ("She has 5 cats. The answer is 5. (Note: 2 are kittens.)", "5", False, True),
    ("The answer is: 64", "64", True, True),
    ("Answer: 9", "9", True, True),
    ("no number here", "1", False, False),
    ("", "0", False, False),
    ("The answer is 0.5 liters.", "0.5", True, True),
    ("It costs 1,000,000 dollars. The answer is 1,000,000.", "1000000", True, True),
    ("The answer is 100.0005", "100", True, True),  # within 1e-3
    ("The answer is 100.01", "100", False, False),  # outside 1e-3
    ("2 + 2 = 4\nThe answer is 4\n### Instruction:", "4", True, True),
    # the stated expression's result is the answer, not its first operand
    ("The answer is 220 + 90 + 60 = 370.", "370", True, True),
    ("The answer is 5 + 3 = 8 apples.", "8", True, True),
    ("The answer is 10 * 2 = 20 * 3 = 60.", "60", True, True),
    ("The answer is 16 − 4 = 12", "12", True, True),
    ("The answer is: 36 / 4 = 9", "9", True, True),
    ("The answer is 3 x $4 = $12.", "12", True, True),
    ("The answer is 3 * 4 equals 12.", "12", True, True),
    ("So, the answer is 5 arms and 3 legs, or 8 limbs in total.", "8", True, True),
    ("The answer is 3 x 4, which is 12.", "12", True, True),
    ("The answer is 12, which is 3 x 4.", "12", False, True),  # the part that is no operation states it
    ("The answer is 40, since 8 x 5 = 40", "40", True, True),
    ("The answer is 4 (2 + 2)", "4", False, True),
    # the last statement counts, also on the same line as an earlier one
    ("So, the answer is 600 - 327 = 273. The answer is 273.", "273", True, True),
    ("The answer is 5. Wait, the answer is 7.", "7", True, True),
    ("So the answer is 15 - 7 = 8. The answer is 8 cookies.", "8", True, True),
    ("the answer is 4\nThe answer is 6", "6", True, True),
    # a minus between two numbers is an operator, not a sign
    ("The temperature went from 20-5", "5", False, True),
    ("He computes 20 -5 first", "5", False, True),
    ("The answer is -$5.", "-5", False, True),
    ("It was -3 degrees, then 4-7 = -3", "-3", True, True),
]


@pytest.mark.parametrize("response, gold, paper_ok, strict_ok", NUMBER_CASES)
def test_number_rules(response, gold, paper_ok, strict_ok):
    rules = score_all_rules("number", response, gold)
    assert rules["paper"][1] == paper_ok
    assert rules["strict"][1] == strict_ok
    assert score("number", response, gold) == rules["paper"]  # the paper rule is the reported one


LETTER_CASES = [  # response, stated rule's answer, upstream paper rule's answer
    ("The answer is (D).", "D", "D"),
    ("Answer: B", "B", "A"),
    ("answer is option (E) since", "E", "E"),
    ("A: the rate is 5 km/h. The answer is C.", "C", "A"),
    ("Rationale: The difference is 1.23. The answer is (D).", "D", "D"),
    ("Answer Choices: (A) 1 (B) 2. The answer is C", "C", "A"),
    ("After checking each option, (B)", "B", "A"),
    ("So it must be E", "E", "E"),
    ("(A) or (B)? I choose B", "B", "A"),
    ("The answer is a number", None, None),
    ("Apples cost more", None, "A"),
    ("Because Bob ate. The answer is (A)", "A", "B"),
]


@pytest.mark.parametrize("response, stated, paper", LETTER_CASES)
def test_letter_rules(response, stated, paper):
    rules = score_all_rules("letter", response, "A")
    assert rules["stated"][0] == stated
    assert rules["paper"][0] == paper


OPTION_CASES = [  # answer type, response, stated rule's answer, paper rule's answer
    ("true_false", "the correct answer is false", "false", "false"),
    ("true_false", "It is true that ... the correct answer is false", "false", "true"),
    ("true_false", "True", "true", None),  # upstream's rule is case-sensitive
    ("true_false", "falsehood everywhere", None, "false"),
    ("solution", "the correct answer is solution2", "solution2", "solution2"),
    ("solution", "solution1 or solution2? the correct answer is solution2", "solution2", "solution1"),
    ("answer5", "the correct answer is answer3", "answer3", "answer3"),
    ("answer5", "Answer: answer4", "answer4", "answer4"),
    ("answer5", "answer1 and answer2 both seem fine", None, "answer1"),
    ("answer5", "answer12", None, "answer1"),
    ("ending4", "the correct answer is ending4.", "ending4", "ending4"),
    ("option2", "option1", "option1", "option1"),
    ("option2", "none of them", None, None),
    ("answer5", "the answer is answer1, no: the correct answer is answer2", "answer2", "answer1"),
]


@pytest.mark.parametrize("answer_type, response, stated, paper", OPTION_CASES)
def test_option_rules(answer_type, response, stated, paper):
    rules = score_all_rules(answer_type, response, "x")
    assert rules["stated"][0] == stated
    assert rules["paper"][0] == paper


def test_option_scoring_and_gold_validation():
    assert score("answer5", "the correct answer is answer3", "answer3") == ("answer3", True)
    assert score("true_false", "the correct answer is TRUE", "true") == ("true", True)
    kinds = ANSWER_TYPES
    assert kinds["answer5"].valid_gold("answer5") and not kinds["answer5"].valid_gold("answer6")
    assert kinds["number"].valid_gold("1,234.5") and not kinds["number"].valid_gold("seven")
    assert kinds["letter"].valid_gold("E") and not kinds["letter"].valid_gold("F")


def test_the_type_of_a_gold_answer_is_inferred():
    from pipeline_lib.catalog.answers import infer_type

    cases = {"true": "true_false", "solution2": "solution", "answer4": "answer5", "ending1": "ending4",
             "option2": "option2", "12.5": "number", "-3": "number", "C": "letter", "maybe": None, "answer6": None}
    assert {gold: (t.name if (t := infer_type(gold)) else None) for gold in cases} == cases


def test_reported_and_paper_rules_are_explicit():
    for kind in ANSWER_TYPES.values():
        assert kind.reported in kind.rules and kind.paper in kind.rules
        assert tuple(RULES[kind.name]) == kind.rules  # the catalogue names exactly the rules evaluation implements
    assert ANSWER_TYPES["number"].reported == "paper" and ANSWER_TYPES["letter"].reported == "stated"


def test_unknown_answer_type_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown answer type 'bool'; valid: number, letter, true_false"):
        get_type("bool")


def test_free_text_answers_compare_what_follows_the_last_stated_answer():
    from pipeline_lib.catalog.answers import get_type, infer_type
    from pipeline_lib.evaluation.extraction import score

    assert score("text", "So x = 1/2.\nThe answer is: $\\frac{1}{2}$.", "\\frac {1}{2}") == ("\\frac{1}{2}", True)
    assert score("text", "The answer is: \\frac{1}{3}", "\\frac{1}{2}")[1] is False
    assert score("text", "no statement", "x")[0] is None
    assert get_type("text").valid_gold("\\sqrt{2}") and not get_type("text").valid_gold("  ")
    assert infer_type("\\sqrt{2}") is None  # auto never infers free text, which any answer would be
