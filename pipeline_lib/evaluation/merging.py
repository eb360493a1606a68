"""What merging an adapter costs and changes at inference, measured on the model as the evaluation builds it: the
same items generated with the adapter unmerged (its modules beside the base weights, in the evaluation's precision)
and merged (folded into the base weights in float32, then cast: `evaluation/jobs.py` `inference_model`, what
`evaluate` scores), their greedy outputs compared item by item and each form's speed in generated tokens per second
(the forms generate responses of different lengths, so items per second would compare unequal work), the two forms
timed in alternating order (unmerged first, then merged first) after an untimed warm-up of each.

Where the evaluation's precision is not float32, two more comparisons say what the agreement means: the same pair
in float32 (the control: merging is exact there up to float32 rounding), and the base model alone in that precision
against float32 (the noise floor: how many responses the precision alone changes). Differences are counted, never
hidden."""
from __future__ import annotations

from pipeline_lib.evaluation.generate import evaluate

SHOWN = 5  # differing items listed by id in the record
ROUNDS = 2  # timed generations of each form, alternating which goes first


def timed(forms: dict[str, object], tokenizer, records: list[dict], settings: dict) -> dict[str, dict]:
    """Each form's predictions and speed over ROUNDS alternating rounds (the first round's responses: greedy
    decoding gives the same ones each round): {form: {"predictions", "summary", "speed"}}."""
    for model in forms.values():  # untimed: the first generation pays one-time costs (kernels chosen, memory mapped)
        evaluate(model, tokenizer, records[:1], {**settings, "max_new_tokens": 4}, progress=False)
    names, out = list(forms), {}
    for r in range(ROUNDS):
        for name in names if r % 2 == 0 else names[::-1]:
            predictions, summary = evaluate(forms[name], tokenizer, records, settings, progress=False)
            seen = out.setdefault(name, {"predictions": predictions, "summary": summary, "wall": 0.0, "tokens": 0,
                                         "prompt_tokens": 0, "rows": 0})
            seen["wall"] += summary["wall_time_s"]
            seen["tokens"] += summary["new_tokens"]
            seen["prompt_tokens"] += summary["prompt_tokens"]
            seen["rows"] += summary["generated_rows"]
    for seen in out.values():
        seen["speed"] = {"rounds": ROUNDS, "wall_time_s": round(seen["wall"], 2), "new_tokens": seen["tokens"],
                         "prompt_tokens": seen["prompt_tokens"], "generated_rows": seen["rows"],
                         "new_tokens_per_s": round(seen["tokens"] / seen["wall"], 2) if seen["wall"] else None,
                         "items_per_s": round(ROUNDS * len(records) / seen["wall"], 3) if seen["wall"] else None}
    return out


def agreement(a: list[dict], b: list[dict]) -> dict:
    """How many of the same items two forms answered with the same response, and with the same correctness."""
    differ = [x["id"] for x, y in zip(a, b) if x["response"] != y["response"]]
    return {"items": len(a), "same_response": len(a) - len(differ), "different_response": len(differ),
            "same_correctness": sum(x["correct"] == y["correct"] for x, y in zip(a, b)),
            "accuracy_a": sum(x["correct"] for x in a) / len(a) if a else None,
            "accuracy_b": sum(y["correct"] for y in b) / len(b) if b else None, "first_different": differ[:SHOWN]}


def generated(model, tokenizer, records: list[dict], settings: dict) -> list[dict]:
    """One untimed generation's predictions."""
    return evaluate(model, tokenizer, records, settings, progress=False)[0]
