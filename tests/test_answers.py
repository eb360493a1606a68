import pytest

from pipeline_lib.answers import extract_letter, extract_number, letter_first_capital, score


@pytest.mark.parametrize("response, expected", [
    ("He needs 24 * 24 = 576 tiles. The answer is 576.", 576.0),
    ("The total is 1,234 dollars.", 1234.0),
    ("It drops to -5 degrees", -5.0),
    ("She pays 2.50 each, 7.5 in all", 7.5),
    ("3 apples and 4 pears make 7", 7.0),
    ("no number here", None),
    ("", None),
])
def test_number_paper_rule_takes_the_last_number(response, expected):
    assert extract_number(response) == expected


@pytest.mark.parametrize("response, expected", [
    ("The answer is (D).", "D"),
    ("Answer: B", "B"),
    ("answer is option (E) since", "E"),
    ("A: the rate is 5 km/h. The answer is C.", "C"),
    ("Answer Choices: (A) 1 (B) 2. The answer is C", "C"),
    ("After checking each option, (B)", "B"),
    ("So it must be E", "E"),
    ("The answer is a number", None),
    ("Apples cost more", None),
])
def test_letter_is_the_stated_choice(response, expected):
    assert extract_letter(response) == expected


def test_upstream_first_capital_rule_is_what_we_fix():
    response = "A: The difference is 1.23. The answer is (D)."
    assert letter_first_capital(response) == "A"
    assert extract_letter(response) == "D"


def test_score_tolerance_and_types():
    assert score("number", "The answer is 576.", "576.0") == (576.0, True)
    assert score("number", "The answer is 576.002", "576") == (576.002, False)
    assert score("number", "The answer is 576.0005", "576")[1]
    assert score("number", "none", "1") == (None, False)
    assert score("letter", "The answer is (D)", "D") == ("D", True)
    with pytest.raises(ValueError, match="unknown answer type 'bool'"):
        score("bool", "true", "true")
