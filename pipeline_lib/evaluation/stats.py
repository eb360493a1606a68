"""Uncertainty of accuracies: standard error and Wilson interval per score, and paired comparisons of two
runs on the same items (exact McNemar test, paired bootstrap interval of the accuracy difference)."""
from __future__ import annotations

import math

import numpy as np


def wilson_interval(count: float, nobs: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson's score interval (coverage 1 - alpha) of `count` successes in `nobs` trials: statsmodels'
    `proportion_confint(count, nobs, alpha, method="wilson")` operation for operation (the same bits:
    tests/evaluation/test_stats.py), because importing statsmodels took each evaluation job about a second (a sixth
    of a small job); scipy.special's normal quantile is the one statsmodels calls."""
    from scipy.special import ndtri

    crit = -ndtri(alpha / 2.0)
    crit2 = crit**2
    q = count / nobs
    denom = 1 + crit2 / nobs
    center = (q + crit2 / (2 * nobs)) / denom
    dist = crit * math.sqrt(q * (1.0 - q) / nobs + crit2 / (4.0 * nobs**2)) / denom
    return float(min(max(center - dist, 0.0), 1.0)), float(min(max(center + dist, 0.0), 1.0))


def accuracy_summary(correct: list[bool], confidence: float = 0.95) -> dict:
    """n, accuracy, its standard error and Wilson interval."""
    n, k = len(correct), int(sum(correct))
    if n == 0:
        return {"n": 0, "correct": 0, "accuracy": float("nan"), "stderr": float("nan"), "ci95": [float("nan")] * 2}
    p = k / n
    return {"n": n, "correct": k, "accuracy": p, "stderr": math.sqrt(p * (1 - p) / n),
            "ci95": list(wilson_interval(k, n, 1 - confidence))}


def paired_comparison(a: dict[str, bool], b: dict[str, bool], n_boot: int = 10000, seed: int = 0) -> dict:
    """Compare runs A and B on the items both scored (keyed by item id)."""
    from scipy.stats import binomtest

    ids = sorted(set(a) & set(b))
    if not ids:
        raise ValueError("the two runs share no items")
    x = np.array([a[i] for i in ids], dtype=float)
    y = np.array([b[i] for i in ids], dtype=float)
    only_a, only_b = int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())
    p_value = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ids), size=(n_boot, len(ids)))
    diffs = (x[idx] - y[idx]).mean(axis=1)
    return {"n": len(ids), "accuracy_a": x.mean(), "accuracy_b": y.mean(), "difference": x.mean() - y.mean(),
            "only_a_correct": only_a, "only_b_correct": only_b, "mcnemar_exact_p": float(p_value),
            "bootstrap_ci95": [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))]}


# -- seeds and items together --------------------------------------------------------------------------------------
# A fine-tune's randomness (initial weights, data order, dropout) is a second source of variance beside the choice
# of test items. Accuracies over several seeds are summarised with a two-stage (hierarchical) bootstrap (Davison &
# Hinkley 1997, sec. 3.8; Saravanan et al. 2020, "Application of the hierarchical bootstrap to multi-level data in
# neuroscience"): each replicate draws the seeds with replacement, then the items with replacement, and averages.
# Every seed of a run is evaluated on the same items, so one item draw serves all seeds (and, in a comparison, both
# adapters: a paired design); one seed draw serves every dataset of a row (one fine-tune is evaluated on all).


def bootstrap_means(per_dataset: list[np.ndarray], n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """Replicates of a row's mean accuracy over its datasets; each array is seeds x items of 0/1 outcomes (the
    same seeds, in the same order, for every dataset)."""
    rng = np.random.default_rng(seed)
    k = per_dataset[0].shape[0]
    seeds = rng.integers(0, k, size=(n_boot, k))
    total = np.zeros(n_boot)
    for outcomes in per_dataset:
        items = rng.integers(0, outcomes.shape[1], size=(n_boot, outcomes.shape[1]))
        total += outcomes[seeds[:, :, None], items[:, None, :]].mean(axis=(1, 2))
    return total / len(per_dataset)


def seeds_interval(per_dataset: list[np.ndarray], n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of a row's mean accuracy over its datasets, a 95% hierarchical-bootstrap interval."""
    mean = float(np.mean([o.mean() for o in per_dataset]))
    if all(np.all(o == per_dataset[0].flat[0]) for o in per_dataset):
        return (mean, *_boundary_interval(mean, [o.shape[1] for o in per_dataset]))
    replicates = bootstrap_means(per_dataset, n_boot, seed)
    return mean, float(np.quantile(replicates, 0.025)), float(np.quantile(replicates, 0.975))


def _boundary_interval(p: float, sizes: list[int]) -> tuple[float, float]:
    """Every outcome the same (all wrong or all right): the bootstrap has nothing to resample and would claim
    [p, p]. Wilson's interval instead, at the effective number of items of a mean of per-set proportions
    (K^2 / sum(1/n_k), the n giving that mean's binomial variance); seeds that agree add no width."""
    n = len(sizes) ** 2 / sum(1 / s for s in sizes)
    return wilson_interval(p * n, n)


def seed_paired_comparison(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """A - B on the same items (each seeds x items, 0/1; the seeds of A and B unrelated): the difference of mean
    accuracies, its 95% interval and a two-sided bootstrap p-value (twice the share of replicates on the far
    side of 0, ties at 0 counted half), resampling each adapter's seeds and the shared items; and the spread of
    each adapter's seeds."""
    rng = np.random.default_rng(seed)
    n = a.shape[1]
    items = rng.integers(0, n, size=(n_boot, n))
    seeds_a = rng.integers(0, a.shape[0], size=(n_boot, a.shape[0]))
    seeds_b = rng.integers(0, b.shape[0], size=(n_boot, b.shape[0]))
    diffs = (a[seeds_a[:, :, None], items[:, None, :]].mean(axis=(1, 2))
             - b[seeds_b[:, :, None], items[:, None, :]].mean(axis=(1, 2)))
    ties = 0.5 * float((diffs == 0).mean())  # mid-p: few items make many replicates exactly 0
    p = min(1.0, 2 * min(float((diffs < 0).mean()) + ties, float((diffs > 0).mean()) + ties))
    spread = [float(x.mean(axis=1).std(ddof=1)) if x.shape[0] > 1 else float("nan") for x in (a, b)]
    return {"n": n, "seeds": (a.shape[0], b.shape[0]), "difference": float(a.mean() - b.mean()),
            "ci95": [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))], "p": p,
            "seed_sd": spread}


def detectable_difference(n_items: int, n_seeds: int, accuracy: float, seed_sd: float | None = None,
                          alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference between two rows (fraction of items) a two-sided test at `alpha` detects with
    `power`, each row averaging `n_seeds` fine-tunes on `n_items` items (Cohen 1988, normal approximation;
    the items' binomial variance and the seeds' variance, unpaired, so conservative for paired items)."""
    from scipy.stats import norm

    variance = accuracy * (1 - accuracy) / (n_items * n_seeds) + (seed_sd or 0.0) ** 2 / n_seeds
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * np.sqrt(2 * variance))
