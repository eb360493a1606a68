"""From evaluated runs to table cells: each cell (model, adapter, training set, protocol, dataset) gathers the
runs of its seeds, each a vector of per-item outcomes on the same items; its accuracy is the mean over seeds, with a 95%
interval over items (Wilson) for one seed and over seeds and items together (hierarchical bootstrap,
pipeline_lib.evaluation.stats) for several. A row's average over datasets gets its interval the same way."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline_lib.evaluation import stats
from pipeline_lib.runtime.files import read_jsonl

FINETUNE_KEYS = ["model", "adapter", "train_set"]  # what a fine-tune's metrics are keyed by
ROW_KEYS = [*FINETUNE_KEYS, "protocol"]            # a table row: one fine-tune (or the base) under one protocol
CELL_KEYS = [*ROW_KEYS, "dataset"]


def outcomes(runs: pd.DataFrame) -> dict[tuple, dict]:
    """Cell -> its seeds, the item ids and the seeds x items 0/1 outcomes under the reported and the paper rule (the
    run's `paper_rule`), on the items every seed's predictions share (ordered by id). Cells whose predictions are
    missing are left out."""
    out = {}
    for key, group in runs.sort_values("seed", na_position="first").groupby(CELL_KEYS, sort=False):
        if group.predictions.isna().any():
            continue
        try:
            predictions = [{p["id"]: p for p in read_jsonl(f)} for f in group.predictions]
        except FileNotFoundError:
            continue
        ids = sorted(set.intersection(*(set(p) for p in predictions)))
        rules = list(group.paper_rule)
        out[key] = {"seeds": list(group.seed), "ids": ids,
                    "reported": np.array([[bool(p[i]["correct"]) for i in ids] for p in predictions], dtype=float),
                    "paper": np.array([[bool(p[i]["rules"].get(rule, p[i]["correct"])) for i in ids]
                                       for p, rule in zip(predictions, rules)], dtype=float)}
    return out


def cells(runs: pd.DataFrame, found: dict[tuple, dict]) -> pd.DataFrame:
    """One row per cell: accuracy and the paper rule's (percent, means over seeds) with 95% intervals (fractions),
    n items, the number of seeds and their standard deviation (points), evaluation time over seeds."""
    rows = []
    for key, group in runs.groupby(CELL_KEYS, sort=False):
        seeds = len(group)
        row = {**dict(zip(CELL_KEYS, key)), "accuracy": group.accuracy.mean(), "n": int(group.n.min()),
               "seeds": seeds, "seed_sd": group.accuracy.std(ddof=1) if seeds > 1 else float("nan"),
               "paper_accuracy": group.paper_accuracy.mean(), "wall_time_s": group.wall_time_s.sum(),
               "quantization": group.quantization.iloc[0], "precision": group.precision.iloc[0],
               "chance": group.chance.iloc[0], "no_answer_share": group.no_answer_share.mean()}
        if seeds == 1:  # one run: its items' Wilson interval
            one = group.iloc[0]
            row |= {c: one[c] for c in ("ci_low", "ci_high", "paper_ci_low", "paper_ci_high")}
        elif key in found:
            for rule, prefix in (("reported", ""), ("paper", "paper_")):
                _, low, high = stats.seeds_interval([found[key][rule]])
                row |= {f"{prefix}ci_low": low, f"{prefix}ci_high": high}
        else:
            row |= {c: float("nan") for c in ("ci_low", "ci_high", "paper_ci_low", "paper_ci_high")}
        rows.append(row)
    return pd.DataFrame(rows)


def averages(found: dict[tuple, dict], datasets: list[str]) -> dict[tuple, tuple[float, float, float]]:
    """Row -> (mean over its datasets, 95% low, high), fractions: seeds drawn once per replicate for every dataset
    (one fine-tune serves them all), items within each dataset."""
    by_row: dict[tuple, list[np.ndarray]] = {}
    for key, cell in found.items():
        if key[-1] in datasets:
            by_row.setdefault(key[:-1], []).append(cell["reported"])
    return {row: stats.seeds_interval(parts) for row, parts in by_row.items()
            if len({p.shape[0] for p in parts}) == 1}


def per_seed(runs: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """Every run's accuracy (percent) per dataset and on average: the values the means are taken over."""
    seeds = runs.seed.map(lambda s: "" if s is None or s != s else str(int(s)))  # the base row has none
    table = runs.assign(seed=seeds).set_index([*ROW_KEYS, "seed", "dataset"]).accuracy
    table = table.unstack("dataset").reindex(columns=[d for d in datasets if d in set(runs.dataset)])
    table["average"] = table.mean(axis=1)
    return table.round(1).reset_index()


def detectable(table_cells: pd.DataFrame) -> str:
    """The smallest difference between two rows this run could detect, per dataset and on the average (80%
    power, two-sided alpha 0.05), at its numbers of items and seeds, its mean accuracy and its seed spread."""
    n, k = int(table_cells.n.min()), int(table_cells.seeds.max())
    p = float(np.clip(table_cells.accuracy.mean() / 100, 0.05, 0.95))
    spread = table_cells.seed_sd.dropna()
    sd = float(np.sqrt((spread ** 2).mean())) / 100 if len(spread) else None
    sets = table_cells.dataset.nunique()
    one = stats.detectable_difference(n, k, p, sd)
    # the average over sets: items add up; a seed shifts every set of its row alike
    average = stats.detectable_difference(n * sets, k, p, sd)
    seeds = (f"{k} seeds (seed SD {100 * sd:.1f} points, pooled over cells)" if sd is not None
             else "1 seed (the seeds' own variance unknown: add seeds to measure it)")
    return (f"Smallest difference between two rows this run can detect (80% power, two-sided α = 0.05, normal "
            f"approximation, Cohen 1988): {100 * one:.1f} points on one set of n = {n} items, {100 * average:.1f} "
            f"points on the average over {sets} sets; at {seeds} and mean accuracy {100 * p:.0f}%. Raise "
            f"`eval_limit` (items) or add `seeds` before reading a smaller gap.")
