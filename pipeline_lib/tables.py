"""The paper-style tables of a run, each as CSV, Markdown and LaTeX: accuracy with 95% intervals (best per
column marked, contamination marks), resources per fine-tune, ours beside the published numbers, and pairwise
significance between the adapters of one model."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

import pandas as pd

from . import stats
from .files import atomic_path, read_json, read_jsonl
from .report import LEGEND, MARKS, ROW_KEYS

# our method name -> the LLM-Adapters README's adapter name
PUBLISHED_METHODS = {"prefix_tuning": "Prefix", "series": "Series", "parallel": "Parallel", "lora": "LoRA"}
BASE_TRAIN_SET = "none"  # the training-set slot of the base rows (config.NO_TRAIN_SET)
# our training set -> the README table trained on it
PUBLISHED_SUITES = {"math_10k": "math", "commonsense_170k": "commonsense"}


def write(table: pd.DataFrame, stem: str | Path, caption: str, notes: list[str] = ()) -> list[Path]:
    """`stem`.csv, .md and .tex, each written atomically."""
    stem = Path(stem)
    paths = [stem.with_suffix(s) for s in (".csv", ".md", ".tex")]
    with atomic_path(paths[0]) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(f"{caption}\n\n{table.to_markdown(index=False)}\n" + "".join(f"\n{n}\n" for n in notes),
                       encoding="utf-8")
    with atomic_path(paths[2]) as tmp:
        tex = table.map(_latex_cell).rename(columns=_latex_cell)
        tmp.write_text(tex.to_latex(index=False, escape=False, caption=_latex_cell(caption), label=f"tab:{stem.name}"),
                       encoding="utf-8")
    return paths


def _latex_cell(value):
    """Escape LaTeX specials; Markdown bold (**x**) becomes \\textbf{x}, the marks become superscripts."""
    if not isinstance(value, str):
        return value
    for char in "&%$#_{}":
        value = value.replace(char, "\\" + char)
    value = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", value)
    return value.replace("†", "$^\\dagger$").replace("‡", "$^\\ddagger$")


def accuracy_cells(scores: pd.DataFrame, datasets: list[str], marks: dict) -> pd.DataFrame:
    """Rows model / adapter / training set; each cell 'acc [low, high]' in percent, the best per column in
    bold (**), contamination marks appended; the average column is the mean of the row's accuracies."""
    best = scores.groupby("dataset")["accuracy"].max()
    rows = []
    for keys, group in scores.groupby(ROW_KEYS, sort=False):
        row = dict(zip(ROW_KEYS, keys))
        by_set = group.set_index("dataset")
        for d in datasets:
            if d not in by_set.index:
                row[d] = ""
                continue
            s = by_set.loc[d]
            text = f"{s.accuracy:.1f} [{100 * s.ci_low:.1f}, {100 * s.ci_high:.1f}]"
            if s.accuracy == best[d] and (scores.dataset == d).sum() > 1:
                text = f"**{text}**"
            row[d] = text + MARKS.get(marks.get((keys[2], d)), "")
        row["average"] = round(by_set.loc[[d for d in datasets if d in by_set.index], "accuracy"].mean(), 1)
        rows.append(row)
    return pd.DataFrame(rows)


def accuracy_notes(marks: dict) -> list[str]:
    used = set(marks.values())
    return ["Accuracy in percent with its 95% Wilson interval; bold: best in the column."] + \
        [LEGEND[m] for m in MARKS if m in used]


def resources_table(metrics: dict[tuple, dict], scores: pd.DataFrame) -> pd.DataFrame:
    """One row per fine-tune: trainable parameters, training time and speed, memory, adapter size, and the
    evaluation time of its row summed over datasets."""
    eval_time = scores.groupby(ROW_KEYS)["wall_time_s"].sum()
    rows = []
    for keys, m in metrics.items():
        rows.append({**dict(zip(ROW_KEYS, keys)),
                     "trainable params": m.get("trainable_params"),
                     "% of base": round(m.get("trainable_percent", float("nan")), 4),
                     "train time (s)": m.get("wall_time_s"), "tokens/s": m.get("tokens_per_s"),
                     "peak RSS (MB)": m.get("peak_rss_mb"), "peak CUDA (MB)": m.get("peak_cuda_mb"),
                     "adapter file (MB)": round(m.get("adapter_file_bytes", 0) / 2 ** 20, 2),
                     "eval time (s)": round(float(eval_time.get(keys, float("nan"))), 1)})
    return pd.DataFrame(rows)


