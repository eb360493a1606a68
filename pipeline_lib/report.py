"""Aggregate score files into the paper-style accuracy table and a grouped bar chart."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .files import atomic_path, read_json

ROW_KEYS = ["model", "adapter", "train_set"]


def collect(score_paths: list[str | Path]) -> pd.DataFrame:
    """One row per score file: model, adapter, train_set, dataset, accuracy (percent), n."""
    rows = []
    for path in score_paths:
        s = read_json(path)
        rows.append({**{k: s[k] for k in ROW_KEYS}, "dataset": s["dataset"],
                     "accuracy": 100.0 * s["accuracy"], "n": s["n"]})
    if not rows:
        raise ValueError("no score files to aggregate")
    return pd.DataFrame(rows)


def accuracy_table(scores: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """Rows model-adapter-training set, columns the datasets in the given order + their average."""
    table = scores.pivot_table(index=ROW_KEYS, columns="dataset", values="accuracy", aggfunc="first")
    table = table.reindex(columns=[d for d in datasets if d in table.columns])
    table["average"] = table.mean(axis=1)
    return table.round(1).reset_index()


def write_tables(table: pd.DataFrame, out_csv, out_md) -> None:
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_md) as tmp:
        tmp.write_text(table.to_markdown(index=False, floatfmt=".1f") + "\n", encoding="utf-8")


def plot_accuracy(table: pd.DataFrame, out_png) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in table.columns if c not in ROW_KEYS]
    labels = table[ROW_KEYS].astype(str).agg(" / ".join, axis=1)
    colours = plt.get_cmap("tab10").colors  # colour-blind-friendlier than the default cycle for few series
    width = 0.8 / len(table)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(columns)), 4), dpi=150)
    for i, (label, (_, row)) in enumerate(zip(labels, table.iterrows())):
        xs = [x + (i - (len(table) - 1) / 2) * width for x in range(len(columns))]
        ax.bar(xs, [row[c] for c in columns], width, label=label, color=colours[i % len(colours)])
    ax.set_xticks(range(len(columns)), columns, rotation=20)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("evaluation set")
    ax.set_title("Accuracy per evaluation set (model / adapter / training set)")
    ax.legend(fontsize="small", frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
