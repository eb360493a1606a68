"""Row against row, as a reviewer reads a benchmark table: which rows of a column can be told apart.

The declared test. Two rows evaluated on the same items are compared by a **paired sign-flip permutation test on
the per-item differences**: each item's outcome is averaged over the row's seeds (0 or 1 with one seed), d_i = A_i -
B_i, and the statistic is the weighted mean difference T = sum_i w_i d_i (w_i = 1/n on one set; on a row's average
over K sets, 1/(K n_k) for an item of set k, so T is the difference of the averages). Under the null hypothesis that
the two rows are exchangeable on every item, each d_i is as likely to have either sign; the two-sided p is the share
of the 2^m sign assignments of the m non-zero differences with |T*| >= |T|: from the binomial distribution where
every non-zero |w_i d_i| is the same (one seed on one set), by enumeration where m <= EXACT_UP_TO, else from FLIPS
random assignments, counting the observed one (Phipson & Smyth 2010). Why this test: it is exact at any number of
items (the default run has 25 per set), it pairs by item id, it needs no normal approximation, and one
test serves a set, the average over sets and rows with seeds. With one seed per row on one set it *is* the exact
McNemar test (the sign test on the discordant items; tests/report/test_comparisons.py pins it to scipy's binomial
test). What it does not cover: a fine-tune's own randomness (the seeds are taken as they ran); where a run has
seeds, the hierarchical bootstrap interval over seeds and items (evaluation/stats.py) is reported beside it as the
secondary check.

Multiplicity: Holm's step-down correction over every pair of a block (the rows evaluated on the same items: one
protocol, one training set with the base model's row, one evaluation set or their average), at ALPHA familywise.

What a column shows: a compact letter display (Piepho 2004, insert-absorb): rows sharing a letter are not told apart
at ALPHA after Holm's correction; rows sharing none are. A row is marked best (bold) only where it is significantly
above every other row of its block."""
from __future__ import annotations

import itertools
import math
import string

import numpy as np
import pandas as pd

from pipeline_lib.evaluation import stats

ALPHA = 0.05
EXACT_UP_TO = 16       # non-zero differences enumerated exactly (2^16 assignments)
FLIPS = 20_000         # random sign assignments beyond that
SEED = 0               # the random assignments are seeded: a table renders the same twice


def item_means(outcomes: np.ndarray) -> np.ndarray:
    """A row's per-item outcome: seeds x items 0/1 -> each item's mean over the seeds."""
    return np.asarray(outcomes, dtype=float).reshape(-1, np.shape(outcomes)[-1]).mean(axis=0)


def sign_flip_test(differences: np.ndarray, weights: np.ndarray | None = None, seed: int = SEED) -> float:
    """Two-sided p of the weighted mean paired difference under random signs (the module's declared test)."""
    d = np.asarray(differences, dtype=float)
    w = np.full(d.shape, 1.0 / max(len(d), 1)) if weights is None else np.asarray(weights, dtype=float)
    keep = d != 0
    d, w = d[keep] * w[keep], None
    if d.size == 0:
        return 1.0
    observed = abs(d.sum())
    tolerance = 1e-12 * max(1.0, observed)
    magnitude = np.abs(d)
    if np.allclose(magnitude, magnitude[0], rtol=1e-12, atol=0):  # equal steps: the sign test, exactly
        m, plus = d.size, int(np.sum(d > 0))
        far = abs(2 * plus - m)
        return float(min(1.0, sum(math.comb(m, k) for k in range(m + 1) if abs(2 * k - m) >= far) / 2 ** m))
    if d.size <= EXACT_UP_TO:
        signs = 1 - 2 * ((np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1)
        return float(np.mean(np.abs(signs @ d) >= observed - tolerance))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, FLIPS, 5_000):  # in chunks: 5,000 x m signs at a time
        signs = rng.choice((-1.0, 1.0), size=(min(5_000, FLIPS - start), d.size))
        hits += int(np.sum(np.abs(signs @ d) >= observed - tolerance))
    return (hits + 1) / (FLIPS + 1)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1), in the order given."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]))
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out.tolist()


