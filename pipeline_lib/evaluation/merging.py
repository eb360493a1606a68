"""What merging an adapter costs and changes at inference: the same items generated with the adapter unmerged
(its modules beside the base weights) and merged into them, in one process at one precision, timed each, and
their greedy outputs compared item by item. Where merging is exact in the precision used the two agree; in bf16 a
merged weight is rounded once more than the unmerged sum of its parts, and greedy decoding can take another path
from the first token that flips: those items are counted, never hidden."""
from __future__ import annotations

from pipeline_lib import adapters
from pipeline_lib.evaluation.generate import evaluate

SHOWN = 5  # differing items listed by id in the record


def compare(model, tokenizer, records: list[dict], settings: dict) -> dict:
    """{"unmerged": throughput, "merged": throughput or why not, "agreement": counts and the first differing ids}."""
    # one item first, untimed: the first generation pays one-time costs (kernels chosen, memory mapped) that would
    # otherwise count against whichever form runs first
    evaluate(model, tokenizer, records[:1], {**settings, "max_new_tokens": 4}, progress=False)
    unmerged, u = evaluate(model, tokenizer, records, settings, progress=False)
    result = {"items": len(records), "unmerged": _speed(u)}
    try:
        model = adapters.merge(model)
    except (NotImplementedError, ValueError) as e:  # peft refuses some merges with a ValueError
        return {**result, "mergeable": False, "why": str(e)}
    merged, m = evaluate(model, tokenizer, records, settings, progress=False)
    differ = [a["id"] for a, b in zip(unmerged, merged) if a["response"] != b["response"]]
    return {**result, "mergeable": True, "merged": _speed(m),
            "speedup": round(m["items_per_s"] / u["items_per_s"], 3) if u["items_per_s"] and m["items_per_s"]
            else None,
            "agreement": {"same_response": len(records) - len(differ), "different_response": len(differ),
                          "same_correctness": sum(a["correct"] == b["correct"] for a, b in zip(unmerged, merged)),
                          "accuracy_unmerged": u["accuracy"], "accuracy_merged": m["accuracy"],
                          "first_different": differ[:SHOWN]}}


def _speed(summary: dict) -> dict:
    return {k: summary.get(k) for k in ("wall_time_s", "items_per_s", "new_tokens", "new_tokens_per_s")}
