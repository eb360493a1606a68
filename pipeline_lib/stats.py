"""Uncertainty of accuracies: standard error and Wilson interval per score, and paired comparisons of two
runs on the same items (exact McNemar test, paired bootstrap interval of the accuracy difference)."""
from __future__ import annotations

import math

import numpy as np


def accuracy_summary(correct: list[bool], confidence: float = 0.95) -> dict:
    """n, accuracy, its standard error and Wilson interval."""
    from statsmodels.stats.proportion import proportion_confint

    n, k = len(correct), int(sum(correct))
    if n == 0:
        return {"n": 0, "correct": 0, "accuracy": float("nan"), "stderr": float("nan"), "ci95": [float("nan")] * 2}
    p = k / n
    low, high = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    return {"n": n, "correct": k, "accuracy": p, "stderr": math.sqrt(p * (1 - p) / n), "ci95": [low, high]}


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
