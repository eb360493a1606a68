"""Row against row (pipeline_lib/report/comparisons.py): the declared paired test against scipy's and statsmodels'
reference implementations on fixed data, Holm's correction against statsmodels', the compact letter display's
guarantee, and the blocks the rows are compared in."""
import itertools

import numpy as np
import pytest
from scipy.stats import binomtest, permutation_test
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from pipeline_lib.report import comparisons


@pytest.mark.parametrize("n, seed", [(10, 0), (25, 1), (25, 2), (60, 3), (400, 4)])
def test_one_seed_on_one_set_is_the_exact_mcnemar_test(n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n), (rng.random(n) < 0.3).astype(int)
    only_a, only_b = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    p = comparisons.sign_flip_test(a - b)
    assert p == pytest.approx(binomtest(only_a, only_a + only_b, 0.5).pvalue, rel=1e-12)
    table = [[int(((a == 1) & (b == 1)).sum()), only_a], [only_b, int(((a == 0) & (b == 0)).sum())]]
    assert p == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)


def _scipy_paired(d: np.ndarray, resamples) -> float:
    """scipy's paired permutation test of the mean difference (signs flipped within pairs)."""
    return permutation_test((d, np.zeros_like(d)), lambda x, y: np.mean(x - y), permutation_type="samples",
                            n_resamples=resamples, alternative="two-sided", random_state=0).pvalue


def test_averaged_outcomes_are_the_exact_paired_permutation_test():
    """Items averaged over three seeds (differences in thirds) on 14 items: exact enumeration, as scipy's."""
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 2, (3, 14)), rng.integers(0, 2, (3, 14))
    d = comparisons.item_means(a) - comparisons.item_means(b)
    assert comparisons.sign_flip_test(d) == pytest.approx(_scipy_paired(d, np.inf), abs=1e-12)


def test_many_differences_are_sampled_close_to_the_exact_p(monkeypatch):
    rng = np.random.default_rng(6)
    d = rng.integers(-3, 4, 18) / 3
    exact = comparisons.sign_flip_test(d)
    monkeypatch.setattr(comparisons, "EXACT_UP_TO", 8)  # the same data through the random assignments
    sampled = comparisons.sign_flip_test(d)
    assert exact == pytest.approx(_scipy_paired(d, np.inf), abs=1e-12)
    assert abs(sampled - exact) < 4 * np.sqrt(exact * (1 - exact) / comparisons.FLIPS) + 1e-4


def test_the_average_weights_each_set_equally():
    """On an average over a 4-item and a 2-item set, the statistic is the difference of the two sets' mean
    differences, halved; each assignment of signs is enumerated."""
    d = np.array([1, 1, 0, 0, 1, -1], dtype=float)
    w = np.array([1 / 8] * 4 + [1 / 4] * 2)
    observed = abs(np.sum(w * d))
    nonzero = np.flatnonzero(d)
    count = sum(abs(sum(s * w[i] * d[i] for s, i in zip(signs, nonzero))) >= observed - 1e-12
                for signs in itertools.product((-1, 1), repeat=len(nonzero)))
    assert comparisons.sign_flip_test(d, w) == pytest.approx(count / 2 ** len(nonzero))


def test_holm_is_statsmodels_holm():
    for p in ([0.01, 0.04, 0.03, 0.2], [0.001, 0.5, 0.5, 0.049, 0.0125, 1.0], [0.3], []):
        expected = multipletests(p, method="holm")[1].tolist() if p else []
        assert comparisons.holm(p) == pytest.approx(expected, abs=1e-15)


def test_letters_share_one_exactly_where_rows_are_not_told_apart():
    rng = np.random.default_rng(7)
    for trial in range(300):
        names = [f"r{i}" for i in range(rng.integers(2, 7))]
        separable = {frozenset(p) for p in itertools.combinations(names, 2) if rng.random() < 0.4}
        shown = comparisons.letters(names, separable, names)
        for a, b in itertools.combinations(names, 2):
            shares = bool(set(shown[a]) & set(shown[b]))
            assert shares == (frozenset((a, b)) not in separable), (names, separable, shown)
    assert comparisons.letters(["x", "y", "z"], set(), ["x", "y", "z"]) == {"x": "a", "y": "a", "z": "a"}
    assert comparisons.letters(["x", "y", "z"], {frozenset("xz")}, ["x", "y", "z"]) == {"x": "a", "y": "ab", "z": "b"}


def test_best_needs_every_pair_told_apart_in_its_favour():
    pairs = [{"A": "x", "B": "y", "difference": 0.3, "separable": True},
             {"A": "x", "B": "z", "difference": 0.2, "separable": True},
             {"A": "y", "B": "z", "difference": -0.1, "separable": False}]
    assert comparisons.best(pairs, ["x", "y", "z"]) == "x"
    pairs[1]["separable"] = False  # x is above z, but not told apart from it
    assert comparisons.best(pairs, ["x", "y", "z"]) is None


def test_blocks_pair_by_item_id_with_the_base_row_in_each_training_sets_block():
    ids = [f"q{i}" for i in range(6)]
    cell = lambda outcomes, order=ids: {"ids": list(order), "reported": np.array([outcomes], dtype=float)}  # noqa
    found = {("m", "lora", "t", "generate", "gsm8k"): cell([1, 1, 1, 0, 0, 0]),
             # the same outcomes listed in another item order: paired by id, not by position
             ("m", "series", "t", "generate", "gsm8k"): cell([0, 0, 0, 1, 1, 1], ids[::-1]),
             ("m", "other", "u", "generate", "gsm8k"): cell([1, 0, 1, 0, 1, 0]),
             ("m", "base", "none", "generate", "gsm8k"): cell([0, 0, 0, 0, 0, 0]),
             ("m", "lora", "t", "generate", "SVAMP"): cell([1, 1, 0, 0, 1, 1]),
             ("m", "series", "t", "generate", "SVAMP"): cell([1, 0, 0, 0, 0, 0]),
             ("m", "base", "none", "generate", "SVAMP"): cell([0, 0, 0, 0, 0, 1])}
    made = comparisons.blocks(found, ["gsm8k", "SVAMP"])
    assert set(made) == {("generate", "t", "gsm8k"), ("generate", "t", "SVAMP"), ("generate", "t", "average"),
                         ("generate", "u", "gsm8k")}
    assert set(made[("generate", "u", "gsm8k")]) == {("m", "other", "u"), ("m", "base", "none")}
    lora, series = (made[("generate", "t", "gsm8k")][("m", a, "t")][0][0][0] for a in ("lora", "series"))
    assert (lora == series).all()  # reversed listing, same items
    pairs = comparisons.compare_block({" / ".join(r): p for r, p in made[("generate", "t", "average")].items()})
    lora_base = next(p for p in pairs if {p["A"], p["B"]} == {"m / lora / t", "m / base / none"})
    sign = 1 if lora_base["A"] == "m / lora / t" else -1
    assert sign * lora_base["difference"] == pytest.approx(0.5 * (3 / 6) + 0.5 * (4 / 6 - 1 / 6))
    assert [p["p_holm"] for p in pairs] == pytest.approx(comparisons.holm([p["p"] for p in pairs]))
