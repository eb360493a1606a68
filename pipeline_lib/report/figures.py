"""The run's figures, each as PNG and PDF: accuracy per dataset by adapter (one panel per model, 95% intervals),
accuracy against trainable parameters, training loss curves, and time per job. Okabe-Ito colours (safe for
colour-blind readers) with distinct markers and hatches, so that they also read in greyscale print."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline_lib.catalog import runs
from pipeline_lib.report.formats import HATCHES, MARKERS, OKABE_ITO, pyplot, save_figure


def _row_label(row) -> str:
    return row.adapter if runs.is_base(row.train_set) else f"{row.adapter} ({row.train_set})"


def accuracy_by_dataset(scores: pd.DataFrame, datasets: list[str], stem,
                        runs: pd.DataFrame | None = None) -> list[Path]:
    """Grouped bars: datasets on x, one bar per adapter (the mean over seeds), error bars = its 95% interval, and
    each seed's own accuracy as a dot on its bar where there are several; a panel per model."""
    plt = pyplot()
    models = list(dict.fromkeys(scores.model))
    fig, axes = plt.subplots(len(models), 1, figsize=(max(6.5, 1.3 * len(datasets) + 2), 3.6 * len(models)),
                             squeeze=False)
    for ax, model in zip(axes[:, 0], models):
        part = scores[scores.model == model]
        rows = list(dict.fromkeys(part.apply(_row_label, axis=1)))
        width = 0.8 / len(rows)
        for i, label in enumerate(rows):
            mine = part[part.apply(_row_label, axis=1) == label].set_index("dataset").reindex(datasets)
            xs = [x + (i - (len(rows) - 1) / 2) * width for x in range(len(datasets))]
            err = [(mine.accuracy - 100 * mine.ci_low).clip(lower=0),
                   (100 * mine.ci_high - mine.accuracy).clip(lower=0)]
            ax.bar(xs, mine.accuracy, width, yerr=err, capsize=2, label=label, color=OKABE_ITO[i % 8],
                   hatch=HATCHES[i % 8], edgecolor="black", linewidth=0.4, error_kw={"linewidth": 0.8})
            if runs is not None:  # the seed spread: every seed's accuracy
                seeded = runs[(runs.model == model) & (runs.apply(_row_label, axis=1) == label)]
                if seeded.seed.nunique() > 1:
                    x_of = dict(zip(datasets, xs))
                    labelled = "one seed" in ax.get_legend_handles_labels()[1]
                    ax.scatter([x_of[d] for d in seeded.dataset], seeded.accuracy, s=9, color="black", zorder=3,
                               label=None if labelled else "one seed")
        ax.set_xticks(range(len(datasets)), datasets, rotation=20)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{model}: accuracy per evaluation set (bars: 95% interval; dots: seeds)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(title="adapter", frameon=False, ncol=min(4, len(rows)))
    axes[-1, 0].set_xlabel("evaluation set")
    fig.tight_layout()
    return save_figure(fig, stem)