def published_comparison(scores: pd.DataFrame, published: pd.DataFrame, model_names: dict[str, str],
                         methods: dict[str, str]) -> pd.DataFrame:
    """Ours beside the LLM-Adapters README for every (model, adapter, dataset) the run has and the README too.
    A row matches only when its training set is the one that README table was trained on. The comparison uses
    our accuracy under upstream's extraction rule (the rule that produced the published number); our
    reported accuracy (a stricter rule for letters and option labels) stands beside it."""
    rows = []
    for s in scores.itertuples():
        suite = PUBLISHED_SUITES.get(s.train_set)
        theirs_model = model_names.get(s.model)
        theirs_adapter = PUBLISHED_METHODS.get(methods.get(s.adapter, ""))
        if not (suite and theirs_model and theirs_adapter):
            continue
        match = published[(published.suite == suite) & (published.model == theirs_model) &
                          (published.adapter == theirs_adapter) & (published.dataset == s.dataset)]
        if len(match):
            theirs = float(match.accuracy.iloc[0])
            low, high = 100 * s.paper_ci_low, 100 * s.paper_ci_high
            rows.append({"model": s.model, "adapter": s.adapter, "dataset": s.dataset,
                         "ours (paper rule)": round(s.paper_accuracy, 1), "95% CI": f"[{low:.1f}, {high:.1f}]",
                         "theirs": theirs, "ours - theirs": round(s.paper_accuracy - theirs, 1),
                         "theirs inside our CI": low <= theirs <= high, "ours (reported rule)": round(s.accuracy, 1)})
    return pd.DataFrame(rows, columns=["model", "adapter", "dataset", "ours (paper rule)", "95% CI", "theirs",
                                       "ours - theirs", "theirs inside our CI", "ours (reported rule)"])


def comparable(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Two (adapter, training set) rows compare when trained on the same set, or when one is the base model."""
    return a[1] == b[1] or BASE_TRAIN_SET in (a[1], b[1])


def significance_table(predictions: dict[tuple, Path]) -> pd.DataFrame:
    """Every pair of rows of one model trained on the same training set (and each against the base model) on
    each dataset, on the same items: accuracy difference, exact McNemar p, paired bootstrap 95% interval."""
    grouped: dict[tuple, dict[tuple, dict[str, bool]]] = {}
    for (model, adapter, train, dataset), path in predictions.items():
        correct = {p["id"]: bool(p["correct"]) for p in read_jsonl(path)}
        grouped.setdefault((model, dataset), {})[(adapter, train)] = correct
    rows = []
    for (model, dataset), runs in sorted(grouped.items()):
        for a, b in itertools.combinations(sorted(runs), 2):
            if not comparable(a, b):
                continue
            c = stats.paired_comparison(runs[a], runs[b], n_boot=2000)
            rows.append({"model": model, "dataset": dataset, "A": "/".join(a), "B": "/".join(b), "n": c["n"],
                         "A - B (points)": round(100 * c["difference"], 1),
                         "95% CI": f"[{100 * c['bootstrap_ci95'][0]:.1f}, {100 * c['bootstrap_ci95'][1]:.1f}]",
                         "only A right": c["only_a_correct"], "only B right": c["only_b_correct"],
                         "McNemar p": round(c["mcnemar_exact_p"], 4)})
    return pd.DataFrame(rows, columns=["model", "dataset", "A", "B", "n", "A - B (points)", "95% CI",
                                       "only A right", "only B right", "McNemar p"])


def load_metrics(adapter_dirs: list[str | Path]) -> dict[tuple, dict]:
    """metrics.json of each fine-tune, keyed by (model, adapter, training set) from its path."""
    out = {}
    for d in adapter_dirs:
        d = Path(d)
        out[(d.parent.parent.name, d.parent.name, d.name)] = read_json(d / "metrics.json")
    return out
