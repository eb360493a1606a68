"""What tuning shows (config `tuning:`): every trial's validation score and the setting chosen per adapter with the
budget it cost (`tuning`), each adapter's configured setting against its tuned one on the test sets, paired
(`tuned_vs_default`), whether the adapters' ranking survives tuning (`rank_stability`: Kendall's tau and the pairs
that swap), and the validation score against the learning rate and the size (the `sensitivity` figure)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from pipeline_lib.evaluation import stats
from pipeline_lib.report import comparisons

SIZE_KEYS = ("r", "bottleneck_size", "num_virtual_tokens")


def _label(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def tuning_table(selections: dict[tuple, dict]) -> pd.DataFrame:
    """A row per trial: its values, its validation accuracy and loss, the group of trials it cannot be told apart
    from (trial_groups), its optimizer steps, training tokens and checkpoint rule, whether it was chosen (and whether
    the choice sits at an end of a searched axis, or is not told apart from other trials), ties and failures."""
    rows = []
    for (model, adapter, train), s in selections.items():
        groups = trial_groups(s)
        for t in s["trials"]:
            chosen = t["trial"] == s["chosen"]["trial"]
            note = t["failed"] or ("tie, broken by " + s["tie_break"] if t["trial"] in s["ties"] and s["tie_break"]
                                   else "chosen" + (f" (tie broken by {s['tie_break']})" if s["ties"] and
                                                    s["tie_break"] else "") if chosen else "")
            if chosen and s.get("edges"):
                note += "; " + edge_words(s["edges"])
            if chosen and groups:
                alike = [u for u in groups if u != t["trial"] and set(groups[u]) & set(groups[t["trial"]])]
                if alike:
                    note += f"; not told apart from {len(alike)} other trial{'s' * (len(alike) > 1)} on validation"
            accuracy = t.get("accuracy")
            rows.append({"model": model, "adapter": adapter, "train_set": train, "trial": _label(t["values"]),
                         "validation accuracy (%)": None if accuracy is None else round(100 * accuracy, 1),
                         "validation loss": None if t.get("loss") is None else round(t["loss"], 4),
                         "group": groups.get(t["trial"], ""),
                         "steps": t.get("steps"), "training tokens": t.get("tokens"),
                         "checkpoint": t.get("checkpoint"), "chosen": "✓" if chosen else "", "note": note})
    return pd.DataFrame(rows, columns=["model", "adapter", "train_set", "trial", "validation accuracy (%)",
                                       "validation loss", "group", "steps", "training tokens", "checkpoint", "chosen",
                                       "note"])


def trial_groups(selection: dict) -> dict[str, str]:
    """Trial -> its letters: trials sharing a letter cannot be told apart on the validation items (the declared paired
    test of report/comparisons.py on each item's outcome, correctness or loss by the selection's metric, paired by
    item id, Holm over every pair of the adapter's trials); 'a' is the best trial's group. Empty where fewer than
    two trials kept per-item outcomes."""
    kept = {t["trial"]: t["items"] for t in selection["trials"] if not t.get("failed") and t.get("items")}
    if len(kept) < 2:
        return {}
    ids = sorted(set.intersection(*(set(i["ids"]) for i in kept.values())))
    if not ids:
        return {}
    sign = 1.0 if selection["metric"] == "accuracy" else -1.0  # lower loss is better: compare its negative
    rows = {}
    for trial, items in kept.items():
        where = dict(zip(items["ids"], items["values"]))
        rows[trial] = [(sign * np.array([[where[i] for i in ids]]), 1.0 / len(ids))]
    pairs = comparisons.compare_block(rows)
    order = sorted(rows, key=lambda t: -float(np.mean(rows[t][0][0])))
    return comparisons.letters(order, {frozenset((p["A"], p["B"])) for p in pairs if p["separable"]}, order)


def edge_words(edges: dict[str, str]) -> str:
    return "at the edge of its space: " + ", ".join(f"the {end} {key} tried" for key, end in edges.items()) + \
        " (the optimum may lie outside)"


def tuning_notes(selections: dict[tuple, dict]) -> list[str]:
    """The budget each adapter spent (the same number of trials for every one), choices at an edge of their space,
    and whether the adapters' trials differ in optimizer steps, training tokens or checkpoint rule."""
    lines = []
    for (model, adapter, train), s in selections.items():
        b = s["budget"]
        memory = f", peak RSS {b['peak_rss_mb']:,.0f} MB" if b.get("peak_rss_mb") else ""
        memory += f", peak CUDA {b['peak_cuda_mb']:,.0f} MB" if b.get("peak_cuda_mb") else ""
        failed = f" ({b['failed']} failed)" if b["failed"] else ""
        steps = f"{b['steps']:,} optimizer steps, " if b.get("steps") else ""
        lines.append(f"{model} / {adapter} / {train}: {b['trials']} trials{failed}, {steps}{b['tokens']:,} training "
                     f"tokens, {b['wall_time_s']:,.0f} s{memory}; chosen {_label(s['chosen']['values'])} by "
                     f"validation {s['metric']}" + (f", {edge_words(s['edges'])}" if s.get("edges") else "") + ".")
    return ["Group: trials of one adapter sharing a letter cannot be told apart on the validation items (a paired "
            "sign-flip test by item on each item's correctness, or its loss where the metric is loss; exact McNemar "
            "for accuracy; Holm-adjusted over every pair of the adapter's trials, 0.05); 'a' holds the best trial. "
            "A chosen trial that shares a letter with others was chosen among settings the validation set cannot "
            "separate.",
            "Budget per adapter (every adapter gets the same number of trials; the choice reads validation scores "
            "only):", *lines, *budget_differences(selections)]


def budget_differences(selections: dict[tuple, dict]) -> list[str]:
    """What an equal number of trials does not equalize: the adapters' optimizer steps, training tokens and
    checkpoint rules, where they differ (a line each; none where they agree)."""
    found = []
    by_group: dict[tuple, dict[str, dict]] = {}
    for (model, adapter, train), s in selections.items():
        by_group.setdefault((model, train), {})[adapter] = s["budget"]
    for (model, train), budgets in by_group.items():
        for key, words in (("steps", "optimizer steps"), ("tokens", "training tokens")):
            values = {a: b.get(key) for a, b in budgets.items() if b.get(key) is not None}
            if len(set(values.values())) > 1:
                found.append(f"{model} / {train}: the adapters' trials differ in {words} ("
                             + ", ".join(f"{a} {v:,}" for a, v in values.items()) + "): equal trials are not equal "
                             "training.")
        rules = {a: ", ".join(b.get("checkpoint") or []) for a, b in budgets.items() if b.get("checkpoint")}
        if len(set(rules.values())) > 1:
            found.append(f"{model} / {train}: the adapters keep different checkpoints ("
                         + "; ".join(f"{a}: {r}" for a, r in rules.items()) + ").")
    return found


def edge_warnings(selections: dict[tuple, dict]) -> list[str]:
    """One warning per choice at an edge of its searched space (printed at the end of the run)."""
    return [f"tuning: {model} / {adapter} / {train} chose {_label(s['chosen']['values'])}, "
            f"{edge_words(s['edges'])}: widen its space (config tuning.space) and re-run"
            for (model, adapter, train), s in selections.items() if s.get("edges")]


def _pairs(found: dict[tuple, dict], tuned: dict[str, str], datasets: list[str]) -> dict[tuple, dict]:
    """(model, adapter, train, protocol) -> {dataset: (default outcomes, tuned outcomes)} for every tuned adapter,
    each seeds x items on the items both share (paired by id), datasets in the run's order."""
    pairs: dict[tuple, dict] = {}
    for (model, adapter, train, protocol, dataset), cell in found.items():
        if adapter in tuned:
            default = found.get((model, tuned[adapter], train, protocol, dataset))
            if default is not None:
                ids = sorted(set(default["ids"]) & set(cell["ids"]))
                pairs.setdefault((model, tuned[adapter], train, protocol), {})[dataset] = tuple(
                    _by_ids(c, ids) for c in (default, cell))
    return {k: {d: v[d] for d in datasets if d in v} for k, v in pairs.items()}


def _by_ids(cell: dict, ids: list[str]) -> np.ndarray:
    where = {i: k for k, i in enumerate(cell["ids"])}
    return np.asarray(cell["reported"])[:, [where[i] for i in ids]]


def _average_parts(by_set: dict, which: int) -> list[tuple[np.ndarray, float]]:
    return [(v[which], 1.0 / (len(by_set) * v[which].shape[1])) for v in by_set.values()]


def tuned_vs_default(found: dict[tuple, dict], tuned: dict[str, str], datasets: list[str]) -> pd.DataFrame:
    """Per adapter and evaluation set (and on their average): the configured setting's test accuracy and the tuned
    one's, each with its 95% interval over seeds and items, tuned - default with the declared paired test's p
    (report/comparisons.py), Holm-adjusted over every row of the table of one model, training set and protocol, and
    the hierarchical bootstrap's interval as the secondary check."""
    rows = []
    for (model, adapter, train, protocol), by_set in _pairs(found, tuned, datasets).items():
        for dataset in [*by_set, "average"] if len(by_set) > 1 else list(by_set):
            if dataset == "average":
                a, b = (_average_parts(by_set, k) for k in (0, 1))
            else:
                a, b = [(by_set[dataset][0], 1.0 / by_set[dataset][0].shape[1])], \
                    [(by_set[dataset][1], 1.0 / by_set[dataset][1].shape[1])]
            pair = comparisons.compare_block({"tuned": b, "default": a})[0]
            da, db = (np.concatenate([o for o, _ in parts], axis=1) for parts in (a, b))
            c = stats.seed_paired_comparison(db, da)
            ia = stats.seeds_interval([o for o, _ in a])
            ib = stats.seeds_interval([o for o, _ in b])
            rows.append({"model": model, "adapter": adapter, "train_set": train, "protocol": protocol,
                         "dataset": dataset, "n": da.shape[1],
                         "default (%)": f"{100 * ia[0]:.1f} [{100 * ia[1]:.1f}, {100 * ia[2]:.1f}]",
                         "tuned (%)": f"{100 * ib[0]:.1f} [{100 * ib[1]:.1f}, {100 * ib[2]:.1f}]",
                         "tuned - default (points)": round(100 * pair["difference"], 1), "p": pair["p"],
                         "95% CI (seeds and items)": f"[{100 * c['ci95'][0]:.1f}, {100 * c['ci95'][1]:.1f}]"})
    frame = pd.DataFrame(rows, columns=[*TUNED_COLUMNS[:-3], "95% CI (seeds and items)"])
    adjusted = pd.Series(index=frame.index, dtype=float)
    for _, family in frame.groupby(["model", "train_set", "protocol"], sort=False):
        adjusted[family.index] = comparisons.holm(list(family.p))
    frame["p (Holm)"] = adjusted.round(4)
    frame["told apart"] = ["yes" if p < comparisons.ALPHA else "no" for p in adjusted]
    frame["p"] = frame.p.round(4)
    return frame[TUNED_COLUMNS]


TUNED_COLUMNS = ["model", "adapter", "train_set", "protocol", "dataset", "n", "default (%)", "tuned (%)",
                 "tuned - default (points)", "p", "p (Holm)", "told apart", "95% CI (seeds and items)"]
TUNED_NOTE = ("p: the declared paired test (report/comparisons.py: a sign-flip permutation test by item, the exact "
              "McNemar test with one seed); p (Holm): adjusted over every row of the table of one model, training "
              "set and protocol; told apart: p (Holm) < 0.05. The interval is the secondary check, a bootstrap over "
              "the seeds and the items.")
BOOT = 2000


def rank_stability(found: dict[tuple, dict], tuned: dict[str, str], datasets: list[str]) -> pd.DataFrame:
    """Per (model, training set, protocol): the adapters ranked by their average test accuracy under their configured
    settings and under tuning; Kendall's tau between the two with a 95% bootstrap interval (items resampled within
    each set, the same draw for every adapter and both settings; seeds too where rows have several); and the pairs
    whose order changed, split into those told apart (Holm, the declared test on the average) under both settings
    and those whose order under one of them is noise."""
    from scipy.stats import kendalltau

    groups: dict[tuple, dict[str, dict]] = {}
    for (model, adapter, train, protocol), by_set in _pairs(found, tuned, datasets).items():
        groups.setdefault((model, train, protocol), {})[adapter] = by_set
    rows = []
    for (model, train, protocol), adapters in groups.items():
        shared = set.intersection(*(set(b) for b in adapters.values()))
        names = sorted(adapters)
        parts = {a: {d: adapters[a][d] for d in datasets if d in shared} for a in names}
        means = {a: tuple(float(np.mean([v[k].mean() for v in parts[a].values()])) for k in (0, 1)) for a in names}
        separable = [_separable({a: _average_parts(parts[a], k) for a in names}) for k in (0, 1)]
        changed = [(a, b) for a, b in itertools.combinations(names, 2)
                   if np.sign(means[a][0] - means[b][0]) * np.sign(means[a][1] - means[b][1]) < 0]
        real = [p for p in changed if all(frozenset(p) in s for s in separable)]
        tau, low, high = _tau_interval(parts, names) if len(names) > 2 else (float("nan"),) * 3
        if len(names) == 2:
            tau = float(kendalltau(*zip(*(means[a] for a in names))).statistic)
        rows.append({"model": model, "train_set": train, "protocol": protocol, "adapters": len(names),
                     "ranking, default": " > ".join(sorted(names, key=lambda a: -means[a][0])),
                     "ranking, tuned": " > ".join(sorted(names, key=lambda a: -means[a][1])),
                     "Kendall's tau": None if tau != tau else round(tau, 3),
                     "tau 95% CI": None if low != low else f"[{low:.2f}, {high:.2f}]",
                     "swapped, told apart under both": "; ".join(f"{a} / {b}" for a, b in real) or "none",
                     "order changed within noise": "; ".join(f"{a} / {b}" for a, b in changed if (a, b) not in real)
                     or "none",
                     "finding": _rank_finding(tau, low, high, real, changed)})
    return pd.DataFrame(rows, columns=RANK_COLUMNS)


RANK_COLUMNS = ["model", "train_set", "protocol", "adapters", "ranking, default", "ranking, tuned", "Kendall's tau",
                "tau 95% CI", "swapped, told apart under both", "order changed within noise", "finding"]


def _separable(rows: dict[str, list]) -> set[frozenset]:
    return {frozenset((p["A"], p["B"])) for p in comparisons.compare_block(rows) if p["separable"]}


def _tau_interval(parts: dict[str, dict], names: list[str], seed: int = 0) -> tuple[float, float, float]:
    """Kendall's tau between the default and the tuned ranking, and its 95% percentile interval over BOOT
    replicates that redraw each set's items (shared by all rows) and each row's seeds."""
    from scipy.stats import kendalltau

    rng = np.random.default_rng(seed)
    sets = list(next(iter(parts.values())))

    def tau_of(default, tuned):
        value = kendalltau(default, tuned).statistic
        return 0.0 if value != value else float(value)  # a constant ranking (all tied) carries no order
    point = tau_of(*zip(*([np.mean([parts[a][d][k].mean() for d in sets]) for k in (0, 1)] for a in names)))
    taus = []
    for _ in range(BOOT):
        items = {d: rng.integers(0, parts[names[0]][d][0].shape[1], parts[names[0]][d][0].shape[1]) for d in sets}
        scores = [[], []]
        for a in names:
            for k in (0, 1):
                seeds = rng.integers(0, parts[a][sets[0]][k].shape[0], parts[a][sets[0]][k].shape[0])
                scores[k].append(np.mean([parts[a][d][k][seeds][:, items[d]].mean() for d in sets]))
        taus.append(tau_of(*scores))
    return point, float(np.quantile(taus, 0.025)), float(np.quantile(taus, 0.975))


def _rank_finding(tau, low, high, real, changed) -> str:
    if tau != tau:
        return "too few adapters for a ranking"
    interval = "" if low != low else f" (95% CI {low:.2f} to {high:.2f})"
    if real:
        return (f"tuning changed the ranking: {len(real)} pair(s) told apart under both settings in opposite "
                f"order; tau {tau:.2f}{interval}")
    if changed:
        return (f"no swap is significant: the {len(changed)} pair(s) whose order changed are within noise under at "
                f"least one setting; tau {tau:.2f}{interval}")
    return f"the same order under both settings; tau {tau:.2f}{interval}"


RANK_NOTE = ("Rankings by average test accuracy over the evaluation sets (ties keep the adapters' name order); "
             "Kendall's tau between the configured and the tuned ranking (1: the same order, -1: reversed) with a "
             "95% bootstrap interval (items within each set, and seeds, redrawn; with 4 adapters even tau = 1 has "
             "p = 0.08 by itself). A pair counts as swapped only where the declared paired test, Holm-adjusted over "
             "the adapters' pairs, tells the two apart under both settings, in opposite order; every other change "
             "of order is listed as within noise.")


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
                    if key in (s.get("edges") or {}):  # at the end of the axis: the optimum may lie beyond
                        ax.annotate("edge", (chosen, best[chosen]), textcoords="offset points", xytext=(0, 8),
                                    ha="center", fontsize=8, color="#D55E00")
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
                 "chosen; 'edge': chosen at an end of its searched values)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, stem)
