"""The answer types' extraction rules (catalog/answers.py names them for each type, and says which is reported and
which upstream used) and the scoring of a response under them. Every rule's verdict is recorded, so the paper's rule
and ours can be compared on the same responses."""
from __future__ import annotations

import re
from typing import Callable

from pipeline_lib.catalog.answers import ANSWER_TYPES, get_type, number_value

_PAPER_NUMBER = re.compile(r"-?\d+\.?\d*")
# a minus is a sign only where no number (or closing bracket) stands just before it: "20 - 5" is 20 and 5
_SIGN = r"(?:(?<![\d)\]])(?<![\d)\]]\s)-(?=\$?\d))?"
_NUMBER = re.compile(_SIGN + r"\$?\s?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?")
_MARKER = re.compile(r"answer\s+is\b|answer\s*:", re.I)
_SENTENCE_END = re.compile(r"\n|\.(?=\s|$)")
# what restates a result: "220 + 90 + 60 = 370", "5 arms and 3 legs, or 8 limbs", "3 x 4, which is 12"
_RESULT = re.compile(r"=|→|\b(?:equals?|equal to|or|i\.e\.|which is|that is|so)\b", re.I)


def stated_segment(response: str) -> str | None:
    """What the response states after its last "answer is" / "answer:", up to the end of that sentence."""
    markers = list(_MARKER.finditer(response))
    if not markers:
        return None
    rest = response[markers[-1].end():].lstrip(" :")
    end = _SENTENCE_END.search(rest)
    return rest[:end.start()] if end else rest


def number_paper(response: str) -> float | None:
    found = _PAPER_NUMBER.findall(response.replace(",", ""))
    return float(found[-1]) if found else None


_OPERATION = re.compile(r"\d\s*(?:[-+*x×÷−]|\s/\s)\s*\$?\d")  # "3 x 4", "20 - 5", "36 / 4" (not 3/4)


def _stated_number(segment: str) -> float | None:
    """The result a statement gives: in the last part (split at "=", "or", "which is"...) holding a number
    and no operation, its first number; "12, which is 3 x 4" is 12, "220 + 90 + 60 = 370" is 370."""
    parts = [p for p in _RESULT.split(segment) if _NUMBER.search(p)]
    results = [p for p in parts if not _OPERATION.search(p)] or parts
    return number_value(_NUMBER.findall(results[-1])[0]) if results else None


def number_strict(response: str) -> float | None:
    segment = stated_segment(response)
    stated = _stated_number(segment) if segment is not None else None
    if stated is not None:
        return stated
    found = _NUMBER.findall(response)
    return number_value(found[-1]) if found else None


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
        segment = stated_segment(response)
        found = pattern.findall(segment) if segment is not None else []
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


def text_stated(response: str) -> str | None:
    """A free-form answer (e.g. MATH's LaTeX): what follows the last "The answer is", without a final period or
    math dollars; compared exactly, spaces removed."""
    found = re.findall(r"answer is:?\s*(.+?)\s*$", response.strip(), flags=re.I | re.M)
    return "".join(found[-1].rstrip(".").strip("$").split()) if found else None


def _options_rules(labels: tuple[str, ...]) -> dict[str, Callable[[str], object]]:
    return {"stated": options_stated(labels), "paper": options_paper(labels)}


# answer type -> its rules by name (the names catalog/answers.py gives each type)
RULES: dict[str, dict[str, Callable[[str], object]]] = {
    name: {"number": {"paper": number_paper, "strict": number_strict},
           "letter": {"stated": letter_stated, "paper": letter_paper},
           "text": {"stated": text_stated}}.get(name) or _options_rules(t.labels)
    for name, t in ANSWER_TYPES.items()}


def score(answer_type: str, response: str, gold: str) -> tuple[object, bool]:
    """(extracted answer, correct?) under the type's reported rule."""
    kind = get_type(answer_type)
    pred = RULES[kind.name][kind.reported](response)
    return pred, kind.correct(pred, gold)


def score_all_rules(answer_type: str, response: str, gold: str) -> dict[str, tuple[object, bool]]:
    kind = get_type(answer_type)
    return {name: (pred := rule(response), kind.correct(pred, gold)) for name, rule in RULES[kind.name].items()}
