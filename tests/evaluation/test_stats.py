import pytest

from pipeline_lib.evaluation.stats import accuracy_summary, paired_comparison


def test_wilson_interval_and_stderr():
    s = accuracy_summary([True] * 2 + [False] * 28)
    assert s["n"] == 30 and s["correct"] == 2 and s["accuracy"] == pytest.approx(2 / 30)
    assert s["ci95"] == pytest.approx([0.01848, 0.21324], abs=1e-4)  # Wilson, hand-checked
    assert s["stderr"] == pytest.approx(((2 / 30) * (28 / 30) / 30) ** 0.5)
    zero = accuracy_summary([False] * 10)
    assert zero["ci95"][0] == 0 and 0.25 < zero["ci95"][1] < 0.3  # not the degenerate Wald [0, 0]


def test_wilson_interval_is_statsmodels_bit_for_bit():
    """The hand-written interval (statsmodels' import costs each evaluation job about a second) gives statsmodels'
    own numbers, to the bit, over counts, sizes, levels and the non-integer sizes the seeds' interval uses."""
    from statsmodels.stats.proportion import proportion_confint

    from pipeline_lib.evaluation.stats import wilson_interval

    cases = [(k, n, alpha) for alpha in (0.05, 1 - 0.95, 0.1, 0.01) for n in [*range(1, 120), 1319, 10042]
             for k in range(0, n + 1, max(1, n // 40))]
    cases += [(p * n, n, 0.05) for n in (83.077, 12.5, 7.3) for p in (0.0, 0.3, 1.0)]
    for count, nobs, alpha in cases:
        expected = tuple(float(x) for x in proportion_confint(count, nobs, alpha=alpha, method="wilson"))
        assert wilson_interval(count, nobs, alpha) == expected, (count, nobs, alpha)


def test_scoring_an_evaluation_does_not_import_statsmodels():
    import subprocess
    import sys

    code = ("import sys; from pipeline_lib.evaluation.stats import accuracy_summary; accuracy_summary([True, False]); "
            "print('statsmodels' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_paired_comparison_counts_discordant_pairs():
    a = {f"i{k}": k < 12 for k in range(20)}   # A right on 12
    b = {f"i{k}": k < 4 for k in range(20)}    # B right on 4 of the same
    result = paired_comparison(a, b, n_boot=2000)
    assert (result["only_a_correct"], result["only_b_correct"]) == (8, 0)
    assert result["mcnemar_exact_p"] == pytest.approx(2 * 0.5 ** 8)
    assert result["difference"] == pytest.approx(0.4)
    low, high = result["bootstrap_ci95"]
    assert 0.1 < low < 0.4 < high < 0.65
    same = paired_comparison(a, a, n_boot=200)
    assert same["mcnemar_exact_p"] == 1.0 and same["bootstrap_ci95"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="share no items"):
        paired_comparison({"x": True}, {"y": True})


def test_hierarchical_interval_widens_with_the_seeds_spread():
    import numpy as np

    from pipeline_lib.evaluation.stats import seeds_interval

    rng = np.random.default_rng(1)
    items = rng.random(100)
    same = np.array([items < 0.5] * 3, dtype=float)
    spread = np.array([items < q for q in (0.3, 0.5, 0.7)], dtype=float)
    mean_same, low_same, high_same = seeds_interval([same])
    mean_spread, low_spread, high_spread = seeds_interval([spread])
    assert mean_same == pytest.approx(mean_spread, abs=0.02)
    assert high_spread - low_spread > 1.5 * (high_same - low_same)
    # identical seeds: the items' bootstrap, near the Wilson interval of the pooled proportion
    assert high_same - low_same == pytest.approx(2 * 1.96 * np.sqrt(0.25 / 100), rel=0.25)


@pytest.mark.parametrize("outcome", [0.0, 1.0])
def test_all_wrong_or_all_right_is_not_certainty(outcome):
    import numpy as np
    from statsmodels.stats.proportion import proportion_confint

    from pipeline_lib.evaluation.stats import seeds_interval

    wilson = proportion_confint(int(outcome * 30), 30, method="wilson")
    one_set = seeds_interval([np.full((3, 30), outcome)])  # three seeds, every item the same
    assert one_set == pytest.approx((outcome, *wilson))
    mean, low, high = seeds_interval([np.full((1, 30), outcome)] * 3)  # the average over three sets of 30
    assert mean == outcome and high - low > 0.01
    assert high - low == pytest.approx(proportion_confint(int(outcome * 90), 90, method="wilson")[1]
                                       - proportion_confint(int(outcome * 90), 90, method="wilson")[0])
    # unequal sets: the mean of three proportions has the variance of 3^2 / (1/30 + 1/20 + 1/40) = 83.1 items
    _, low, high = seeds_interval([np.full((1, n), outcome) for n in (30, 20, 40)])
    expected = proportion_confint(outcome * 83.077, 83.077, method="wilson")
    assert (low, high) == pytest.approx(expected, abs=1e-4)


def test_detectable_difference_matches_the_normal_formula():
    from pipeline_lib.evaluation.stats import detectable_difference

    # two proportions of 0.5 on 100 items each: (1.96 + 0.84) * sqrt(2 * 0.25 / 100) = 0.198
    assert detectable_difference(100, 1, 0.5) == pytest.approx(0.198, abs=0.002)
    assert detectable_difference(100, 4, 0.5) == pytest.approx(0.099, abs=0.002)  # 4 seeds: 4x the items
    assert detectable_difference(100, 4, 0.5, seed_sd=0.05) > detectable_difference(100, 4, 0.5)
