"""Accuracy against what it costs: per (model, training set) a row of panels, one per cost the run recorded (peak
memory, training time, trainable parameters, adapter file size, forgetting), one point per adapter (each setting
its own point: sweep members, tuned and trial rows alike), the Pareto front dashed. Colours follow the adapters'
order in the run, as in the accuracy figure and the explorer."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline_lib.report.costs import METRICS, PARETO_COSTS, front
from pipeline_lib.report.formats import MARKERS, OKABE_ITO, pyplot, save_figure


def colours(adapters) -> dict[str, str]:
    """Adapter -> its colour: the figures' palette in the run's adapter order."""
    return {a: OKABE_ITO[i % len(OKABE_ITO)] for i, a in enumerate(dict.fromkeys(adapters))}


def figure(costs: pd.DataFrame, protocol: str, stem: str | Path, apart: set[frozenset] = frozenset()) -> list[Path]:
    """`apart`: pairs of rows ("model / adapter / training set") the paired test tells apart on average accuracy;
    adjacent front points that are not are joined by a dotted segment, told-apart ones by a solid one."""
    plt = pyplot()
    shown = costs[(costs.protocol == protocol) & costs.accuracy.notna() & costs.trainable_params.notna()]
    axes_of = [c for c in PARETO_COSTS if shown[c].notna().any()] if len(shown) else []
    groups = list(shown.groupby(["model", "train_set"], sort=False)) if axes_of else []
    if not groups:  # nothing trained yet (or no cost recorded): say so rather than an empty grid
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no fine-tuned row with costs recorded yet", ha="center", va="center")
        return save_figure(fig, stem)
    colour = colours(costs.adapter)
    fig, axes = plt.subplots(len(groups), len(axes_of), figsize=(3.3 * len(axes_of), 3.0 * len(groups)),
                             squeeze=False)
    for r, ((model, train), rows) in enumerate(groups):
        for c, cost in enumerate(axes_of):
            ax, points = axes[r][c], rows[rows[cost].notna()]
            for p in points.itertuples():
                x, y = getattr(p, cost), p.accuracy
                ax.errorbar(x, y, yerr=_span(y, p.accuracy_low, p.accuracy_high),
                            xerr=_span(x, p.forgetting_low, p.forgetting_high) if cost == "forgetting" else None,
                            fmt="none", ecolor=colour[p.adapter], elinewidth=0.8, alpha=0.7, zorder=2)
                ax.scatter(x, y, s=40, color=colour[p.adapter], edgecolor="black", linewidth=0.5,
                           marker=MARKERS[list(colour).index(p.adapter) % len(MARKERS)], zorder=3)
            best = front(points, cost, "accuracy")
            for a, b in zip(best.itertuples(), best.iloc[1:].itertuples()):
                told = frozenset((_name(a), _name(b))) in apart
                ax.plot([getattr(a, cost), getattr(b, cost)], [a.accuracy, b.accuracy], color="grey", linewidth=1,
                        linestyle="-" if told else ":", zorder=2)
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
    columns = min(8, len(handles))
    fig.legend(handles=handles, loc="lower center", ncol=columns, frameon=False, fontsize=8, bbox_to_anchor=(0.5, 0))
    fig.suptitle(f"Accuracy against cost ({protocol}) with 95% intervals; the Pareto front: solid where its adjacent "
                 f"points are told apart on accuracy (paired test, Holm), dotted where they are not", fontsize=9)
    legend_rows = -(-len(handles) // columns)  # the legend's height, kept clear of the axes' labels
    fig.tight_layout(rect=(0, min(0.45, (0.1 + 0.2 * legend_rows) / fig.get_figheight()), 1, 1))
    return save_figure(fig, stem)


def _name(point) -> str:
    return f"{point.model} / {point.adapter} / {point.train_set}"


def _span(value, low, high):
    """An error bar's [[below], [above]] from an interval, or None where there is none."""
    if low is None or high is None or low != low or high != high:
        return None
    return [[max(0.0, value - low)], [max(0.0, high - value)]]


def _plain_log_labels(axis) -> None:
    """Log-axis ticks as plain numbers (20, 30, 5e+06 rather than 2x10^1). Where the axis spans a decade or more
    its decades carry the labels; under a decade (no decade tick in view) the 2s, 3s and 5s do, and every tick under a
    factor of 2.5."""
    from matplotlib import ticker

    def minor(value, _):
        low, high = sorted(axis.get_view_interval())
        narrow = high < 2.5 * low  # every minor tick fits
        return f"{value:g}" if high < 10 * low and (narrow or f"{value:.0e}"[0] in "235") else ""
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(ticker.FuncFormatter(minor))
