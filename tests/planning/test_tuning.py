"""Tuning, planned (pipeline_lib/planning/tuning.py) and chosen (pipeline_lib/evaluation/selection.py): the same
budget for every adapter, trials named by their values (a grown budget or space keeps the earlier ones), every bad
space refused before any job naming the key, and the choice made from validation scores alone, ties and failures
reported."""

import pytest

from helpers import filled_config
from pipeline_lib.evaluation.selection import SelectionError, choose
from pipeline_lib.planning import tuning
from pipeline_lib.planning.plan import ConfigError, prepare

SPACE = {"all": {"learning_rate": [1e-4, 3e-4, 1e-3]}, "lora": {"r": [8, 32]}, "bottleneck": {"bottleneck_size": [32, 64]}}


def test_every_adapter_gets_the_budget_from_its_own_space():
    plan = prepare(filled_config(tuning={"budget": 4, "space": SPACE}))
    by_adapter = {a: [t.values for t in plan.tuning.trials_of(a)] for a in ("lora", "series", "parallel")}
    assert {a: len(v) for a, v in by_adapter.items()} == {"lora": 4, "series": 4, "parallel": 4}
    assert all(set(v) == {"learning_rate", "r"} for v in by_adapter["lora"])
    assert all(set(v) == {"learning_rate", "bottleneck_size"} for v in by_adapter["series"])
    names = [t.name for t in plan.tuning.trials_of("lora")]
    assert all(n.startswith("lora.trial-lr") for n in names) and len(set(names)) == 4
    # trials are fine-tuned and validated, never evaluated on a test set; the tuned rows are
    assert all(t.name not in {r for _, r, _ in plan.rows} for t in plan.tuning.trials)
    assert {r for _, r, _ in plan.rows} >= {"lora", "lora.tuned", "series.tuned", "parallel.tuned"}
    assert plan.training.tunes("lora.tuned") == "lora" and plan.training.tunes("lora") is None
    trial = plan.tuning.trials_of("lora")[0]
    assert plan.training.train_config(trial.name)["learning_rate"] == trial.values["learning_rate"]
    assert plan.training.adapter_spec(trial.name)["r"] == trial.values["r"]
    assert plan.training.is_trial(trial.name) and not plan.training.is_trial("lora.tuned")


def test_a_grown_budget_keeps_the_earlier_trials():
    small = tuning.points({"learning_rate": [1, 2, 3], "r": [4, 8]}, "random", 2, 0, "lora")
    large = tuning.points({"learning_rate": [1, 2, 3], "r": [4, 8]}, "random", 5, 0, "lora")
    assert large[:2] == small and len({tuple(p.values()) for p in large}) == 5
    grid = tuning.points({"learning_rate": [1, 2], "r": [4, 8]}, "grid", 4, 0, "lora")
    assert [tuple(p.values()) for p in grid] == [(1, 4), (1, 8), (2, 4), (2, 8)]
    assert tuning.trial_name("lora", {"learning_rate": 0.0003, "r": 8}) == "lora.trial-lr0.0003-r8"


@pytest.mark.parametrize("block, message", [
    ({"budget": 2, "space": {"all": {"learning_rate": [1e-4, 1e-3]}, "lora": {"bottleneck_size": [8]}}},
     r"tuning.space: \['bottleneck_size'\] for lora: method 'lora' has no such option"),
    ({"budget": 7, "search": "random", "space": SPACE}, r"tuning.budget: 7 is larger than lora's grid of 6 points"),
    ({"budget": 4, "search": "grid", "space": SPACE}, r"tuning.budget: 4 trials, but lora's grid has 6 points"),
    ({"budget": 1, "space": {"lora": {"r": [8]}}}, r"tuning.space: no learning_rate for lora"),
    ({"budget": 1, "space": SPACE, "validation": {"size": 7473}},
     r"tuning.validation.size: 7473 items is not smaller than training set 'gsm8k_train' \(7473 items\)"),
])
def test_a_bad_tuning_block_is_refused_naming_the_key(block, message):
    with pytest.raises(ConfigError, match=message):
        prepare(filled_config(tuning=block))


def test_tuning_a_base_only_run_is_refused():
    with pytest.raises(ConfigError, match="tuning: the run has no adapter to tune"):
        prepare(filled_config(adapters={}, tuning={"budget": 1, "space": {"all": {"learning_rate": [1e-4]}}}))


def trial(name, accuracy, loss, failed=None, **values):
    return {"trial": name, "values": values or {"learning_rate": name}, "failed": failed, "accuracy": accuracy,
            "loss": loss, "n": 10, "tokens": 100, "steps": 5, "checkpoint": "last step", "wall_time_s": 2.0,
            "peak_rss_mb": 300.0, "peak_cuda_mb": None}


def test_the_choice_reads_the_validation_scores_ties_and_failures():
    trials = [trial("a", 0.4, 1.2), trial("b", 0.6, 1.1), trial("c", 0.6, 0.9), trial("d", None, None, "TrainingError")]
    s = choose("lora", "accuracy", trials)
    assert s["chosen"]["trial"] == "c" and s["ties"] == ["b"] and s["tie_break"] == "lower validation loss"
    assert s["failed"] == [{"trial": "d", "reason": "TrainingError"}]
    assert s["budget"] == {"trials": 4, "failed": 1, "tokens": 400, "steps": 20, "checkpoint": ["last step"],
                           "wall_time_s": 8.0, "peak_rss_mb": 300.0, "peak_cuda_mb": None}
    assert choose("lora", "loss", trials)["chosen"]["trial"] == "c"
    same = choose("lora", "accuracy", [trial("a", 0.5, 1.0), trial("b", 0.5, 1.0)])
    assert same["chosen"]["trial"] == "a" and same["tie_break"] == "the earlier trial"
    with pytest.raises(SelectionError, match="every one of its 2 trials failed"):
        choose("lora", "accuracy", [trial("a", None, None, "NaN"), trial("b", None, None, "OOM")])