def compare_block(rows: dict[str, list[tuple[np.ndarray, float]]], alpha: float = ALPHA) -> list[dict]:
    """Every pair of a block's rows. `rows`: name -> its parts, each (seeds x items outcomes, weight per item);
    the parts of every row are the same sets, their items in the same order. Returns one record per pair with the
    difference of the weighted means (A - B, fraction), the raw and the Holm-adjusted p, and whether A and B are told
    apart at `alpha`."""
    means = {name: np.concatenate([item_means(o) for o, _ in parts]) for name, parts in rows.items()}
    weights = {name: np.concatenate([np.full(np.shape(o)[-1], w) for o, w in parts]) for name, parts in rows.items()}
    pairs = []
    for a, b in itertools.combinations(rows, 2):
        if means[a].shape != means[b].shape:
            raise ValueError(f"rows {a} and {b} were not evaluated on the same items")
        d = means[a] - means[b]
        pairs.append({"A": a, "B": b, "difference": float(np.sum(weights[a] * d)),
                      "p": sign_flip_test(d, weights[a])})
    for pair, adjusted in zip(pairs, holm([p["p"] for p in pairs])):
        pair["p_holm"] = adjusted
        pair["separable"] = adjusted < alpha
    return pairs


def letters(names: list[str], separable: set[frozenset], order: list[str] | None = None) -> dict[str, str]:
    """A compact letter display: rows sharing a letter are not told apart, rows told apart share none (Piepho 2004,
    insert-absorb). Letters follow `order` (best first): 'a' is the group of the first row."""
    groups = [set(names)]
    for pair in separable:
        i, j = tuple(pair)
        split = []
        for g in groups:
            if i in g and j in g:
                split += [g - {i}, g - {j}]
            else:
                split.append(g)
        groups = [g for g in split if g and not any(g < h for h in split)]  # absorb groups inside another
        groups = [g for k, g in enumerate(groups) if g not in groups[:k]]
    rank = {n: k for k, n in enumerate(order or names)}
    groups.sort(key=lambda g: sorted(rank[n] for n in g))
    alphabet = string.ascii_lowercase
    return {n: "".join(alphabet[k % 26] for k, g in enumerate(groups) if n in g) for n in names}


def best(pairs: list[dict], names: list[str]) -> str | None:
    """The row significantly above every other row of its block, if one is."""
    for name in names:
        beats = [p for p in pairs if name in (p["A"], p["B"])]
        if beats and all(p["separable"] and (p["difference"] > 0) == (p["A"] == name) for p in beats):
            return name
    return None


# --- the run's blocks: which rows are compared with which


AVERAGE = "average"


def _row_name(row: tuple) -> str:
    """model / adapter / training set, as the tables write a row."""
    return " / ".join(row)


def blocks(found: dict[tuple, dict], datasets: list[str], no_train_set: str = "none") -> dict[tuple, dict]:
    """(protocol, training set, evaluation set or AVERAGE) -> {row (model, adapter, training set): its parts, each
    (seeds x items outcomes, weight per item)}, every row's items those all rows of the block share (by id). A block
    holds the rows trained on its training set and each model's base row; the average weights each of the row's
    sets equally (1/(K n_k) per item), over the sets every row of the block has."""
    by_set: dict[tuple, dict[tuple, dict]] = {}
    for (model, adapter, train, protocol, dataset), cell in found.items():
        by_set.setdefault((protocol, dataset), {})[(model, adapter, train)] = cell
    trains = sorted({row[2] for cells in by_set.values() for row in cells if row[2] != no_train_set}) or [no_train_set]
    out: dict[tuple, dict] = {}
    for train in trains:
        for protocol in sorted({p for p, _ in by_set}):
            aligned = {}
            for dataset in [d for d in datasets if (protocol, d) in by_set]:
                cells = {row: c for row, c in by_set[(protocol, dataset)].items() if row[2] in (train, no_train_set)}
                if len(cells) < 2:
                    continue
                ids = sorted(set.intersection(*(set(c["ids"]) for c in cells.values())))
                if not ids:
                    continue
                aligned[dataset] = {row: _select(c, ids) for row, c in cells.items()}
                out[(protocol, train, dataset)] = {row: [(o, 1.0 / len(ids))] for row, o in aligned[dataset].items()}
            rows = set.intersection(*(set(a) for a in aligned.values())) if aligned else set()
            if len(aligned) > 1 and len(rows) > 1:
                out[(protocol, train, AVERAGE)] = {
                    row: [(a[row], 1.0 / (len(aligned) * a[row].shape[-1])) for a in aligned.values()]
                    for row in sorted(rows)}
    return out


