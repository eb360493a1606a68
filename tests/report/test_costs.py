"""The costs frame (report/costs.py) every cost view reads, its Pareto front, and the explorer's data
(report/explorer.py)."""
import json

import pandas as pd
import pytest

from pipeline_lib.report import costs, explorer, pareto


def _runs():
    rows = []
    for adapter, train, acc in (("base", "none", (20.0, 60.0)), ("lora", "math", (40.0, 50.0)),
                                ("series", "math", (30.0, 64.0))):
        for dataset, a in zip(("gsm8k", "boolq"), acc):
            rows.append({"model": "m", "adapter": adapter, "train_set": train, "protocol": "generate",
                         "dataset": dataset, "accuracy": a, "wall_time_s": 5.0, "n": 10})
    return pd.DataFrame(rows)


METRICS = {("m", "lora", "math", None): {"trainable_params": 1000, "adapter_file_bytes": 2 ** 20, "wall_time_s": 30.0,
                                         "peak_rss_mb": 900.0, "peak_cuda_mb": None,
                                         "provenance": {"model": {"commit": "abc123def4567890"}}},
           ("m", "series", "math", None): {"trainable_params": 5000, "adapter_file_bytes": 2 ** 21,
                                           "wall_time_s": 20.0, "peak_rss_mb": 950.0,
                                           "cuda_memory": {"reserved_avg_mb": 10.0, "reserved_p99_mb": 12.0}}}
FORGOT = {("m", "lora", "math", None): {"forgetting": 0.25}, ("m", "series", "math", None): {"forgetting": 0.5}}
MERGED = {("m", "lora", "math", None): {"mergeable": True, "merged": {"new_tokens_per_s": 4.0},
                                        "unmerged": {"new_tokens_per_s": 2.0},
                                        "agreement": {"same_response": 9, "different_response": 1}}}


def test_every_row_gets_its_costs_and_the_accuracy_change_outside_its_suite():
    frame = costs.row_costs(METRICS, _runs(), {}, FORGOT, MERGED, {"math": ["math"]},
                            {"gsm8k": "math", "boolq": "commonsense"}).set_index("adapter")
    lora, series, base = frame.loc["lora"], frame.loc["series"], frame.loc["base"]
    assert lora.accuracy == 45.0 and series.accuracy == 47.0 and base.accuracy == 40.0
    assert lora.adapter_mb == 1.0 and lora.train_s == 30.0 and lora.total_s == 30.0 + 10.0
    assert lora.out_of_suite_delta == pytest.approx(-10.0) and series.out_of_suite_delta == pytest.approx(4.0)
    assert lora.merge_agreement == "9/10" and lora.merged_tokens_per_s == 4.0 and pd.isna(series.merge_agreement)
    assert series.cuda_reserved_p99_mb == 12.0 and lora.forgetting == 0.25 and lora.provenance == "abc123def456"
    assert pd.isna(base.trainable_params)  # the base has no fine-tune to cost


def test_mfu_of_each_rows_training_and_generation():
    """Training MFU from the fine-tune's record; generation MFU over the row's generating evaluations together
    (FLOPs over seconds against the peak, a log-likelihood set without FLOPs left out); none where nothing says."""
    runs = _runs().assign(model_flops=[1e12, None, 2e12, 4e12, 3e12, 3e12], peak_flops_per_s=1e12)
    runs.loc[1, "wall_time_s"] = 99.0  # a set without FLOPs: its time is not the generation's
    trained = {**METRICS, ("m", "lora", "math", None): {**METRICS[("m", "lora", "math", None)],
                                                        "efficiency": {"mfu": 0.4321}}}
    frame = costs.row_costs(trained, runs, {}, FORGOT, MERGED, {"math": ["math"]},
                            {"gsm8k": "math", "boolq": "commonsense"}).set_index("adapter")
    assert frame.loc["base", "eval_mfu"] == pytest.approx(100 * 1e12 / 5.0 / 1e12)
    assert frame.loc["lora", "eval_mfu"] == pytest.approx(100 * 6e12 / 10.0 / 1e12)
    assert frame.loc["lora", "train_mfu"] == pytest.approx(43.21) and pd.isna(frame.loc["series", "train_mfu"])
    assert costs.row_costs(METRICS, _runs(), {}, FORGOT, MERGED, {}, {"gsm8k": "math", "boolq": "commonsense"}
                           ).eval_mfu.isna().all()  # no FLOPs recorded: no MFU


def test_the_front_keeps_exactly_the_rows_nothing_beats():
    frame = pd.DataFrame({"adapter": list("abcd"), "peak_rss_mb": [1.0, 2.0, 3.0, 2.5],
                          "accuracy": [10.0, 30.0, 40.0, 20.0]})
    assert list(costs.front(frame, "peak_rss_mb", "accuracy").adapter) == ["a", "b", "c"]  # d: b is cheaper, better
    frame["out_of_suite_delta"] = [1.0, -1.0, 0.0, 2.0]  # both higher-is-better
    assert set(costs.front(frame, "out_of_suite_delta", "accuracy").adapter) == {"c", "d"}


def test_the_explorer_page_embeds_every_cell_with_the_figures_colours(tmp_path):
    runs = _runs()
    frame = costs.row_costs(METRICS, runs, {}, FORGOT, MERGED, {"math": ["math"]},
                            {"gsm8k": "math", "boolq": "commonsense"})
    cells = runs.assign(ci_low=0.1, ci_high=0.5)
    page = explorer.write(cells, frame, "test run", tmp_path / "explorer.html").read_text()
    payload = json.loads(page.split('<script id="data" type="application/json">')[1].split("</script>")[0])
    assert len(payload["cells"]) == len(runs) and payload["colors"] == pareto.colours(runs.adapter)
    assert {m["key"] for m in payload["metrics"]} >= {"accuracy", "forgetting", "peak_rss_mb", "trainable_params"}
    assert "peak_cuda_mb" not in {m["key"] for m in payload["metrics"]}  # no row has it: not offered
    assert payload["cells"][0]["ci"] == "[10.0, 50.0]"


def test_forgetting_differences_are_paired_by_window_and_holm_adjusted():
    import numpy as np

    from pipeline_lib.report.costs import forgetting_differences

    rng = np.random.default_rng(0)
    disabled = rng.uniform(500, 900, 32)
    tokens = [255] * 32

    def record(shift, noise):
        enabled = disabled + 255 * (shift + rng.normal(0, noise, 32))
        return {"reference": {"sha256": "s"}, "scoring": "windows", "windows": 32, "sequence_length": 256,
                "per_window": {"disabled": list(disabled), "enabled": list(enabled), "tokens": tokens}}
    records = {("m", "lora", "t", None): record(0.07, 0.001), ("m", "series", "t", None): record(0.0711, 0.02),
               ("m", "parallel", "t", None): record(0.01, 0.001)}
    table = forgetting_differences(records).set_index(["A", "B"])
    assert table.loc[("lora/t", "series/t"), "told apart"] == "no"  # 0.0713 against 0.0711: noise
    assert table.loc[("lora/t", "parallel/t"), "told apart"] == "yes"
    assert table.loc[("lora/t", "parallel/t"), "A - B"] == pytest.approx(0.06, abs=2e-3)
    assert (table["p (Holm)"] >= table.p).all()
