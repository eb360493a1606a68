"""Tuning's choice: the best of an adapter's trials by their validation scores alone (never a test set's), with every
trial's score and cost, the ties and how they were broken, and the failed trials with their reasons. `select_setting`
is the select_setting job (scripts/select_setting.py)."""
from __future__ import annotations

from pipeline_lib.planning import paths
from pipeline_lib.runtime.files import read_json, read_jsonl, write_json


class SelectionError(RuntimeError):
    pass


def choose(adapter: str, metric: str, trials: list[dict]) -> dict:
    """`trials`: one record per trial (trial, values, failed, accuracy, loss, n, tokens, wall_time_s, peak_rss_mb,
    peak_cuda_mb), in trial order. Accuracy: the highest, ties to the lower validation loss, then to the earlier
    trial; loss: the lowest, then the earlier trial."""
    usable = [t for t in trials if not t.get("failed")]
    if not usable:
        raise SelectionError(f"{adapter}: every one of its {len(trials)} trials failed, so no setting can be chosen: "
                             + "; ".join(f"{t['trial']}: {t['failed']}" for t in trials))
    first = {t["trial"]: i for i, t in enumerate(trials)}

    def score(t):  # smaller is better
        return (-t["accuracy"], t["loss"]) if metric == "accuracy" else (t["loss"],)
    best = min(usable, key=lambda t: (*score(t), first[t["trial"]]))
    primary = "accuracy" if metric == "accuracy" else "loss"
    tied = [t["trial"] for t in usable if t is not best and t[primary] == best[primary]]
    if not tied:
        tie_break = None
    elif metric == "accuracy" and any(t["loss"] != best["loss"] for t in usable if t["trial"] in tied):
        tie_break = "lower validation loss"
    else:
        tie_break = "the earlier trial"
    failed = [t for t in trials if t.get("failed")]
    return {
        "adapter": adapter, "metric": metric,
        "chosen": {"trial": best["trial"], "values": best["values"], "accuracy": best.get("accuracy"),
                   "loss": best["loss"]},
        "ties": tied, "tie_break": tie_break,
        "failed": [{"trial": t["trial"], "reason": t["failed"]} for t in failed],
        "edges": edges(trials, best["values"]),
        "budget": {"trials": len(trials), "failed": len(failed),
                   "tokens": sum(t.get("tokens") or 0 for t in trials),
                   "steps": sum(t.get("steps") or 0 for t in trials),
                   "checkpoint": sorted({t["checkpoint"] for t in trials if t.get("checkpoint")}),
                   "wall_time_s": round(sum(t.get("wall_time_s") or 0 for t in trials), 1),
                   "peak_rss_mb": max((t.get("peak_rss_mb") or 0 for t in trials), default=None),
                   "peak_cuda_mb": max((t.get("peak_cuda_mb") or 0 for t in trials), default=None) or None},
        "trials": trials,
    }


def checkpoint_rule(metrics: dict) -> str | None:
    """Which weights a fine-tune kept: its best validation loss (training.val_set_size) or its last step."""
    training = metrics.get("training") or {}
    if not training:
        return None
    return "best validation loss" if training.get("val_set_size") else "last step"


def edges(trials: list[dict], chosen: dict) -> dict[str, str]:
    """Searched axis -> 'lowest' or 'highest' where the chosen value is at that end of the values the trials tried
    (an axis with one value is no axis): the optimum may lie outside the space, and the choice says so."""
    found = {}
    for key, value in chosen.items():
        tried = sorted({t["values"][key] for t in trials if key in t["values"] and isinstance(t["values"][key],
                                                                                               (int, float))})
        if len(tried) > 1 and value in (tried[0], tried[-1]):
            found[key] = "lowest" if value == tried[0] else "highest"
    return found


def item_scores(predictions: str, metric: str) -> dict | None:
    """A trial's per-item validation outcomes, what the tuning table's groups compare trial against trial (paired by
    item id): {"ids", "values"}, each item's correctness (0/1) for metric accuracy or its loss; None for a failed
    trial (no predictions)."""
    done = read_jsonl(predictions)
    if not done:
        return None
    key = "correct" if metric == "accuracy" else "loss"
    return {"ids": [d["id"] for d in done], "values": [float(d[key]) for d in done]}


def select_setting(out: str, records: list[str], adapter_dirs: list[str], adapter: str, metric: str,
                   trials: dict[str, dict], predictions: list[str] | None = None) -> dict:
    """The setting of `adapter` chosen from its trials' validation records (and their fine-tunes' costs) alone; each
    trial keeps its per-item outcomes from `predictions` (its validation.jsonl, in the order of `records`)."""
    rows = []
    for k, (record_path, adapter_dir) in enumerate(zip(records, adapter_dirs)):
        r, m = read_json(record_path), read_json(paths.metrics(adapter_dir))
        items = item_scores(predictions[k], metric) if predictions else None
        rows.append({"trial": r["run"], "values": trials[r["run"]], "failed": r.get("failed"), "items": items,
                     "accuracy": r.get("accuracy"), "loss": r.get("loss"), "n": r.get("n"),
                     "tokens": m.get("tokens"), "steps": m.get("steps"), "checkpoint": checkpoint_rule(m),
                     "wall_time_s": m.get("wall_time_s"),
                     "peak_rss_mb": m.get("peak_rss_mb"), "peak_cuda_mb": m.get("peak_cuda_mb")})
    selection = choose(adapter, metric, rows)
    write_json(out, selection)
    return selection
