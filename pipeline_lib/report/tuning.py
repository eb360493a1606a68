"""What tuning shows (config `tuning:`): every trial's validation score and the setting chosen per adapter with the
budget it cost (`tuning`), each adapter's configured setting against its tuned one on the test sets, paired
(`tuned_vs_default`), whether the adapters' ranking survives tuning (`rank_stability`: Kendall's tau and the pairs
that swap), and the validation score against the learning rate and the size (the `sensitivity` figure)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from pipeline_lib.evaluation import stats

SIZE_KEYS = ("r", "bottleneck_size", "num_virtual_tokens")


def _label(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def tuning_table(selections: dict[tuple, dict]) -> pd.DataFrame:
    """A row per trial: its values, its validation accuracy and loss, whether it was chosen, ties and failures."""
    rows = []
    for (model, adapter, train), s in selections.items():
        for t in s["trials"]:
            chosen = t["trial"] == s["chosen"]["trial"]
            note = t["failed"] or ("tie, broken by " + s["tie_break"] if t["trial"] in s["ties"] and s["tie_break"]
                                   else "chosen" + (f" (tie broken by {s['tie_break']})" if s["ties"] and
                                                    s["tie_break"] else "") if chosen else "")
            accuracy = t.get("accuracy")
            rows.append({"model": model, "adapter": adapter, "train_set": train, "trial": _label(t["values"]),
                         "validation accuracy (%)": None if accuracy is None else round(100 * accuracy, 1),
                         "validation loss": None if t.get("loss") is None else round(t["loss"], 4),
                         "chosen": "✓" if chosen else "", "note": note})
    return pd.DataFrame(rows, columns=["model", "adapter", "train_set", "trial", "validation accuracy (%)",
                                       "validation loss", "chosen", "note"])


def tuning_notes(selections: dict[tuple, dict]) -> list[str]:
    """The budget each adapter spent, the same number of trials for every one."""
    lines = []
    for (model, adapter, train), s in selections.items():
        b = s["budget"]
        memory = f", peak RSS {b['peak_rss_mb']:,.0f} MB" if b.get("peak_rss_mb") else ""
        memory += f", peak CUDA {b['peak_cuda_mb']:,.0f} MB" if b.get("peak_cuda_mb") else ""
        failed = f" ({b['failed']} failed)" if b["failed"] else ""
        lines.append(f"{model} / {adapter} / {train}: {b['trials']} trials{failed}, {b['tokens']:,} training tokens, "
                     f"{b['wall_time_s']:,.0f} s{memory}; chosen {_label(s['chosen']['values'])} by validation "
                     f"{s['metric']}.")
    return ["Budget per adapter (every adapter gets the same number of trials; the choice reads validation scores "
            "only):", *lines]


def _pairs(found: dict[tuple, dict], tuned: dict[str, str]):
    """(model, adapter, train, protocol) -> {dataset: (default outcomes, tuned outcomes)} for every tuned adapter."""
    pairs: dict[tuple, dict] = {}
    for (model, adapter, train, protocol, dataset), cell in found.items():
        if adapter in tuned:
            default = found.get((model, tuned[adapter], train, protocol, dataset))
            if default is not None:
                pairs.setdefault((model, tuned[adapter], train, protocol), {})[dataset] = (default["reported"],
                                                                                           cell["reported"])
    return pairs


def tuned_vs_default(found: dict[tuple, dict], tuned: dict[str, str], datasets: list[str]) -> pd.DataFrame:
    """Per adapter and evaluation set (and on their average): the configured setting's test accuracy and the tuned
    one's, each with its 95% interval over seeds and items, and tuned - default with its paired interval and p."""
    rows = []
    for (model, adapter, train, protocol), by_set in _pairs(found, tuned).items():
        for dataset in [d for d in datasets if d in by_set] + ["average"]:
            if dataset == "average":
                parts = [by_set[d] for d in datasets if d in by_set]
                a = np.concatenate([p[0] for p in parts], axis=1) if len({p[0].shape[0] for p in parts}) == 1 else None
                b = np.concatenate([p[1] for p in parts], axis=1) if len({p[1].shape[0] for p in parts}) == 1 else None
                if a is None or b is None:
                    continue
            else:
                a, b = by_set[dataset]
            n = min(a.shape[1], b.shape[1])
            c = stats.seed_paired_comparison(b[:, :n], a[:, :n])
            ia, ib = stats.seeds_interval([a[:, :n]]), stats.seeds_interval([b[:, :n]])
            rows.append({"model": model, "adapter": adapter, "train_set": train, "protocol": protocol,
                         "dataset": dataset, "n": n,
                         "default (%)": f"{100 * ia[0]:.1f} [{100 * ia[1]:.1f}, {100 * ia[2]:.1f}]",
                         "tuned (%)": f"{100 * ib[0]:.1f} [{100 * ib[1]:.1f}, {100 * ib[2]:.1f}]",
                         "tuned - default (points)": round(100 * c["difference"], 1),
                         "95% CI": f"[{100 * c['ci95'][0]:.1f}, {100 * c['ci95'][1]:.1f}]", "p": round(c["p"], 4)})
    return pd.DataFrame(rows, columns=["model", "adapter", "train_set", "protocol", "dataset", "n", "default (%)",
                                       "tuned (%)", "tuned - default (points)", "95% CI", "p"])


