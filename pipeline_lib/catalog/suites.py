"""Evaluation suites as data (in the manner of lm-evaluation-harness task configs): the generation settings of
the sets of each suite, which the generation protocols (pipeline_lib.catalog.protocols) take from here. Importable
without torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

RUN_ON = ("### Instruction:", "### Input:", "### Response:")
PAPER_GENERATION = {"num_beams": 4, "temperature": 0.1, "top_p": 0.75, "top_k": 40}


@dataclass(frozen=True)
class Suite:
    name: str
    max_new_tokens: int                                  # `generate`'s cap when the config sets none
    paper_max_new_tokens: int                            # upstream's cap for this suite
    stop_strings: tuple[str, ...] = RUN_ON               # `generate`: stop and cut at these
    paper_cut_strings: tuple[str, ...] = ("### Response:",)
    paper_generation: dict = field(default_factory=lambda: dict(PAPER_GENERATION))


SUITES: dict[str, Suite] = {s.name: s for s in [
    Suite("math", max_new_tokens=256, paper_max_new_tokens=256),         # evaluate.py
    Suite("commonsense", max_new_tokens=32, paper_max_new_tokens=32),    # commonsense_evaluate.py
]}

