"""Evaluation suites as data (in the manner of lm-evaluation-harness task configs): how the sets of a suite are
generated under each protocol. Importable without torch: the rules resolve each evaluation's settings from it,
so a changed setting re-runs exactly the evaluations it affects.

fast   ours: batched greedy decoding with KV cache; stops at EOS or where the response runs on into a new
       example ("### Instruction:" ...), and the response is cut there.
paper  upstream LLM-Adapters: one prompt at a time, 4-beam search with its sampling arguments (inert without
       do_sample), no stop string; the response is what follows "### Response:" up to a next "### Response:"
       (upstream's `output.split("### Response:")[1]`). evaluate.py (math) allows 256 new tokens,
       commonsense_evaluate.py 32.
"""
from __future__ import annotations

from dataclasses import dataclass, field

RUN_ON = ("### Instruction:", "### Input:", "### Response:")
PAPER_GENERATION = {"num_beams": 4, "temperature": 0.1, "top_p": 0.75, "top_k": 40}
PROTOCOLS = ("fast", "paper")


@dataclass(frozen=True)
class Suite:
    name: str
    max_new_tokens: int                                  # fast protocol's cap when the config sets none
    paper_max_new_tokens: int                            # upstream's cap for this suite
    stop_strings: tuple[str, ...] = RUN_ON               # fast protocol: stop and cut at these
    paper_cut_strings: tuple[str, ...] = ("### Response:",)
    paper_generation: dict = field(default_factory=lambda: dict(PAPER_GENERATION))


SUITES: dict[str, Suite] = {s.name: s for s in [
    Suite("math", max_new_tokens=256, paper_max_new_tokens=256),         # evaluate.py
    Suite("commonsense", max_new_tokens=32, paper_max_new_tokens=32),    # commonsense_evaluate.py
]}


def settings(evaluation: dict, suite: str) -> dict:
    """The generation settings of one evaluation: the config's `evaluation` block completed by the suite's
    defaults, or replaced by upstream's settings under `protocol: paper` (batch 1, as upstream's published
    commands ran it: batches > 1 were padded without an attention mask there)."""
    spec = SUITES[suite]
    protocol = evaluation.get("protocol", "fast")
    if protocol not in PROTOCOLS:
        raise ValueError(f"evaluation.protocol: {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if protocol == "paper":
        return {"protocol": "paper", "suite": suite, "dtype": evaluation.get("dtype", "auto"), "batch_size": 1,
                "max_new_tokens": spec.paper_max_new_tokens, "stop_strings": [],
                "cut_strings": list(spec.paper_cut_strings), "generation": dict(spec.paper_generation)}
    return {"protocol": "fast", "suite": suite, "dtype": evaluation.get("dtype", "auto"),
            "batch_size": evaluation.get("batch_size", 16),
            "max_new_tokens": evaluation.get("max_new_tokens") or spec.max_new_tokens,
            "stop_strings": list(spec.stop_strings), "cut_strings": list(spec.stop_strings), "generation": {}}
