"""Answer extraction and scoring. Answer types are data (in the manner of lm-evaluation-harness tasks):
each type names its extraction rules, the first being the one reported as `accuracy`; every rule's accuracy
is recorded too, so the paper's rule and ours can be compared on the same responses.

number   paper:  upstream evaluate.py: remove commas, take the last number; correct when |pred - gold| <= 1e-3
         strict: the number after the last "The answer is", else the last number; "$", thousands separators,
                 a trailing period and ".00" do not matter; a fraction a/b counts as its value
letter   stated: the choice the response states ("The answer is (D)", "Answer: D", a lone (D) or D at the end)
         paper:  upstream's AQuA rule, the first capital A-E anywhere ("A: ..." at the start of most responses
                 satisfies it, the bug we fix)
options  (true/false, solution1/2, answer1-5, ending1-4, option1/2; commonsense sets)
         stated: the label after "answer is" / "answer:", else the only label mentioned (several: none)
         paper:  upstream commonsense_evaluate.py: the first label found anywhere
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

TOLERANCE = 1e-3
_PAPER_NUMBER = re.compile(r"-?\d+\.?\d*")
_NUMBER = re.compile(r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?")
_ANSWER_IS = re.compile(r"(?i:answer\s+is|answer\s*:)\s*:?\s*(.*)")


def number_paper(response: str) -> float | None:
    found = _PAPER_NUMBER.findall(response.replace(",", ""))
    return float(found[-1]) if found else None


def _value(token: str) -> float | None:
    token = token.replace("$", "").replace(",", "").replace(" ", "")
    try:
        if "/" in token:
            num, den = token.split("/")
            return float(num) / float(den) if float(den) else None
        return float(token)
    except ValueError:
        return None


def number_strict(response: str) -> float | None:
    stated = _ANSWER_IS.findall(response)
    if stated:
        found = _NUMBER.findall(stated[-1])
        if found:
            return _value(found[0])
    found = _NUMBER.findall(response)
    return _value(found[-1]) if found else None


_STATED_LETTER = [
    re.compile(r"(?i:answer)\s*(?:(?i:is)|:)?\s*(?:(?i:option|choice)\s*)?:?\s*\(?([A-E])\)?(?![A-Za-z])"),
    re.compile(r"\(([A-E])\)"),
    re.compile(r"(?<![A-Za-z])([A-E])[\s.)]*$"),
]


def letter_stated(response: str) -> str | None:
    """The last stated choice, by the most explicit pattern that matches."""
    for pattern in _STATED_LETTER:
        found = pattern.findall(response.strip())
        if found:
            return found[-1]
    return None


def letter_paper(response: str) -> str | None:
    found = re.findall(r"[A-E]", response)
    return found[0] if found else None


def _label_pattern(labels: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, labels)) + r")(?![A-Za-z0-9])", re.I)


def options_stated(labels: tuple[str, ...]) -> Callable[[str], str | None]:
    pattern = _label_pattern(labels)

    def extract(response: str) -> str | None:
        stated = _ANSWER_IS.findall(response)
        if stated:
            found = pattern.findall(stated[-1])
            if found:
                return found[0].lower()
        mentioned = {m.lower() for m in pattern.findall(response)}
        return mentioned.pop() if len(mentioned) == 1 else None
    return extract


def options_paper(labels: tuple[str, ...]) -> Callable[[str], str | None]:
    pattern = re.compile("|".join(map(re.escape, labels)))

    def extract(response: str) -> str | None:
        found = pattern.findall(response)
        return found[0] if found else None
    return extract


@dataclass(frozen=True)
class AnswerType:
    name: str
    rules: dict[str, Callable[[str], object]]  # the first rule is the reported one
    labels: tuple[str, ...] | None = None       # the valid gold answers of an option type

    def correct(self, pred, gold: str) -> bool:
        if pred is None:
            return False
        if self.labels is None and not isinstance(pred, str):
            return abs(pred - float(gold)) <= TOLERANCE
        return str(pred) == gold.strip()

    def valid_gold(self, gold: str) -> bool:
        if self.labels is not None:
            return gold in self.labels
        if self.name == "letter":
            return re.fullmatch(r"[A-E]", gold) is not None
        return _value(gold) is not None


def _options(name: str, labels: tuple[str, ...]) -> AnswerType:
    return AnswerType(name, {"stated": options_stated(labels), "paper": options_paper(labels)}, labels)


ANSWER_TYPES: dict[str, AnswerType] = {t.name: t for t in [
    AnswerType("number", {"paper": number_paper, "strict": number_strict}),
    AnswerType("letter", {"stated": letter_stated, "paper": letter_paper}),
    _options("true_false", ("true", "false")),
    _options("solution", ("solution1", "solution2")),
    _options("answer5", ("answer1", "answer2", "answer3", "answer4", "answer5")),
    _options("ending4", ("ending1", "ending2", "ending3", "ending4")),
    _options("option2", ("option1", "option2")),
]}


def get_type(name: str) -> AnswerType:
    if name not in ANSWER_TYPES:
        raise ValueError(f"unknown answer type {name!r}; valid: {', '.join(ANSWER_TYPES)}")
    return ANSWER_TYPES[name]


def score(answer_type: str, response: str, gold: str) -> tuple[object, bool]:
    """(extracted answer, correct?) under the type's reported rule."""
    kind = get_type(answer_type)
    pred = next(iter(kind.rules.values()))(response)
    return pred, kind.correct(pred, gold)


def score_all_rules(answer_type: str, response: str, gold: str) -> dict[str, tuple[object, bool]]:
    kind = get_type(answer_type)
    return {name: (pred := rule(response), kind.correct(pred, gold)) for name, rule in kind.rules.items()}
