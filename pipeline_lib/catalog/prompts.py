"""Prompt templates: LLM-Adapters' Alpaca templates, byte for byte.

Upstream trains with one template (finetune.py `generate_prompt`) and evaluates with another
(evaluate.py and commonsense_evaluate.py `generate_prompt`, identical to each other). They differ only in
whitespace: the training prompt's first line ends with two spaces (no input) or one (with input) and its
blank lines hold the 16 spaces of the indented f-string; the evaluation prompt's first line ends with one
space (no input) or none, and its blank lines are empty. Both are reproduced exactly (tests compare them
with upstream's functions on every item of every mirrored file).

One deliberate difference: upstream's evaluation never passes an item's `input` to the prompt; we do. Every
upstream test file has an empty `input`, so the bytes are the same there.

A run can name another template (config `prompt`): one string for training and evaluation alike, holding
`{instruction}` and optionally `{input}`, the response appended directly when training.
"""
from __future__ import annotations

_I = " " * 16  # the indentation of upstream's triple-quoted f-strings
_NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
               "Write a response that appropriately completes the request.")

TRAINING_NO_INPUT = f"{_NO_INPUT}  \n\n{_I}### Instruction:\n{_I}{{instruction}}\n{_I}\n{_I}### Response:\n{_I}"
TRAINING_WITH_INPUT = (f"{_WITH_INPUT} \n\n{_I}### Instruction:\n{_I}{{instruction}}\n{_I}\n"
                       f"{_I}### Input:\n{_I}{{input}}\n{_I}\n{_I}### Response:\n{_I}")
EVALUATION_NO_INPUT = f"{_NO_INPUT} \n\n{_I}### Instruction:\n{_I}{{instruction}}\n\n{_I}### Response:\n{_I}"
EVALUATION_WITH_INPUT = (f"{_WITH_INPUT}\n\n{_I}### Instruction:\n{_I}{{instruction}}\n\n"
                         f"{_I}### Input:\n{_I}{{input}}\n\n{_I}### Response:\n{_I}")


ALPACA = "alpaca"  # upstream's templates above


def template_sha256(template: str) -> str:
    """The checksum of the template's text (for `alpaca`: upstream's four templates, training and evaluation), so a
    protocol card says exactly which prompts a run used."""
    import hashlib

    text = "\n".join([TRAINING_NO_INPUT, TRAINING_WITH_INPUT, EVALUATION_NO_INPUT, EVALUATION_WITH_INPUT]) \
        if template == ALPACA else template
    return hashlib.sha256(text.encode()).hexdigest()


def template_problem(template: str) -> str | None:
    """Why a configured template cannot be used, or None."""
    if template == ALPACA:
        return None
    try:
        template.format(instruction="", input="")
    except (KeyError, IndexError, ValueError) as e:
        return f"{template!r} is not a template of {{instruction}} and {{input}} only ({type(e).__name__}: {e})"
    return None if "{instruction}" in template else f"{template!r} has no {{instruction}}"


def _custom(template: str, instruction: str, input: str) -> str:
    if input and "{input}" not in template:
        raise ValueError(f"prompt template {template!r} has no {{input}}, and an item has an input: {input[:60]!r}")
    return template.format(instruction=instruction, input=input)


def training_prompt(instruction: str, input: str = "", template: str = ALPACA) -> str:
    """The training text up to the response (what train_on_inputs=False masks from the loss)."""
    if template != ALPACA:
        return _custom(template, instruction, input)
    return (TRAINING_WITH_INPUT if input else TRAINING_NO_INPUT).format(instruction=instruction, input=input)


def training_text(record: dict, template: str = ALPACA) -> str:
    """Prompt plus target response, as upstream's finetune.py trains on it."""
    return training_prompt(record["instruction"], record.get("input", ""), template) + record["output"]


def evaluation_prompt(instruction: str, input: str = "", template: str = ALPACA) -> str:
    """The prompt the model continues at evaluation, as upstream's evaluate.py builds it."""
    if template != ALPACA:
        return _custom(template, instruction, input)
    return (EVALUATION_WITH_INPUT if input else EVALUATION_NO_INPUT).format(instruction=instruction, input=input)
