"""Answer extraction and scoring. Answer types are data (in the manner of lm-evaluation-harness tasks): each
names its extraction rules, which one is reported as `accuracy` (`reported`), which one upstream LLM-Adapters
used (`paper`, for comparisons with published numbers), its valid gold labels and how a prediction is
compared with the gold. Every rule's accuracy is recorded, so the paper's rule and ours can be compared on the
same responses.

number   paper:  upstream evaluate.py: remove commas, take the last number; correct when |pred - gold| <= 1e-3
         strict: the number stated after the last "answer is" / "answer:" (to the end of that sentence); where
                 that statement restates a result ("220 + 90 + 60 = 370", "5 arms and 3 legs, or 8 limbs",
                 "3 x 4, which is 12": "=", "or", "which is", "so", ...) the first number of the last part that
                 is no operation ("12, which is 3 x 4" is 12); else the last number of the response. "$",
                 thousands separators and a trailing period do not matter, a fraction a/b counts as its value,
                 and a minus between two numbers is an operator, not a sign ("20 - 5")
letter   stated: the choice the response states ("The answer is (D)", "Answer: D", a lone (D) or D at the end)
         paper:  upstream's AQuA rule, the first capital A-E anywhere ("A: ..." at the start of most responses
                 satisfies it, the bug we fix)
options  (true/false, solution1/2, answer1-5, ending1-4, option1/2; commonsense sets)
         stated: the label in the last "answer is" / "answer:" statement, else the only label mentioned
         paper:  upstream commonsense_evaluate.py: the first label found anywhere
A training set may mix types (upstream's commonsense_170k, math_data): its answer type `auto` infers each
item's type from its gold answer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

TOLERANCE = 1e-3
AUTO = "auto"  # a training set's items each take the type their gold answer has

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


def _value(token: str) -> float | None:
    token = token.replace("$", "").replace(",", "").replace(" ", "")
    try:
        if "/" in token:
            num, den = token.split("/")
            return float(num) / float(den) if float(den) else None
        return float(token)
    except ValueError:
        return None


_OPERATION = re.compile(r"\d\s*(?:[-+*x×÷−]|\s/\s)\s*\$?\d")  # "3 x 4", "20 - 5", "36 / 4" (not 3/4)


def _stated_number(segment: str) -> float | None:
    """The result a statement gives: in the last part (split at "=", "or", "which is"...) holding a number
    and no operation, its first number; "12, which is 3 x 4" is 12, "220 + 90 + 60 = 370" is 370."""
    parts = [p for p in _RESULT.split(segment) if _NUMBER.search(p)]
    results = [p for p in parts if not _OPERATION.search(p)] or parts
    return _value(_NUMBER.findall(results[-1])[0]) if results else None


def number_strict(response: str) -> float | None:
    segment = stated_segment(response)
    stated = _stated_number(segment) if segment is not None else None
    if stated is not None:
        return stated
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


@dataclass(frozen=True)
class AnswerType:
    name: str
    rules: dict[str, Callable[[str], object]]  # every extraction rule, by name
    reported: str                               # the rule whose accuracy is reported as `accuracy`
    labels: tuple[str, ...] | None = None       # the valid gold answers (label types); None: any number or text
    tolerance: float | None = None              # numbers: correct when |pred - gold| <= tolerance; labels: equal
    paper: str = "paper"                        # the rule upstream used (published numbers were computed by it)
    suite: str = "commonsense"                  # the evaluation suite (catalog/suites.py) of sets of this type

    @property
    def numeric(self) -> bool:
        return self.tolerance is not None

    def correct(self, pred, gold: str) -> bool:
        if pred is None:
            return False
        if self.numeric:
            return abs(pred - float(gold)) <= self.tolerance
        if self.free_text:
            return str(pred) == "".join(gold.split())
        return str(pred) == gold.strip()

    @property
    def free_text(self) -> bool:
        return not self.numeric and not self.labels

    def valid_gold(self, gold: str) -> bool:
        if self.free_text:
            return bool(gold.strip())
        return _value(gold) is not None if self.numeric else gold in self.labels

    def expected(self) -> str:
        """What a valid gold answer looks like, for error messages."""
        if self.free_text:
            return "a non-empty text"
        return "a number" if self.numeric else "one of " + "/".join(self.labels)


def _options(name: str, labels: tuple[str, ...]) -> AnswerType:
    return AnswerType(name, {"stated": options_stated(labels), "paper": options_paper(labels)}, "stated", labels)


ANSWER_TYPES: dict[str, AnswerType] = {t.name: t for t in [
    AnswerType("number", {"paper": number_paper, "strict": number_strict}, "paper", tolerance=TOLERANCE,
               suite="math"),
    AnswerType("letter", {"stated": letter_stated, "paper": letter_paper}, "stated", tuple("ABCDE"), suite="math"),
    _options("true_false", ("true", "false")),
    _options("solution", ("solution1", "solution2")),
    _options("answer5", ("answer1", "answer2", "answer3", "answer4", "answer5")),
    _options("ending4", ("ending1", "ending2", "ending3", "ending4")),
    _options("option2", ("option1", "option2")),
    # free-form answers (MetaMathQA's MATH-derived rows): no upstream rule, so its paper rule is the stated one
    AnswerType("text", {"stated": text_stated}, "stated", paper="stated", suite="math"),
]}


def get_type(name: str) -> AnswerType:
    if name not in ANSWER_TYPES:
        raise ValueError(f"unknown answer type {name!r}; valid: {', '.join(ANSWER_TYPES)}")
    return ANSWER_TYPES[name]


def infer_type(gold: str) -> AnswerType | None:
    """The one answer type whose gold answers include `gold` (labels never overlap), or None; never free text,
    which any answer would be."""
    return next((t for t in ANSWER_TYPES.values() if not t.free_text and t.valid_gold(gold)), None)


def score(answer_type: str, response: str, gold: str) -> tuple[object, bool]:
    """(extracted answer, correct?) under the type's reported rule."""
    kind = get_type(answer_type)
    pred = kind.rules[kind.reported](response)
    return pred, kind.correct(pred, gold)


def score_all_rules(answer_type: str, response: str, gold: str) -> dict[str, tuple[object, bool]]:
    kind = get_type(answer_type)
    return {name: (pred := rule(response), kind.correct(pred, gold)) for name, rule in kind.rules.items()}