def accuracy_vs_parameters(table: pd.DataFrame, params: dict[tuple, float], stem) -> list[Path]:
    """Average accuracy against trainable parameters (log x): one marker per adapter, a colour per model."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    models = list(dict.fromkeys(table.model))
    adapters = list(dict.fromkeys(table.adapter))
    for row in table.itertuples():
        n = params.get((row.model, row.adapter, row.train_set))
        if not n:
            continue
        ax.scatter(n, row.average, s=60, color=OKABE_ITO[models.index(row.model) % 8],
                   marker=MARKERS[adapters.index(row.adapter) % 8], edgecolor="black", linewidth=0.5)
        ax.annotate(row.adapter, (n, row.average), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel("average accuracy (%)")
    ax.set_title("Accuracy against adapter size")
    handles = [plt.Line2D([], [], color=OKABE_ITO[i % 8], marker="o", linestyle="", label=m)
               for i, m in enumerate(models)]
    handles += [plt.Line2D([], [], color="grey", marker=MARKERS[i % 8], linestyle="", label=a)
                for i, a in enumerate(adapters)]
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="best")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return save_figure(fig, stem)


def loss_curves(metrics: dict[tuple, dict], stem) -> list[Path]:
    """Training loss per optimizer step, one line per fine-tune (validation loss dashed where recorded)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, (keys, m) in enumerate(sorted(metrics.items(), key=lambda kv: str(kv[0]))):
        label = " / ".join(str(k) for k in keys if k is not None)
        ax.plot(range(1, len(m["loss"]) + 1), m["loss"], color=OKABE_ITO[i % 8], marker=MARKERS[i % 8],
                markevery=max(1, len(m["loss"]) // 8), markersize=4, linewidth=1.2, label=label)
        val = m.get("validation") or {}
        if val.get("steps"):
            ax.plot(val["steps"], val["loss"], color=OKABE_ITO[i % 8], linestyle="--", linewidth=1,
                    label=f"{label} (validation)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (token-weighted cross-entropy)")
    ax.set_title("Training loss per fine-tune")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, stem)


def job_times(metrics: dict[tuple, dict], scores: pd.DataFrame, stem) -> list[Path]:
    """Horizontal bars: training time per fine-tune and evaluation time per (row, dataset) job."""
    plt = pyplot()
    jobs = [(f"train {' / '.join(str(x) for x in k if x is not None)}", m.get("wall_time_s") or 0, 0)
            for k, m in sorted(metrics.items(), key=lambda kv: str(kv[0]))]
    jobs += [(f"eval {r.model} / {getattr(r, 'run', r.adapter)} / {r.train_set} / {r.dataset}", r.wall_time_s or 0, 1)
             for r in scores.itertuples()]
    fig, ax = plt.subplots(figsize=(7, max(3, 0.22 * len(jobs) + 1)))
    ax.barh(range(len(jobs)), [t for _, t, _ in jobs], color=[OKABE_ITO[k] for _, _, k in jobs],
            hatch=None, edgecolor="black", linewidth=0.3)
    ax.set_yticks(range(len(jobs)), [name for name, _, _ in jobs], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("wall time (s)")
    ax.set_title("Time per job (blue: fine-tune, orange: evaluation)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, stem)


def average_with_interval(scores: pd.DataFrame, averages: dict[tuple, tuple] | None = None) -> pd.DataFrame:
    """Per (model, adapter, training set): mean accuracy over datasets and a 95% interval of that mean: the
    bootstrap over seeds and items where given (`averages`, from pipeline_lib.report.aggregate), else each dataset's
    standard error (read off its interval) combined as independent."""
    if averages:
        rows = [{"model": k[0], "adapter": k[1], "train_set": k[2], "average": 100 * mean, "low": 100 * low,
                 "high": 100 * high} for k, (mean, low, high) in averages.items()]
        return pd.DataFrame(rows)
    frame = scores.assign(se=100 * (scores.ci_high - scores.ci_low) / (2 * 1.96))
    grouped = frame.groupby(["model", "adapter", "train_set"])
    out = grouped.agg(average=("accuracy", "mean"), datasets=("dataset", "count"),
                      se2=("se", lambda s: (s ** 2).sum())).reset_index()
    half = 1.96 * out.se2 ** 0.5 / out.datasets
    return out.assign(low=(out.average - half).clip(lower=0), high=(out.average + half).clip(upper=100))


def placement(scores: pd.DataFrame, coordinates: dict[str, dict], stem, averages: dict | None = None,
              runs: pd.DataFrame | None = None) -> list[Path]:
    """Average accuracy per method (groups) and placement (bars), with 95% intervals (over seeds and items) and
    each seed's average as a dot where there are several; a panel per model."""
    plt = pyplot()
    avg = average_with_interval(scores, averages)
    per_seed = runs.groupby(["model", "adapter", "train_set", "seed"], dropna=False).accuracy.mean().reset_index() \
        if runs is not None else None
    avg = avg[avg.adapter.map(lambda a: bool(coordinates.get(a, {}).get("placement")))]
    models = list(dict.fromkeys(avg.model)) or ["(no placement sweep)"]
    order = ["attention", "mlp", "both"]
    fig, axes = plt.subplots(len(models), 1, figsize=(6.5, 3.8 * len(models)), squeeze=False)
    for ax, model in zip(axes[:, 0], models):
        part = avg[avg.model == model]
        families = list(dict.fromkeys(coordinates[a]["family"] for a in part.adapter))
        for j, place in enumerate(order):
            xs, ys, lo, hi, dots = [], [], [], [], []
            for i, family in enumerate(families):
                row = part[part.adapter.map(lambda a, f=family, p=place: coordinates[a]["family"] == f and
                                            coordinates[a]["placement"] == p)]
                if len(row):
                    r = row.iloc[0]
                    xs.append(i + (j - 1) * 0.27)
                    ys.append(r.average)
                    lo.append(r.average - r.low)
                    hi.append(r.high - r.average)
                    if per_seed is not None:  # each seed's average: the seed spread
                        mine = per_seed[(per_seed.model == model) & (per_seed.adapter == r.adapter)].accuracy
                        dots += [(xs[-1], y) for y in mine] if len(mine) > 1 else []
            ax.bar(xs, ys, 0.27, yerr=[lo, hi], capsize=3, label=place, color=OKABE_ITO[j], hatch=HATCHES[j],
                   edgecolor="black", linewidth=0.4)
            if dots:
                ax.scatter(*zip(*dots), s=9, color="black", zorder=3)
        ax.set_xticks(range(len(families)), families)
        ax.set_ylabel("average accuracy (%)")
        ax.set_title(f"{model}: adapter placement (bars: 95% interval)")
        ax.legend(title="placement", frameon=False)
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xlabel("method")
    fig.tight_layout()
    return save_figure(fig, stem)


def size(scores: pd.DataFrame, coordinates: dict[str, dict], params: dict[tuple, float], stem,
         averages: dict | None = None) -> list[Path]:
    """Average accuracy against the size parameter, a line (with interval band) per method family; log x when
    the grid spans a factor of 4 or more; each point annotated with its trainable parameters."""
    plt = pyplot()
    avg = average_with_interval(scores, averages)
    avg = avg[avg.adapter.map(lambda a: coordinates.get(a, {}).get("size") is not None)]
    families = list(dict.fromkeys(coordinates[a]["family"] for a in avg.adapter))
    fig, axes = plt.subplots(1, max(1, len(families)), figsize=(3.6 * max(1, len(families)), 3.6), squeeze=False)
    for i, (ax, family) in enumerate(zip(axes[0], families)):
        part = avg[avg.adapter.map(lambda a, f=family: coordinates[a]["family"] == f)].copy()
        part["size"] = part.adapter.map(lambda a: coordinates[a]["size"])
        for j, (model, rows) in enumerate(part.sort_values("size").groupby("model", sort=False)):
            colour = OKABE_ITO[(i + j) % 8]
            ax.plot(rows["size"], rows.average, marker=MARKERS[i % 8], color=colour, label=model)
            ax.fill_between(rows["size"], rows.low, rows.high, color=colour, alpha=0.2)
            for r in rows.itertuples():
                n = params.get((r.model, r.adapter, r.train_set))
                if n:
                    ax.annotate(f"{n / 1e6:.2g}M" if n >= 1e5 else f"{n / 1e3:.2g}k", (r.size, r.average),
                                textcoords="offset points", xytext=(3, 5), fontsize=7)
        sizes = sorted(part["size"])
        if sizes and sizes[-1] / max(sizes[0], 1e-9) >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        key = coordinates[part.adapter.iloc[0]]["size_key"]
        ax.set_xlabel(key.replace("_", " "))
        ax.set_title(family)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("average accuracy (%)")
    fig.suptitle("Accuracy against adapter size (band: 95% interval; labels: trainable parameters)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, stem)
