"""Evaluate one (model, adapter) on one prepared evaluation set: generate, extract, score, with uncertainty.

`settings` are one evaluation's settings as pipeline_lib.protocols resolves them (protocol `generate`, ours, or
`paper`, upstream's). Predictions are appended to a partial file batch by batch, so an evaluation
killed midway resumes with the items not yet written; the score is computed from the complete set only.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import answers, stats
from .files import atomic_path
from .generation import generate
from .prompts import evaluation_prompt


def score_prediction(record: dict, response: str) -> dict:
    rules = answers.score_all_rules(record["answer_type"], response, record["answer"])
    pred, correct = rules[answers.get_type(record["answer_type"]).reported]
    return {"id": record["id"], "response": response, "extracted": pred, "gold": record["answer"],
            "correct": correct, "rules": {name: ok for name, (_, ok) in rules.items()}}


def _load_partial(path: Path, fingerprint: str) -> dict[str, dict]:
    """Predictions already written by an interrupted run with the same inputs (else none)."""
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        if not lines or json.loads(lines[0]).get("fingerprint") != fingerprint:
            return {}
    except json.JSONDecodeError:
        return {}
    done = {}
    for line in lines[1:]:
        try:
            p = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut by the kill: everything after it is redone
        done[p["id"]] = p
    return done


def _append(path: Path, predictions: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions)
        f.flush()
        os.fsync(f.fileno())


def evaluate(model, tokenizer, records: list[dict], settings: dict, partial: str | Path | None = None,
             fingerprint: str = "", progress: bool = True) -> tuple[list[dict], dict]:
    """Return (one prediction per record, in record order; summary score with all rules and a 95% interval)."""
    from tqdm import tqdm

    done = _load_partial(Path(partial), fingerprint) if partial else {}
    if partial:  # start the file afresh with what is reusable, dropping a line cut by a kill
        with atomic_path(partial) as tmp:
            tmp.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n"
                                   for x in [{"fingerprint": fingerprint}, *done.values()]), encoding="utf-8")
    todo = [r for r in records if r["id"] not in done]
    bar = tqdm(total=len(records), initial=len(records) - len(todo), desc="evaluate", unit="item",
               disable=not progress)

    def on_batch(indices, responses):
        batch = [score_prediction(todo[i], text) for i, text in zip(indices, responses)]
        done.update((p["id"], p) for p in batch)
        if partial:
            _append(Path(partial), batch)
        bar.update(len(batch))

    start = time.perf_counter()
    prompts = [evaluation_prompt(r["instruction"], r.get("input", ""), settings["prompt"]) for r in todo]
    generate(model, tokenizer, prompts,
             batch_size=settings["batch_size"], max_new_tokens=settings["max_new_tokens"],
             stop_strings=settings["stop_strings"], cut_strings=settings["cut_strings"], on_batch=on_batch,
             generation_kwargs=settings["generation"])
    wall = time.perf_counter() - start
    bar.close()
    predictions = [done[r["id"]] for r in records]
    summary = stats.accuracy_summary([p["correct"] for p in predictions])
    by_rule: dict[str, list[bool]] = {}
    for p in predictions:
        for rule, ok in p["rules"].items():
            by_rule.setdefault(rule, []).append(ok)
    summary["rules"] = {rule: sum(oks) / len(oks) for rule, oks in by_rule.items()}  # accuracy per rule
    summary.update({"wall_time_s": round(wall, 2), "resumed_items": len(records) - len(todo),
                    "items_per_s": round(len(todo) / wall, 3) if wall > 0 and todo else None,
                    "protocol": settings["protocol"]})
    return predictions, summary
