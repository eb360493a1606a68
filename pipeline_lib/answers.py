"""Answer extraction and scoring, per answer type.

number (paper rule, upstream evaluate.py): remove commas, take the last number in the response; correct
when |prediction - gold| <= 1e-3.
letter (AQuA, A-E): the choice the response states ("The answer is (D)", "Answer: D", a lone "(D)" or "D"
at the end). Upstream took the first capital A-E anywhere in the response, which the first word of most
responses ("A: ...", "Answer ...") satisfies; that rule is kept as `letter_first_capital` for comparison.
"""
from __future__ import annotations

import re

NUMBER = re.compile(r"-?\d+\.?\d*")
TOLERANCE = 1e-3


def extract_number(response: str) -> float | None:
    found = NUMBER.findall(response.replace(",", ""))
    return float(found[-1]) if found else None


_STATED_LETTER = [
    re.compile(r"(?i:answer)\s*(?:(?i:is)|:)?\s*(?:(?i:option|choice)\s*)?:?\s*\(?([A-E])\)?(?![A-Za-z])"),
    re.compile(r"\(([A-E])\)"),
    re.compile(r"(?<![A-Za-z])([A-E])[\s.)]*$"),
]


def extract_letter(response: str) -> str | None:
    """The last stated choice, by the most explicit pattern that matches."""
    for pattern in _STATED_LETTER:
        found = pattern.findall(response.strip())
        if found:
            return found[-1].upper()
    return None


def letter_first_capital(response: str) -> str | None:
    """Upstream's AQuA rule: the first capital A-E anywhere (kept only for comparison)."""
    found = re.findall(r"[A-E]", response)
    return found[0] if found else None


def _number_correct(pred, gold: str) -> bool:
    return pred is not None and abs(pred - float(gold)) <= TOLERANCE


def _letter_correct(pred, gold: str) -> bool:
    return pred is not None and pred == gold.strip().upper()


# answer type -> (extractor, correctness test)
ANSWER_TYPES = {
    "number": (extract_number, _number_correct),
    "letter": (extract_letter, _letter_correct),
}


def score(answer_type: str, response: str, gold: str) -> tuple[object, bool]:
    """(extracted answer, correct?) for one response."""
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer type {answer_type!r}; valid: {', '.join(ANSWER_TYPES)}")
    extract, correct = ANSWER_TYPES[answer_type]
    pred = extract(response)
    return pred, correct(pred, gold)