def rank_stability(found: dict[tuple, dict], tuned: dict[str, str], datasets: list[str]) -> pd.DataFrame:
    """Per (model, training set, protocol): the adapters ranked by their average test accuracy under their configured
    settings and under tuning, Kendall's tau between the two rankings, and the pairs whose order swapped."""
    from scipy.stats import kendalltau

    rows = []
    by_group: dict[tuple, dict[str, tuple[float, float]]] = {}
    for (model, adapter, train, protocol), by_set in _pairs(found, tuned).items():
        means = [np.mean([by_set[d][i].mean() for d in datasets if d in by_set]) for i in (0, 1)]
        by_group.setdefault((model, train, protocol), {})[adapter] = (means[0], means[1])
    for (model, train, protocol), scores in by_group.items():
        names = sorted(scores)
        default = sorted(names, key=lambda a: -scores[a][0])
        tuned_order = sorted(names, key=lambda a: -scores[a][1])
        swapped = [f"{a} / {b}" for a, b in itertools.combinations(names, 2)
                   if np.sign(scores[a][0] - scores[b][0]) * np.sign(scores[a][1] - scores[b][1]) < 0]
        tau = kendalltau([scores[a][0] for a in names], [scores[a][1] for a in names]).statistic if len(names) > 1 \
            else float("nan")
        rows.append({"model": model, "train_set": train, "protocol": protocol, "adapters": len(names),
                     "ranking, default": " > ".join(default), "ranking, tuned": " > ".join(tuned_order),
                     "Kendall's tau": None if tau != tau else round(float(tau), 3),
                     "swapped pairs": "; ".join(swapped) or "none"})
    return pd.DataFrame(rows, columns=["model", "train_set", "protocol", "adapters", "ranking, default",
                                       "ranking, tuned", "Kendall's tau", "swapped pairs"])


RANK_NOTE = ("Rankings by average test accuracy over the evaluation sets (ties keep the adapters' name order); "
             "Kendall's tau between the configured and the tuned ranking (1: the same order, -1: reversed); a pair "
             "is swapped when tuning reverses which of the two is more accurate. With few items per set, a swap "
             "can be noise: the tuned_vs_default intervals say how much each adapter moved.")


def sensitivity(selections: dict[tuple, dict], stem):
    """Validation score against the learning rate (a line per adapter, the best over the other searched values at
    each rate) and, where searched, against the size (r, bottleneck size, virtual tokens: the best over rates)."""
    from matplotlib import ticker

    from pipeline_lib.report.formats import MARKERS, OKABE_ITO, pyplot, save_figure

    plt = pyplot()
    keys = [k for k in SIZE_KEYS if any(k in t["values"] for s in selections.values() for t in s["trials"])]
    panels = ["learning_rate", *keys]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    metric = next(iter(selections.values()))["metric"] if selections else "accuracy"
    for ax, key in zip(axes[0], panels):
        searched: set = set()
        for i, ((model, adapter, _), s) in enumerate(selections.items()):
            best: dict = {}
            for t in s["trials"]:
                if t.get("failed") or key not in t["values"]:
                    continue
                value = 100 * t["accuracy"] if metric == "accuracy" else t["loss"]
                x = t["values"][key]
                better = max if metric == "accuracy" else min
                best[x] = value if x not in best else better(best[x], value)
            if best:
                xs = sorted(best)
                searched |= set(xs)
                label = adapter if len({k[0] for k in selections}) == 1 else f"{model} / {adapter}"
                ax.plot(xs, [best[x] for x in xs], marker=MARKERS[i % 8], color=OKABE_ITO[i % 8], label=label)
                chosen = s["chosen"]["values"].get(key)
                if chosen in best:
                    ax.scatter([chosen], [best[chosen]], s=90, facecolors="none", edgecolors="black", zorder=3)
        ax.set_xscale("log")
        # ticks at the searched values, as plain numbers (1e-4, 16, 64 rather than 6x10^0)
        ax.xaxis.set_major_locator(ticker.FixedLocator(sorted(searched)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        ax.set_xlabel(key.replace("_", " "))
        ax.set_ylabel("validation accuracy (%)" if metric == "accuracy" else "validation loss")
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].legend(frameon=False, fontsize=8)
    fig.suptitle("Sensitivity: validation score of each trial (best over the other searched values; circled: "
                 "chosen)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, stem)