def _select(cell: dict, ids: list[str]) -> np.ndarray:
    where = {i: k for k, i in enumerate(cell["ids"])}
    return np.asarray(cell["reported"])[:, [where[i] for i in ids]]


def compare_all(found: dict[tuple, dict], datasets: list[str]) -> dict[tuple, list[dict]]:
    """Every block's pairs (compare_block), Holm's correction within each block."""
    return {key: compare_block({_row_name(r): parts for r, parts in rows.items()})
            for key, rows in blocks(found, datasets).items()}


def marks(compared: dict[tuple, list[dict]], accuracy: dict[tuple, float]) -> dict[tuple, tuple[str, bool]]:
    """(protocol, training set, evaluation set or AVERAGE, row name) -> (its letters, whether it is the best of its
    block): the letters order rows by `accuracy` ((protocol, dataset, row name) -> mean, best first)."""
    out = {}
    for (protocol, train, dataset), pairs in compared.items():
        names = sorted({p[k] for p in pairs for k in ("A", "B")},
                       key=lambda n: -accuracy.get((protocol, dataset, n), 0.0))
        separable = {frozenset((p["A"], p["B"])) for p in pairs if p["separable"]}
        shown = letters(names, separable, names)
        top = best(pairs, names)
        out |= {(protocol, train, dataset, n): (shown[n], n == top) for n in names}
    return out


# --- the significance table: every pair of every block


SIGNIFICANCE_COLUMNS = ["protocol", "train_set", "dataset", "A", "B", "seeds", "n", "A - B (points)", "p",
                        "p (Holm)", "told apart", "95% CI (seeds and items)", "seed SD A/B (points)"]


def _protocol_order(protocol: str) -> int:
    from pipeline_lib.catalog import protocols

    return list(protocols.PROTOCOLS).index(protocol)


def significance_table(found: dict[tuple, dict], datasets: list[str]) -> pd.DataFrame:
    """Every pair of rows of every block (report/comparisons.py: one protocol, one training set with the base rows,
    one evaluation set or the average over them, on the items all share): A - B, the declared paired test's p (a
    sign-flip permutation test by item; exact McNemar with one seed), its Holm-adjusted p over the block and whether
    the pair is told apart at 0.05; as the secondary check, the hierarchical bootstrap's 95% interval of A - B over
    both rows' seeds and the items (it also covers the fine-tunes' randomness where there are seeds), and each
    row's seed SD."""
    rows = []
    for (protocol, train, dataset), members in sorted(blocks(found, datasets).items(),
                                                      key=lambda kv: (_protocol_order(kv[0][0]), kv[0][1:])):
        named = {" / ".join(r): parts for r, parts in members.items()}
        for pair in compare_block(named):
            a, b = (np.concatenate([o for o, _ in named[pair[k]]], axis=1) for k in ("A", "B"))
            c = stats.seed_paired_comparison(a, b)
            rows.append({"protocol": protocol, "train_set": train, "dataset": dataset, "A": pair["A"],
                         "B": pair["B"], "seeds": f"{a.shape[0]}/{b.shape[0]}", "n": a.shape[1],
                         "A - B (points)": round(100 * pair["difference"], 1), "p": round(pair["p"], 4),
                         "p (Holm)": round(pair["p_holm"], 4), "told apart": "yes" if pair["separable"] else "no",
                         "95% CI (seeds and items)": f"[{100 * c['ci95'][0]:.1f}, {100 * c['ci95'][1]:.1f}]",
                         "seed SD A/B (points)": "/".join("" if s != s else f"{100 * s:.1f}" for s in c["seed_sd"])})
    return pd.DataFrame(rows, columns=SIGNIFICANCE_COLUMNS)


SIGNIFICANCE_NOTES = [
    "p: the declared test, a paired sign-flip permutation test on the per-item differences (each item's outcome "
    "averaged over a row's seeds; on one set with one seed per row, the exact McNemar test); on the average, the "
    "items of each set weighted so that the statistic is the difference of the averages. p (Holm): adjusted over "
    "every pair of the block (one protocol, one training set with the base rows, one evaluation set or the "
    "average). Told apart: p (Holm) < 0.05. The 95% CI is the secondary check: a hierarchical bootstrap over both "
    "rows' seeds and the shared items (the only part of this table that covers a fine-tune's own randomness)."]
