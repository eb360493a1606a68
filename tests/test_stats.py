import pytest

from pipeline_lib.stats import accuracy_summary, paired_comparison


def test_wilson_interval_and_stderr():
    s = accuracy_summary([True] * 2 + [False] * 28)
    assert s["n"] == 30 and s["correct"] == 2 and s["accuracy"] == pytest.approx(2 / 30)
    assert s["ci95"] == pytest.approx([0.01848, 0.21324], abs=1e-4)  # Wilson, hand-checked
    assert s["stderr"] == pytest.approx(((2 / 30) * (28 / 30) / 30) ** 0.5)
    zero = accuracy_summary([False] * 10)
    assert zero["ci95"][0] == 0 and 0.25 < zero["ci95"][1] < 0.3  # not the degenerate Wald [0, 0]


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
