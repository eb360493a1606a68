"""Prompt templates.

`alpaca` is the template of LLM-Adapters `finetune.py` / `evaluate.py` (generate_prompt), byte for byte,
including its quirks: the literal "  # noqa: E501" inside the first line and the 16-space indentation of
the triple-quoted f-string. Fine-tuning and evaluation must use the same bytes, and comparability with the
paper needs these ones.
"""
from __future__ import annotations

_INDENT = " " * 16
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "  # noqa: E501\n\n"
    f"{_INDENT}### Instruction:\n{_INDENT}{{instruction}}\n{_INDENT}\n{_INDENT}### Response:\n{_INDENT}"
)
ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.  # noqa: E501\n\n"
    f"{_INDENT}### Instruction:\n{_INDENT}{{instruction}}\n{_INDENT}\n"
    f"{_INDENT}### Input:\n{_INDENT}{{input}}\n{_INDENT}\n{_INDENT}### Response:\n{_INDENT}"
)
# where a generated response has run on into a new example
STOP_STRINGS = ["### Instruction:", "### Input:", "### Response:"]


def alpaca_prompt(instruction: str, input: str = "") -> str:
    """The prompt up to and including the response header (what the model continues)."""
    template = ALPACA_WITH_INPUT if input else ALPACA_NO_INPUT
    return template.format(instruction=instruction, input=input)


def alpaca_training_text(record: dict) -> str:
    """Prompt plus target response, as upstream trains on it."""
    return alpaca_prompt(record["instruction"], record.get("input", "")) + record["output"]
