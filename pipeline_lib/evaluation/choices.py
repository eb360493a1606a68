"""The answer options of a multiple-choice item, read back from its LLM-Adapters instruction text.

LLM-Adapters states every commonsense item as one instruction in a fixed format per answer type, e.g. PIQA:

    Please choose the correct solution to the question: <goal>

    Solution1: <sol1>

    Solution2: <sol2>

    Answer format: solution1/solution2

A log-likelihood protocol needs the question and the option texts apart; one parser per format gives them, and
refuses (naming the item) an instruction that does not follow it. Tests parse every mirrored item of every set.
Importable without torch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Choices:
    question: str              # the question (or the sentence with a blank, or the context to continue)
    options: tuple[str, ...]   # the option texts, in label order
    labels: tuple[str, ...]    # the label words the answer format asks for, one per option

    def index(self, label: str) -> int:
        return self.labels.index(label)


class FormatError(ValueError):
    """An instruction that does not follow its answer type's format."""


def _fixed(pattern: str, labels: tuple[str, ...], options: tuple[str, ...] | None = None):
    """A format with a fixed set of options: named groups `q` and `o1`, `o2`, ... (or fixed option texts)."""
    regex = re.compile(pattern, re.DOTALL)

    def parse(text: str) -> Choices | None:
        m = regex.fullmatch(text)
        if not m:
            return None
        texts = options or tuple(m[f"o{i}"].strip() for i in range(1, len(labels) + 1))
        return Choices(m["q"].strip(), texts, labels)
    return parse


def _numbered(lead: str, word: str):
    """`<lead> <question>\\n\\n<Word>1: a <Word>2: b ...\\n\\nAnswer format: <word>1/<word>2/...`: as many options as
    the answer format lists (2 to 5), numbered 1..n in order."""
    regex = re.compile(rf"{re.escape(lead)} (?P<q>.*?)\n\n(?P<opts>{word}1: .*?)\n\n"
                       rf"Answer format: (?P<fmt>{word.lower()}1(?:/{word.lower()}\d)+)", re.DOTALL)
    split = re.compile(rf"(?:^| ){word}(\d): ")

    def parse(text: str) -> Choices | None:
        m = regex.fullmatch(text)
        if not m:
            return None
        labels = tuple(m["fmt"].split("/"))
        parts = split.split(m["opts"])  # ['', '1', text1, '2', text2, ...]
        numbers, texts = parts[1::2], [t.strip() for t in parts[2::2]]
        if parts[0] or numbers != [str(i) for i in range(1, len(labels) + 1)] or not all(texts):
            return None
        return Choices(m["q"].strip(), tuple(texts), labels)
    return parse


# answer type -> the parser of its format (pipeline_lib.catalog.answers.ANSWER_TYPES names the types)
FORMATS = {
    "true_false": _fixed(r"Please answer the following question with true or false, question: (?P<q>.*)"
                         r"\n\nAnswer format: true/false", ("true", "false"), ("true", "false")),
    "solution": _fixed(r"Please choose the correct solution to the question: (?P<q>.*?)\n\nSolution1: (?P<o1>.*?)"
                       r"\n\nSolution2: (?P<o2>.*?)\n\nAnswer format: solution1/solution2", ("solution1", "solution2")),
    "option2": _fixed(r"Please choose the correct answer to fill in the blank to complete the given sentence: "
                      r"(?P<q>.*?)\n\nOption1: (?P<o1>.*?) Option2: (?P<o2>.*?) Answer format: option1/option2",
                      ("option1", "option2")),
    "answer5": _numbered("Please choose the correct answer to the question:", "Answer"),
    "ending4": _numbered("Please choose the correct ending to complete the given sentence:", "Ending"),
}


def parse(answer_type: str, instruction: str, where: str = "") -> Choices:
    """The item's question and options; a FormatError naming `where` (file and item) if it does not parse."""
    if answer_type not in FORMATS:
        raise FormatError(f"{where}: answer type {answer_type!r} has no multiple-choice format; "
                          f"known: {', '.join(FORMATS)}")
    choices = FORMATS[answer_type](instruction.strip())
    if choices is None:
        raise FormatError(f"{where}: the instruction does not follow the {answer_type} format of LLM-Adapters "
                          f"(e.g. {_EXAMPLES[answer_type]!r}): {instruction[:160]!r}")
    return choices


_EXAMPLES = {
    "true_false": "Please answer the following question with true or false, question: ...\\n\\nAnswer format: "
                  "true/false",
    "solution": "Please choose the correct solution to the question: ...\\n\\nSolution1: ...\\n\\nSolution2: ..."
                "\\n\\nAnswer format: solution1/solution2",
    "option2": "Please choose the correct answer to fill in the blank to complete the given sentence: ...\\n\\n"
               "Option1: ... Option2: ... Answer format: option1/option2",
    "answer5": "Please choose the correct answer to the question: ...\\n\\nAnswer1: ... Answer2: ...\\n\\n"
               "Answer format: answer1/answer2",
    "ending4": "Please choose the correct ending to complete the given sentence: ...\\n\\nEnding1: ... Ending2: ..."
               "\\n\\nAnswer format: ending1/ending2/ending3/ending4",
}


_LETTERED = re.compile(r"\(([A-E])\)")  # AQuA's "Answer Choices: (A) 38 (B) 27.675 ... (E) None of these"


def option_count(answer_type: str, instruction: str) -> int | None:
    """How many answers an item offers: its multiple-choice format's options, or the lettered choices its text
    lists; None where the answer is a number or a text (no chance level)."""
    from pipeline_lib.catalog.answers import get_type

    kind = get_type(answer_type)
    if kind.numeric or kind.free_text:
        return None
    if answer_type in FORMATS:
        parsed = FORMATS[answer_type](instruction.strip())
        return len(parsed.options) if parsed else len(kind.labels)
    return len(set(_LETTERED.findall(instruction))) or len(kind.labels)


def chance(records: list[dict]) -> float | None:
    """The accuracy of a uniform guess among each item's own options, averaged over the items (1/k per item; an
    `answer5` item with four answers counts 1/4); None where some item's answer is a number or a text."""
    counts = [option_count(r["answer_type"], r["instruction"]) for r in records]
    if not counts or any(k is None for k in counts):
        return None
    return sum(1 / k for k in counts) / len(counts)
