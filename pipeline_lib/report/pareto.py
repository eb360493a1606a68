"""Accuracy against what it costs: per (model, training set) a row of panels, one per cost the run recorded (peak
memory, training time, trainable parameters, adapter file size, forgetting), one point per adapter (each setting
its own point: sweep members, tuned and trial rows alike), the Pareto front dashed. Colours follow the adapters'
order in the run, as in the accuracy figure and the explorer."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline_lib.report.costs import METRICS, PARETO_COSTS, front
from pipeline_lib.report.figures import MARKERS, OKABE_ITO, _plt, save


def colours(adapters) -> dict[str, str]:
    """Adapter -> its colour: the figures' palette in the run's adapter order."""
    return {a: OKABE_ITO[i % len(OKABE_ITO)] for i, a in enumerate(dict.fromkeys(adapters))}


def figure(costs: pd.DataFrame, protocol: str, stem: str | Path) -> list[Path]:
    plt = _plt()
    shown = costs[(costs.protocol == protocol) & costs.accuracy.notna() & costs.trainable_params.notna()]
    axes_of = [c for c in PARETO_COSTS if shown[c].notna().any()] if len(shown) else []
    groups = list(shown.groupby(["model", "train_set"], sort=False)) if axes_of else []
    if not groups:  # nothing trained yet (or no cost recorded): say so rather than an empty grid
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no fine-tuned row with costs recorded yet", ha="center", va="center")
        return save(fig, stem)
    colour = colours(costs.adapter)
    fig, axes = plt.subplots(len(groups), len(axes_of), figsize=(3.3 * len(axes_of), 3.0 * len(groups)),
                             squeeze=False)
    for r, ((model, train), rows) in enumerate(groups):
        for c, cost in enumerate(axes_of):
            ax, points = axes[r][c], rows[rows[cost].notna()]
            for p in points.itertuples():
                ax.scatter(getattr(p, cost), p.accuracy, s=40, color=colour[p.adapter], edgecolor="black",
                           linewidth=0.5, marker=MARKERS[list(colour).index(p.adapter) % len(MARKERS)], zorder=3)
            best = front(points, cost, "accuracy")
            ax.plot(best[cost], best.accuracy, linestyle="--", color="grey", linewidth=1, zorder=2)
            for p in best.itertuples():
                ax.annotate(p.adapter, (getattr(p, cost), p.accuracy), textcoords="offset points", xytext=(4, 4),
                            fontsize=7)
            if METRICS[cost][2]:
                ax.set_xscale("log")
                _plain_log_labels(ax.xaxis)
            ax.set_xlabel(METRICS[cost][0], fontsize=8)
            ax.set_ylabel("average accuracy (%)" if c == 0 else "", fontsize=8)
            ax.set_title(f"{model} / {train}" if c == 0 else "", fontsize=8, loc="left")
            ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colour[a], marker=MARKERS[i % len(MARKERS)], linestyle="", label=a,
                          markeredgecolor="black") for i, a in enumerate(colour) if a in set(shown.adapter)]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), frameon=False, fontsize=8,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Accuracy against cost ({protocol}); dashed: the Pareto front", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return save(fig, stem)


def _plain_log_labels(axis) -> None:
    """Log-axis ticks as numbers (20, 30, 5e+06): within less than a decade matplotlib labels only minor ticks, in
    scientific notation (2x10^1)."""
    from matplotlib import ticker

    axis.set_major_formatter(ticker.LogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
