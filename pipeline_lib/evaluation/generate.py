"""Evaluate one (model, adapter) on one prepared evaluation set: generate, extract, score, with uncertainty.

`settings` are one evaluation's settings as pipeline_lib.catalog.protocols resolves them (protocol `generate`, ours, or
`paper`, upstream's). Predictions are appended to a partial file batch by batch, so an evaluation
killed midway resumes with the items not yet written; the score is computed from the complete set only.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline_lib.catalog import answers
from pipeline_lib.catalog.prompts import evaluation_prompt
from pipeline_lib.evaluation import extraction, stats
from pipeline_lib.evaluation.decoding import generate
from pipeline_lib.runtime.files import atomic_path


def score_prediction(record: dict, response: str) -> dict:
    rules = extraction.score_all_rules(record["answer_type"], response, record["answer"])
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


@dataclass
class Pending:
    """One evaluation set of a job: its records and settings, and the partial file (with its fingerprint) its
    predictions are appended to and resumed from."""
    records: list[dict]
    settings: dict
    partial: Path | None = None
    fingerprint: str = ""
    done: dict = field(default_factory=dict)      # id -> prediction
    todo: list = field(default_factory=list)      # the records still to generate
    seconds: float = 0.0                          # its share of the decoding's time
    counts: dict = field(default_factory=lambda: {"new_tokens": 0, "prompt_tokens": 0, "rows": 0})


def evaluate(model, tokenizer, records: list[dict], settings: dict, partial: str | Path | None = None,
             fingerprint: str = "", progress: bool = True) -> tuple[list[dict], dict]:
    """Return (one prediction per record, in record order; summary score with all rules and a 95% interval)."""
    out = {}
    evaluate_sets(model, tokenizer, [Pending(records, settings, Path(partial) if partial else None, fingerprint)],
                  lambda i, predictions, summary: out.update(result=(predictions, summary)), progress)
    return out["result"]


def decoding_key(settings: dict) -> str:
    """What sets must share to be decoded in one batch: everything of the settings that reaches the decoder."""
    return json.dumps([settings[k] for k in ("batch_size", "max_new_tokens", "stop_strings", "cut_strings",
                                               "generation")], sort_keys=True)


def evaluate_sets(model, tokenizer, sets: list[Pending], on_done: Callable[[int, list, dict], None],
                  progress: bool = True) -> None:
    """Every set's items not yet in its partial file generated, the prompts of sets that decode alike (same
    `decoding_key`) pooled into one stream of batches (more rows per decoding step than one set has, and no set's
    tail decoding alone); `on_done(index, predictions, summary)` as soon as a set's last item is written. A set's
    time is its share of each batch's time by the tokens its rows computed (prompt and new)."""
    from tqdm import tqdm

    for pending in sets:
        _resume(pending)
    bar = tqdm(total=sum(len(p.records) for p in sets), initial=sum(len(p.records) - len(p.todo) for p in sets),
               desc="evaluate", unit="item", disable=not progress)
    pools: dict[str, list[int]] = {}
    for i, pending in enumerate(sets):
        pools.setdefault(decoding_key(pending.settings), []).append(i)
    for members in pools.values():
        for i in [i for i in members if not sets[i].todo]:  # resumed whole: nothing to generate
            on_done(i, *_summary(sets[i], len(members)))
        _generate_pool(model, tokenizer, sets, [i for i in members if sets[i].todo], on_done, bar)
    bar.close()


def _resume(pending: Pending) -> None:
    """The set's reusable predictions, its partial file started afresh with them (a line cut by a kill dropped)."""
    pending.done = _load_partial(pending.partial, pending.fingerprint) if pending.partial else {}
    if pending.partial:
        with atomic_path(pending.partial) as tmp:
            tmp.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n"
                                   for x in [{"fingerprint": pending.fingerprint}, *pending.done.values()]),
                           encoding="utf-8")
    pending.todo = [r for r in pending.records if r["id"] not in pending.done]


def _generate_pool(model, tokenizer, sets: list[Pending], members: list[int], on_done, bar) -> None:
    if not members:
        return
    owner = [(i, r) for i in members for r in sets[i].todo]  # the pool's prompt k: (set, record)
    left = {i: len(sets[i].todo) for i in members}
    settings = sets[members[0]].settings
    counts: dict = {}
    last = [time.perf_counter()]

    def on_batch(indices, responses):
        now = time.perf_counter()
        spent = {k: sum(counts["per_prompt"][k]) for k in indices}
        total = sum(spent.values()) or 1
        scored: dict[int, list] = {}
        for k, text in zip(indices, responses):
            i, record = owner[k]
            scored.setdefault(i, []).append(score_prediction(record, text))
            pending = sets[i]
            pending.seconds += (now - last[0]) * spent[k] / total
            prompt, new = counts["per_prompt"][k]
            pending.counts = {"new_tokens": pending.counts["new_tokens"] + new,
                              "prompt_tokens": pending.counts["prompt_tokens"] + prompt,
                              "rows": pending.counts["rows"] + 1}
        for i, batch in scored.items():
            sets[i].done.update((p["id"], p) for p in batch)
            if sets[i].partial:
                _append(sets[i].partial, batch)
            left[i] -= len(batch)
            if not left[i]:
                on_done(i, *_summary(sets[i], len(members)))
        bar.update(len(indices))
        last[0] = time.perf_counter()  # the scoring and writing above are not decoding

    prompts = [evaluation_prompt(r["instruction"], r.get("input", ""), sets[i].settings["prompt"]) for i, r in owner]
    generate(model, tokenizer, prompts,
             batch_size=settings["batch_size"], max_new_tokens=settings["max_new_tokens"],
             stop_strings=settings["stop_strings"], cut_strings=settings["cut_strings"], on_batch=on_batch,
             generation_kwargs=settings["generation"], counts=counts)


def _summary(pending: Pending, pooled: int) -> tuple[list[dict], dict]:
    """(the set's predictions in record order, its score: accuracy with its interval and per rule, and what its
    generation computed and took)."""
    predictions = [pending.done[r["id"]] for r in pending.records]
    summary = stats.accuracy_summary([p["correct"] for p in predictions])
    by_rule: dict[str, list[bool]] = {}
    for p in predictions:
        for rule, ok in p["rules"].items():
            by_rule.setdefault(rule, []).append(ok)
    summary["rules"] = {rule: sum(oks) / len(oks) for rule, oks in by_rule.items()}  # accuracy per rule
    wall, generated, counts = pending.seconds, len(pending.todo), pending.counts
    summary.update({"wall_time_s": round(wall, 2), "resumed_items": len(pending.records) - generated,
                    "items_per_s": round(generated / wall, 3) if wall > 0 and generated else None,
                    "new_tokens": counts["new_tokens"],  # generated by this process (a resumed run: its part)
                    "prompt_tokens": counts["prompt_tokens"], "generated_rows": counts["rows"],
                    "new_tokens_per_s": round(counts["new_tokens"] / wall, 1) if wall > 0 and generated else None,
                    "decoded_with_sets": pooled, "protocol": pending.settings["protocol"]})
    return predictions, summary
