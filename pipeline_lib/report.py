"""Aggregate score files into the paper-style accuracy table and a grouped bar chart."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .files import atomic_path, read_json

ROW_KEYS = ["model", "adapter", "train_set"]


def _interval(accuracy: float, n: int) -> list[float]:
    from .stats import accuracy_summary

    correct = round(accuracy * n)
    return accuracy_summary([True] * correct + [False] * (n - correct))["ci95"]


def collect(score_paths: list[str | Path]) -> pd.DataFrame:
    """One row per score file: model, adapter, train_set, dataset, accuracy (percent), n, its 95% Wilson
    interval (fractions), evaluation wall time, and the accuracy under upstream's extraction rule (percent,
    with its interval), which is what a published number is compared with."""
    rows = []
    for path in score_paths:
        s = read_json(path)
        low, high = s.get("ci95") or _interval(s["accuracy"], s["n"])
        paper = s.get("rules", {}).get("paper", s["accuracy"])
        paper_low, paper_high = _interval(paper, s["n"])
        rows.append({**{k: s[k] for k in ROW_KEYS}, "dataset": s["dataset"],
                     "accuracy": 100.0 * s["accuracy"], "n": s["n"], "ci_low": low, "ci_high": high,
                     "wall_time_s": s.get("wall_time_s"), "paper_accuracy": 100.0 * paper,
                     "paper_ci_low": paper_low, "paper_ci_high": paper_high})
    if not rows:
        raise ValueError("no score files to aggregate")
    return pd.DataFrame(rows)


def accuracy_table(scores: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """Rows model-adapter-training set, columns the datasets in the given order + their average."""
    table = scores.pivot_table(index=ROW_KEYS, columns="dataset", values="accuracy", aggfunc="first")
    table = table.reindex(columns=[d for d in datasets if d in table.columns])
    table["average"] = table.mean(axis=1)
    return table.round(1).reset_index()


MARKS = {"contaminated": "†", "decontaminated": "‡"}
LEGEND = {"contaminated": "† contaminated: the training set contains some of these test questions "
                          "(decontaminate: report); see contamination.md",
          "decontaminated": "‡ scored on the decontaminated subset: test items found in a training set of the run "
                            "were dropped (decontaminate: eval)"}


def contamination_marks(report: dict, train_parts: dict[str, list[str]], datasets: list[str]) -> dict:
    """(training set, dataset) -> 'contaminated' | 'decontaminated' for every cell the policy affects.
    Under `eval` a decontaminated column is marked in every row (base rows included): all were scored on it."""
    level, policy, pairs = report["level"], report["policy"], report["pairs"]
    marks = {}
    for dataset in datasets:
        touched = any(row.get(dataset, {}).get(level) for row in pairs.values())
        for train, parts in train_parts.items():
            overlap = any(pairs.get(p, {}).get(dataset, {}).get(level) for p in parts)
            if policy == "report" and overlap:
                marks[(train, dataset)] = "contaminated"
            if policy == "eval" and touched:
                marks[(train, dataset)] = "decontaminated"
    return marks


def marked(table: pd.DataFrame, marks: dict) -> tuple[pd.DataFrame, list[str]]:
    """The table as text with each affected cell's mark, and the legend lines of the marks used."""
    shown = table.copy()
    used = set()
    for column in shown.columns:
        if column in ROW_KEYS or column == "average":
            continue
        cells = []
        for train, value in zip(table["train_set"], table[column]):
            mark = marks.get((train, column))
            used.add(mark)
            cells.append(f"{value:.1f}{MARKS[mark] if mark else ''}" if pd.notna(value) else "")
        shown[column] = cells
    return shown, [LEGEND[m] for m in MARKS if m in used]


def write_tables(table: pd.DataFrame, out_csv, out_md, marks: dict | None = None) -> None:
    marks = marks or {}
    with atomic_path(out_csv) as tmp:
        flags = [";".join(f"{d}:{marks[(t, d)]}" for d in table.columns if (t, d) in marks)
                 for t in table["train_set"]]
        table.assign(marks=flags).to_csv(tmp, index=False)
    shown, legend = marked(table, marks)
    with atomic_path(out_md) as tmp:
        tmp.write_text(shown.to_markdown(index=False, floatfmt=".1f") + "\n" +
                       "".join(f"\n{line}\n" for line in legend), encoding="utf-8")


def write_contamination(report: dict, out_csv, out_md) -> None:
    """Training x evaluation table of overlapping evaluation items, at each level."""
    from . import contamination

    frames = [pd.DataFrame(contamination.table(report, level), columns=["training set"]).assign(level=level)
              if not report["pairs"] else pd.DataFrame(contamination.table(report, level)).assign(level=level)
              for level in report["levels"]]
    columns = ["level", "training set", *next(iter(report["pairs"].values()), {})]
    table = pd.concat(frames)[columns] if frames else pd.DataFrame(columns=columns)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    lines = [f"Evaluation items whose question appears in the training set (overlapping / total); policy "
             f"`decontaminate: {report['policy']}` acts on the `{report['level']}` level. verbatim: identical after "
             f"collapsing whitespace; normalised: also case and punctuation; near: at least "
             f"{report['threshold']:.0%} of the item's word {report['ngram']}-grams appear in the other set.\n"]
    for level, frame in zip(report["levels"], frames):
        lines += [f"\n### {level}\n", frame.drop(columns="level").to_markdown(index=False) + "\n"]
    with atomic_path(out_md) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")


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
