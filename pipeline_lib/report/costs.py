"""What each fine-tuned row costs and what it forgets, beside its accuracy: one row per (model, adapter, training
set, protocol), the metrics of its fine-tunes averaged over seeds. The resources table, the Pareto figure and the
results explorer all read this frame, so the three show the same numbers.

Metrics (`METRICS`: label, and whether higher is better, for the Pareto front):
- accuracy: the row's average over its evaluation sets (percent);
- costs of the fine-tune: trainable parameters, adapter file size, training time and MFU, total time (training
  plus every evaluation of the row, all protocols), peak host RSS, and on CUDA the peak allocated and the reserved
  memory's average and 99th percentile over optimizer steps (as PEFT's benchmark records);
- forgetting: the change in mean per-token cross-entropy on the reference text with the adapter enabled against
  disabled (nats/token; evaluation/forgetting.py), and the accuracy change against the base model on the
  evaluated sets outside the training set's suite (points; needs the base row);
- inference: generated tokens/s with the adapter merged and unmerged, and how many greedy outputs agree
  (evaluation/merging.py); the row's generation MFU (every row, the base model's too)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline_lib.catalog.runs import BASE, NO_TRAIN_SET

# key -> (label, better, log scale in plots)
METRICS = {
    "accuracy": ("average accuracy (%)", "higher", False),
    "trainable_params": ("trainable parameters", "lower", True),
    "adapter_mb": ("adapter file (MB)", "lower", True),
    "train_s": ("training time (s)", "lower", False),
    "total_s": ("total time (s)", "lower", False),
    "peak_rss_mb": ("peak RSS (MB)", "lower", False),
    "peak_cuda_mb": ("peak CUDA allocated (MB)", "lower", False),
    "cuda_reserved_avg_mb": ("CUDA reserved, average (MB)", "lower", False),
    "cuda_reserved_p99_mb": ("CUDA reserved, 99th percentile (MB)", "lower", False),
    "forgetting": ("forgetting (Δ cross-entropy, nats/token)", "lower", False),
    "out_of_suite_delta": ("Δ accuracy outside the training suite (points)", "higher", False),
    "merged_tokens_per_s": ("generated tokens/s, merged", "higher", False),
    "unmerged_tokens_per_s": ("generated tokens/s, unmerged", "higher", False),
    "train_mfu": ("training MFU (%)", "higher", False),
    "eval_mfu": ("generation MFU (%)", "higher", False),
}
PARETO_COSTS = ("peak_rss_mb", "peak_cuda_mb", "train_s", "trainable_params", "adapter_mb", "forgetting")


def row_costs(metrics: dict, runs: pd.DataFrame, averages: dict, forgetting: dict, merging: dict,
              train_suites: dict, dataset_suites: dict) -> pd.DataFrame:
    """One row per (model, adapter, training set, protocol) that has an accuracy; costs where recorded.
    `metrics`, `forgetting`, `merging`: (model, adapter, training set, seed) -> the fine-tune's record."""
    eval_time = runs.groupby(["model", "adapter", "train_set"])["wall_time_s"].sum()
    accuracy = runs.groupby(["model", "adapter", "train_set", "protocol", "dataset"])["accuracy"].mean()
    rows = []
    for key in runs[["model", "adapter", "train_set", "protocol"]].drop_duplicates().itertuples(index=False):
        model, adapter, train, protocol = key
        interval = averages.get(tuple(key))
        row = {"model": model, "adapter": adapter, "train_set": train, "protocol": protocol,
               "accuracy": _average(interval, accuracy, key),
               "accuracy_low": 100 * interval[1] if interval else None,
               "accuracy_high": 100 * interval[2] if interval else None}
        row["eval_mfu"] = generation_mfu(runs[(runs[["model", "adapter", "train_set", "protocol"]]
                                               == list(key)).all(axis=1)])
        if adapter != BASE:
            row |= _fine_tune(_of(metrics, key), _of(forgetting, key), _of(merging, key))
            row["total_s"] = _sum(row.get("train_s"), eval_time.get((model, adapter, train)))
            row["out_of_suite_delta"] = _out_of_suite(accuracy, key, train_suites.get(train, []), dataset_suites)
        rows.append(row)
    return pd.DataFrame(rows, columns=["model", "adapter", "train_set", "protocol", *METRICS, *INTERVALS,
                                       "merge_agreement", "provenance"])


def generation_mfu(evaluations: pd.DataFrame) -> float | None:
    """MFU (%) of generating evaluations together: their model FLOPs over their wall time against the peak; the
    log-likelihood protocols, which record no FLOPs, are left out."""
    if "model_flops" not in evaluations:
        return None
    timed = evaluations.dropna(subset=["model_flops", "peak_flops_per_s"])
    if timed.empty or not timed.wall_time_s.sum():
        return None
    return round(100 * timed.model_flops.sum() / timed.wall_time_s.sum() / timed.peak_flops_per_s.iloc[0], 1)


# the metrics a point carries an interval for: (low, high) columns
INTERVALS = ("accuracy_low", "accuracy_high", "forgetting_low", "forgetting_high")


def _of(records: dict, key) -> list[dict]:
    return [r for k, r in records.items() if tuple(k[:3]) == tuple(key[:3])]


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else None


