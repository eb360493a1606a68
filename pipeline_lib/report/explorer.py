"""The results explorer: one static HTML page (results/explorer.html) that works offline from the results folder,
no server: every cell (model, adapter, training set, protocol, dataset) with its accuracy, interval and its row's
costs in a table a reader sorts and filters, and a scatter of any two row metrics with the Pareto front of the
points shown. The data are embedded in the page (explorer.html next to this module is the page, `__DATA__` the
slot); the colours are the figures' (report/pareto.py `colours`)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from pipeline_lib.report.costs import METRICS
from pipeline_lib.report.pareto import colours
from pipeline_lib.runtime.files import atomic_path

TEMPLATE = Path(__file__).with_name("explorer.html")
TEXT_COLUMNS = ("model", "adapter", "train_set", "protocol", "dataset")
CELL_COLUMNS = [("accuracy", "accuracy (%)", 1), ("ci", "95% CI", None), ("n", "items", 0),
                ("chance", "chance (%)", 1), ("at_chance", "CI holds chance", None),
                ("no_answer", "no answer (%)", 1)]
ROW_COLUMNS = [("trainable_params", "trainable params", 0), ("adapter_mb", "adapter (MB)", 2),
               ("train_s", "train (s)", 1), ("train_mfu", "train MFU (%)", 1), ("eval_mfu", "eval MFU (%)", 1),
               ("total_s", "total (s)", 1), ("peak_rss_mb", "peak RSS (MB)", 0),
               ("peak_cuda_mb", "peak CUDA (MB)", 0), ("forgetting", "forgetting", 4),
               ("out_of_suite_delta", "Δ outside suite", 1), ("merged_tokens_per_s", "tokens/s merged", 2),
               ("unmerged_tokens_per_s", "tokens/s unmerged", 2), ("merge_agreement", "merged = unmerged", None)]


def data(cells: pd.DataFrame, costs: pd.DataFrame, about: str, apart: list | None = None) -> dict:
    """The page's data: `cells` (a record per table row), `rows` (a point per row, with its intervals), the metrics
    the axes offer (those some row has), the adapter colours, and `apart`: the pairs of rows ("model / adapter /
    training set") the paired test tells apart on average accuracy."""
    by_row = {tuple(r[k] for k in TEXT_COLUMNS[:4]): r for r in costs.to_dict("records")}
    records = []
    for c in cells.to_dict("records"):
        row = by_row.get(tuple(c[k] for k in TEXT_COLUMNS[:4]), {})
        records.append({**{k: c[k] for k in TEXT_COLUMNS}, "accuracy": _number(c["accuracy"]),
                        "ci": _interval(c.get("ci_low"), c.get("ci_high")), "n": _number(c.get("n")),
                        "chance": _percent(c.get("chance")), "no_answer": _percent(c.get("no_answer_share")),
                        "at_chance": None if _percent(c.get("chance")) is None else
                        ("yes" if c["ci_low"] <= c["chance"] <= c["ci_high"] else "no"),
                        **{k: _value(row.get(k)) for k, _, _ in ROW_COLUMNS},
                        "provenance": _value(row.get("provenance"))})
    points = [{**{k: r[k] for k in TEXT_COLUMNS[:4]}, **{k: _value(r.get(k)) for k in METRICS},
               "intervals": {m: [_number(r.get(f"{m}_low")), _number(r.get(f"{m}_high"))]
                             for m in ("accuracy", "forgetting") if _number(r.get(f"{m}_low")) is not None},
               "provenance": _value(r.get("provenance"))} for r in costs.to_dict("records")]
    offered = [k for k in METRICS if any(p[k] is not None for p in points)]
    return {
        "about": about,
        "cells": records, "rows": points,
        "columns": [{"key": k, "label": k.replace("_", " "), "text": True} for k in TEXT_COLUMNS] +
                   [{"key": k, "label": label, "digits": d} for k, label, d in CELL_COLUMNS + ROW_COLUMNS
                    if any(r[k] is not None for r in records)],
        "metrics": [{"key": k, "label": METRICS[k][0], "better": METRICS[k][1], "log": METRICS[k][2]}
                    for k in offered],
        "default_x": next((k for k in ("peak_cuda_mb", "peak_rss_mb", "trainable_params") if k in offered),
                          offered[0] if offered else "accuracy"),
        "colors": colours(cells.adapter),
        "apart": [list(pair) for pair in apart or []],
    }


def write(cells: pd.DataFrame, costs: pd.DataFrame, about: str, path: str | Path, apart: list | None = None) -> Path:
    payload = json.dumps(data(cells, costs, about, apart), ensure_ascii=False, allow_nan=False)
    page = TEMPLATE.read_text(encoding="utf-8").replace("__DATA__", payload.replace("</", "<\\/"))
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Path(path)


def _number(value):
    value = value.item() if hasattr(value, "item") else value  # numpy scalars to Python's, for JSON
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 4) if isinstance(value, float) else value


def _percent(share):
    number = _number(share)
    return None if number is None else round(100 * number, 1)


def _value(value):
    return value if isinstance(value, str) else _number(value)


def _interval(low, high) -> str | None:
    low, high = _number(low), _number(high)
    return None if low is None or high is None else f"[{100 * low:.1f}, {100 * high:.1f}]"
