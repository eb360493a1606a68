"""Evaluation protocols as data: how a prepared evaluation set is put to the model and scored. A run evaluates
every (model, run, training set, evaluation set) under each protocol of `evaluation.protocols` that applies to the
set's suite, each its own cached job with its own predictions and score; adding a protocol to a finished run
re-runs only its jobs. Importable without torch: the rules resolve each job's settings here.

generate        ours: batched greedy decoding with a KV cache; stops at EOS or where the response runs on into a
                new example ("### Instruction:" ...), and the response is cut there; then the answer type's rules
                extract and score the answer.
paper           upstream LLM-Adapters: one prompt at a time, 4-beam search with its sampling arguments (inert
                without do_sample), no stop string; the response is what follows "### Response:" up to a next
                "### Response:" (upstream's `output.split("### Response:")[1]`). evaluate.py (math) allows 256
                new tokens, commonsense_evaluate.py 32.
harness         lm-evaluation-harness's multiple-choice convention through its Python API: context = the
                question ("Question: ...\\nAnswer:"; a HellaSwag context as it is; a fill-in-the-blank sentence
                scored by partial evaluation, one context per option, as lm-eval's WinoGrande), choices = the
                option texts; the choice of highest log-likelihood (`acc`, reported) and of highest
                log-likelihood per byte (`acc_norm`).
harness_labels  the paper's answer format with the generation taken out: context = the paper's evaluation prompt
                followed by "the correct answer is" (how every LLM-Adapters commonsense training answer begins),
                choices = the label words its format asks for (solution1/solution2, answer1.., true/false,
                option1/option2, ending1..); `acc` and `acc_norm` as above.

The log-likelihood protocols need options, so they apply to the commonsense suite only: for a math set there is
nothing to choose between (a run that asks for one on math sets alone is refused by the plan, naming it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pipeline_lib.catalog.suites import SUITES, Suite

# upstream's evaluate.py generates without the KV cache (use_cache=False): the same tokens at a cost that grows with
# the square of the response's length. The `paper` protocol keeps the cache (identical outputs); the speed benchmarks
# add this to time upstream's protocol as upstream ran it.
UPSTREAM_UNCACHED = {"use_cache": False}
ANSWER_LEAD = "the correct answer is"  # how the LLM-Adapters commonsense answers begin ("the correct answer is true")


@dataclass(frozen=True)
class Protocol:
    name: str
    scorer: str                                   # "generate" (pipeline_lib.evaluation) or "loglikelihood"
    #                                               (pipeline_lib.evaluation.loglikelihood)
    suites: tuple[str, ...]                       # the suites whose sets it can score
    settings: Callable[[dict, Suite], dict]       # (the config's `evaluation` block, the set's suite) -> settings
    requires: tuple[str, ...] = ()                # Python packages its scorer imports

    def applies(self, suite: str) -> bool:
        return suite in self.suites


def _generate(evaluation: dict, suite: Suite) -> dict:
    return {"batch_size": evaluation["batch_size"],
            "max_new_tokens": evaluation["max_new_tokens"] or suite.max_new_tokens,
            "stop_strings": list(suite.stop_strings), "cut_strings": list(suite.stop_strings), "generation": {}}


def _paper(evaluation: dict, suite: Suite) -> dict:
    # batch 1, as upstream's published commands ran it: batches > 1 were padded without an attention mask there
    return {"batch_size": 1, "max_new_tokens": suite.paper_max_new_tokens, "stop_strings": [],
            "cut_strings": list(suite.paper_cut_strings), "generation": dict(suite.paper_generation)}


def _harness(variant: str) -> Callable[[dict, Suite], dict]:
    def settings(evaluation: dict, suite: Suite) -> dict:
        # `acc` is reported (lm-eval's headline metric), `acc_norm` recorded beside it
        return {"batch_size": evaluation["batch_size"], "variant": variant, "answer_lead": ANSWER_LEAD,
                "reported": "acc"}
    return settings


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in [
    Protocol("generate", "generate", ("math", "commonsense"), _generate),
    Protocol("paper", "generate", ("math", "commonsense"), _paper),
    Protocol("harness", "loglikelihood", ("commonsense",), _harness("options"), ("lm_eval",)),
    Protocol("harness_labels", "loglikelihood", ("commonsense",), _harness("labels"), ("lm_eval",)),
]}


def get(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {name!r}; valid: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def beams(settings: dict) -> int:
    """The beams a generating evaluation decodes with (1: greedy); the one reader of `num_beams`."""
    return settings.get("generation", {}).get("num_beams", 1)


def decoding(settings: dict) -> str:
    """How an evaluation's items are put to the model, in a published source's terms."""
    if settings.get("scorer") == "loglikelihood":
        return "log-likelihood (lm-eval)"
    return "greedy" if beams(settings) == 1 else f"{beams(settings)}-beam search"


# tuning's validation by loss: one forward pass per item (evaluation/loss.py), in the precision `auto` chooses
LOSS_SETTINGS = {"dtype": "auto", "scorer": "loss", "batch_size": 1}


def settings(protocol: str, evaluation: dict, suite: str, prompt: str) -> dict:
    """One evaluation job's settings: what its protocol takes from the config's (schema-filled) `evaluation`
    block and the set's suite, with the protocol, scorer, suite, dtype and prompt template every job records."""
    spec = get(protocol)
    return {"protocol": protocol, "scorer": spec.scorer, "suite": suite, "dtype": evaluation["dtype"], "prompt": prompt,
            **spec.settings(evaluation, SUITES[suite])}
