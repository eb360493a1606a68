"""Answer types as data (in the manner of lm-evaluation-harness tasks): each
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
item's type from its gold answer. The rules themselves (the parsing) are evaluation/extraction.py's.
"""
from __future__ import annotations

from dataclasses import dataclass

TOLERANCE = 1e-3
AUTO = "auto"  # a training set's items each take the type their gold answer has


def number_value(token: str) -> float | None:
    """A number as written in a gold answer or a response ("$1,234", "3/4", "-2.5"); None if it is none."""
    token = token.replace("$", "").replace(",", "").replace(" ", "")
    try:
        if "/" in token:
            num, den = token.split("/")
            return float(num) / float(den) if float(den) else None
        return float(token)
    except ValueError:
        return None


@dataclass(frozen=True)
class AnswerType:
    name: str
    rules: tuple[str, ...]                      # its extraction rules, by name (evaluation/extraction.py)
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
        return number_value(gold) is not None if self.numeric else gold in self.labels

    def expected(self) -> str:
        """What a valid gold answer looks like, for error messages."""
        if self.free_text:
            return "a non-empty text"
        return "a number" if self.numeric else "one of " + "/".join(self.labels)


def _options(name: str, labels: tuple[str, ...]) -> AnswerType:
    return AnswerType(name, ("stated", "paper"), "stated", labels)


ANSWER_TYPES: dict[str, AnswerType] = {t.name: t for t in [
    AnswerType("number", ("paper", "strict"), "paper", tolerance=TOLERANCE,
               suite="math"),
    AnswerType("letter", ("stated", "paper"), "stated", tuple("ABCDE"), suite="math"),
    _options("true_false", ("true", "false")),
    _options("solution", ("solution1", "solution2")),
    _options("answer5", ("answer1", "answer2", "answer3", "answer4", "answer5")),
    _options("ending4", ("ending1", "ending2", "ending3", "ending4")),
    _options("option2", ("option1", "option2")),
    # free-form answers (MetaMathQA's MATH-derived rows): no upstream rule, so its paper rule is the stated one
    AnswerType("text", ("stated",), "stated", paper="stated", suite="math"),
]}


def get_type(name: str) -> AnswerType:
    if name not in ANSWER_TYPES:
        raise ValueError(f"unknown answer type {name!r}; valid: {', '.join(ANSWER_TYPES)}")
    return ANSWER_TYPES[name]


def infer_type(gold: str) -> AnswerType | None:
    """The one answer type whose gold answers include `gold` (labels never overlap), or None; never free text,
    which any answer would be."""
    return next((t for t in ANSWER_TYPES.values() if not t.free_text and t.valid_gold(gold)), None)