def _fine_tune(trained: list[dict], forgot: list[dict], merged: list[dict]) -> dict:
    cuda = [m.get("cuda_memory") or {} for m in trained]
    agree = [m["agreement"] for m in merged if m.get("mergeable")]
    versions = {m.get("provenance", {}).get("model", {}).get("commit") or
                m.get("provenance", {}).get("model", {}).get("wheel_sha256") for m in trained}
    return {
        "trainable_params": _mean(m.get("trainable_params") for m in trained),
        "adapter_mb": _mean(m.get("adapter_file_bytes", 0) / 2 ** 20 for m in trained) if trained else None,
        "train_s": _mean(m.get("wall_time_s") for m in trained),
        "train_mfu": _mean(100 * m["efficiency"]["mfu"] for m in trained
                           if (m.get("efficiency") or {}).get("mfu") is not None),
        "peak_rss_mb": _mean(m.get("peak_rss_mb") for m in trained),
        "peak_cuda_mb": _mean(m.get("peak_cuda_mb") for m in trained),
        "cuda_reserved_avg_mb": _mean(c.get("reserved_avg_mb") for c in cuda),
        "cuda_reserved_p99_mb": _mean(c.get("reserved_p99_mb") for c in cuda),
        "forgetting": _mean(f.get("forgetting") for f in forgot),
        # one fine-tune's interval over its windows (several seeds: no pooled interval is drawn)
        "forgetting_low": forgot[0]["forgetting_ci95"][0] if len(forgot) == 1 and forgot[0].get("forgetting_ci95")
        else None,
        "forgetting_high": forgot[0]["forgetting_ci95"][1] if len(forgot) == 1 and forgot[0].get("forgetting_ci95")
        else None,
        "merged_tokens_per_s": _mean((m.get("merged") or {}).get("new_tokens_per_s") for m in merged),
        "unmerged_tokens_per_s": _mean((m.get("unmerged") or {}).get("new_tokens_per_s") for m in merged),
        "merge_agreement": (f"{sum(a['same_response'] for a in agree)}/"
                            f"{sum(a['same_response'] + a['different_response'] for a in agree)}") if agree else
                           ("not mergeable" if merged else None),
        "provenance": ", ".join(sorted(str(v)[:12] for v in versions if v)) or None,
    }


def _average(interval, accuracy: pd.Series, key) -> float | None:
    if interval is not None:
        return 100 * interval[0]
    try:
        return float(accuracy.loc[tuple(key)].mean())
    except KeyError:
        return None


def _sum(*parts) -> float | None:
    return float(sum(parts)) if all(p is not None and not (isinstance(p, float) and math.isnan(p)) for p in parts) \
        else None


def _out_of_suite(accuracy: pd.Series, key, trained_suites: list[str], dataset_suites: dict) -> float | None:
    """Mean over the evaluated sets outside the training set's suites of (this row's accuracy - the base's)."""
    model, _, _, protocol = key
    deltas = []
    for dataset, suite in dataset_suites.items():
        if suite in trained_suites:
            continue
        mine = accuracy.get(tuple(key) + (dataset,))
        base = accuracy.get((model, BASE, NO_TRAIN_SET, protocol, dataset))
        if mine is not None and base is not None:
            deltas.append(mine - base)
    return float(np.mean(deltas)) if deltas else None


def front(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The rows of `frame` no other row beats on both metrics (each in its own direction), sorted by x."""
    sx = 1 if METRICS[x][1] == "higher" else -1
    sy = 1 if METRICS[y][1] == "higher" else -1
    points = frame[[x, y]].to_numpy(dtype=float)
    keep = []
    for i, (px, py) in enumerate(points):
        beaten = any((sx * qx >= sx * px and sy * qy >= sy * py and (sx * qx > sx * px or sy * qy > sy * py))
                     for j, (qx, qy) in enumerate(points) if j != i)
        keep.append(not beaten)
    return frame[keep].sort_values(x)


def forgetting_differences(forgetting: dict) -> pd.DataFrame:
    """Every pair of fine-tunes of one model whose forgetting was scored on the same windows: A - B with a 95%
    interval over the windows (paired), the declared paired test's p over the windows (report/comparisons.py, each
    window weighted by its tokens) and its Holm adjustment over the model's pairs: which forgetting differences are
    real and which are noise."""
    import itertools

    from pipeline_lib.report import comparisons

    by_model: dict[tuple, dict] = {}
    for key, r in forgetting.items():
        if r.get("per_window"):
            group = (key[0], r["reference"]["sha256"], r.get("scoring"), r["windows"], r["sequence_length"])
            by_model.setdefault(group, {})["/".join(str(k) for k in key[1:3]) +
                                           (f" seed {key[3]}" if key[3] is not None else "")] = r
    rows = []
    for (model, *_), records in by_model.items():
        pairs = []
        for a, b in itertools.combinations(records, 2):
            wa, wb = records[a]["per_window"], records[b]["per_window"]
            tokens = np.array(wa["tokens"], dtype=float)
            fa = (np.array(wa["enabled"]) - np.array(wa["disabled"])) / tokens
            fb = (np.array(wb["enabled"]) - np.array(wb["disabled"])) / tokens
            weights = tokens / tokens.sum()
            d = fa - fb
            pairs.append({"model": model, "A": a, "B": b, "A - B": float(np.sum(weights * d)),
                          "95% CI": _paired_interval(d, weights), "p": comparisons.sign_flip_test(d, weights)})
        for pair, adjusted in zip(pairs, comparisons.holm([p["p"] for p in pairs])):
            rows.append({**pair, "A - B": round(pair["A - B"], 5), "p": round(pair["p"], 4),
                         "p (Holm)": round(adjusted, 4), "told apart": "yes" if adjusted < comparisons.ALPHA else "no"})
    return pd.DataFrame(rows, columns=["model", "A", "B", "A - B", "95% CI", "p", "p (Holm)", "told apart"])


def _paired_interval(d: np.ndarray, weights: np.ndarray, n_boot: int = 2000, seed: int = 0) -> str:
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))
    replicates = (d[idx] * weights[idx]).sum(1) / weights[idx].sum(1)
    return f"[{np.quantile(replicates, 0.025):.5f}, {np.quantile(replicates, 0.975):.5f}]"
