"""Evaluate one (model, adapter) on one prepared evaluation set: generate, extract, score."""
from __future__ import annotations

import time

from . import answers
from .generation import generate
from .prompts import STOP_STRINGS, alpaca_prompt


def evaluate(model, tokenizer, records: list[dict], batch_size: int = 16, max_new_tokens: int = 128,
             progress: bool = True) -> tuple[list[dict], dict]:
    """Return (one prediction per record, in record order; summary score)."""
    from tqdm import tqdm

    prompts = [alpaca_prompt(r["instruction"], r.get("input", "")) for r in records]
    bar = tqdm(total=len(prompts), desc="evaluate", unit="item", disable=not progress)
    start = time.perf_counter()
    responses = generate(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                         stop_strings=STOP_STRINGS, on_batch=lambda idx, _: bar.update(len(idx)))
    wall = time.perf_counter() - start
    bar.close()
    predictions = []
    for record, response in zip(records, responses):
        pred, correct = answers.score(record["answer_type"], response, record["answer"])
        predictions.append({"id": record["id"], "response": response, "extracted": pred,
                            "gold": record["answer"], "correct": correct})
    n = len(predictions)
    n_correct = sum(p["correct"] for p in predictions)
    summary = {"n": n, "correct": n_correct, "accuracy": n_correct / n if n else float("nan"),
               "wall_time_s": round(wall, 2), "items_per_s": round(n / wall, 3) if wall > 0 else None}
    return predictions, summary
