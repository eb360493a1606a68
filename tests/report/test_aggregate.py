"""Runs -> cells: means over seeds, intervals over seeds and items, per-seed values, the detectable difference."""
import numpy as np
import pytest

from pipeline_lib.planning import paths
from pipeline_lib.report import aggregate, tables
from pipeline_lib.runtime.files import write_json, write_jsonl


@pytest.fixture()
def runs(tmp_path, monkeypatch):
    """lora with three seeds and the base model, on two sets of 40 items, as score and prediction files."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    scores, predictions = [], []
    for adapter, train, seeds, rate in (("base", "none", [None], 0.2), ("lora", "t", [1, 2, 3], 0.5)):
        for seed in seeds:
            run = adapter if seed is None else f"{adapter}-seed{seed}"
            for dataset in ("gsm8k", "AQuA"):
                correct = rng.random(40) < rate + (0.1 * (seed - 2) if seed else 0)
                predictions.append(paths.predictions("m", run, train, "generate", dataset))
                write_jsonl(predictions[-1],
                            [{"id": f"{dataset}-{i}", "correct": bool(c), "rules": {"paper": bool(c)}}
                             for i, c in enumerate(correct)])
                score = paths.score("m", run, train, "generate", dataset)
                write_json(score, {"model": "m", "adapter": adapter, "train_set": train, "protocol": "generate",
                                   "dataset": dataset,
                                   "seed": seed, "run": run, "accuracy": float(correct.mean()), "n": 40,
                                   "rules": {"paper": float(correct.mean())}})
                scores.append(score)
    return tables.collect(scores, {"gsm8k": "paper", "AQuA": "paper"}, predictions)


def test_cells_average_the_seeds_and_widen_the_interval(runs):
    found = aggregate.outcomes(runs)
    cells = aggregate.cells(runs, found).set_index(["adapter", "dataset"])
    lora = cells.loc[("lora", "gsm8k")]
    per_seed = runs[(runs.adapter == "lora") & (runs.dataset == "gsm8k")].accuracy
    assert lora.seeds == 3 and lora.accuracy == pytest.approx(per_seed.mean())
    assert lora.seed_sd == pytest.approx(per_seed.std(ddof=1)) and lora.ci_low < lora.accuracy / 100 < lora.ci_high
    base = cells.loc[("base", "gsm8k")]
    assert base.seeds == 1 and np.isnan(base.seed_sd)
    assert found[("m", "lora", "t", "generate", "gsm8k")]["reported"].shape == (3, 40)


def test_per_seed_values_and_the_average_interval(runs):
    table = aggregate.per_seed(runs, ["gsm8k", "AQuA"])
    lora = table[table.adapter == "lora"]
    assert list(lora.seed) == ["1", "2", "3"] and list(table[table.adapter == "base"].seed) == [""] and list(table.columns[-3:]) == ["gsm8k", "AQuA", "average"]
    averages = aggregate.averages(aggregate.outcomes(runs), ["gsm8k", "AQuA"])
    mean, low, high = averages[("m", "lora", "t", "generate")]
    assert low < mean < high and mean == pytest.approx(lora[["gsm8k", "AQuA"]].to_numpy().mean() / 100, abs=1e-9)


def test_the_detectable_difference_is_stated_under_the_tables(runs):
    cells = aggregate.cells(runs, aggregate.outcomes(runs))
    line = aggregate.detectable(cells)
    assert "n = 40 items" in line and "3 seeds (seed SD" in line and "average over 2 sets" in line
    one_seed = aggregate.detectable(cells[cells.adapter == "base"])
    assert "1 seed (the seeds' own variance unknown" in one_seed
    cell_text = tables.accuracy_cells(cells, ["gsm8k", "AQuA"], {}, aggregate.averages(aggregate.outcomes(runs),
                                                                                          ["gsm8k", "AQuA"]))
    assert cell_text.set_index("adapter").loc["lora", "seeds"] == 3
    assert cell_text.set_index("adapter").loc["lora", "average"].count("[") == 1
    assert list(cell_text.columns) == ["model", "adapter", "train_set", "protocol", "gsm8k", "AQuA", "average",
                                       "seeds"]
