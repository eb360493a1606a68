"""The tuning report's sensitivity figure (pipeline_lib/report/tuning.py): a panel per searched value, its ticks at
the values searched, written as plain numbers."""
from pipeline_lib.evaluation.selection import choose


def test_sensitivity_ticks_are_the_searched_values(tmp_path, monkeypatch):
    from pipeline_lib.report import formats, tuning

    trials = [{"trial": f"t{i}", "values": {"learning_rate": lr, "r": r}, "accuracy": acc, "loss": 1.0 - acc,
               "failed": None}
              for i, (lr, r, acc) in enumerate([(1e-4, 4, 0.1), (1e-4, 16, 0.2), (1e-3, 4, 0.3), (1e-3, 16, 0.1),
                                                (5e-3, 4, 0.25), (5e-3, 16, 0.05)])]
    selections = {("m", "lora", "mix"): choose("lora", "accuracy", trials)}
    captured = {}
    monkeypatch.setattr(formats, "save_figure", lambda fig, stem: captured.setdefault("fig", fig))
    tuning.sensitivity(selections, tmp_path / "sensitivity")
    fig = captured["fig"]
    fig.canvas.draw()
    labels = [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes]
    assert labels == [["0.0001", "0.001", "0.005"], ["4", "16"]]
    assert [ax.get_xlabel() for ax in fig.axes] == ["learning rate", "r"]
    # each point is the best trial at that value: lr 1e-3 -> 0.3 (r=4), r=16 -> 0.2 (lr 1e-4)
    lr_line, r_line = (ax.get_lines()[0] for ax in fig.axes)
    assert list(lr_line.get_ydata()) == [20.0, 30.0, 25.0] and list(r_line.get_ydata()) == [30.0, 20.0]


def _found(outcomes: dict) -> dict:
    """(adapter, dataset) -> seeds x items outcomes, as aggregate.outcomes gives them."""
    import numpy as np

    return {("m", a, "t", "generate", d): {"ids": [f"q{i}" for i in range(np.shape(o)[-1])],
                                           "reported": np.array(o, dtype=float).reshape(-1, np.shape(o)[-1])}
            for (a, d), o in outcomes.items()}


def test_tuned_vs_default_holm_adjusts_over_the_whole_table():
    from scipy.stats import binomtest

    from pipeline_lib.report import comparisons, tuning

    n = 40
    outcomes = {("lora", "s1"): [0] * n, ("lora.tuned", "s1"): [1] * 12 + [0] * (n - 12),
                ("lora", "s2"): [0] * n, ("lora.tuned", "s2"): [1] * 2 + [0] * (n - 2),
                ("series", "s1"): [1] * 5 + [0] * (n - 5), ("series.tuned", "s1"): [1] * 5 + [0] * (n - 5),
                ("series", "s2"): [0] * n, ("series.tuned", "s2"): [0] * n}
    table = tuning.tuned_vs_default(_found(outcomes), {"lora.tuned": "lora", "series.tuned": "series"}, ["s1", "s2"])
    assert len(table) == 6 and set(table.dataset) == {"s1", "s2", "average"}
    s1 = table[(table.adapter == "lora") & (table.dataset == "s1")].iloc[0]
    assert s1.p == round(binomtest(12, 12, 0.5).pvalue, 4) and s1["tuned - default (points)"] == 30.0
    # the second smallest of the six p-values (lora's average, 14 of 14 discordant items for tuned, is the
    # smallest): Holm multiplies it by five
    assert s1["p (Holm)"] == round(5 * binomtest(12, 12, 0.5).pvalue, 4) and s1["told apart"] == "yes"
    assert (table["p (Holm)"] >= table.p).all() and comparisons.ALPHA == 0.05
    assert table[(table.adapter == "series")]["told apart"].eq("no").all()


def test_rank_stability_counts_a_swap_only_where_both_settings_tell_the_pair_apart():
    import numpy as np

    from pipeline_lib.report import tuning

    rng = np.random.default_rng(3)
    n = 200

    def rows(p):
        return (rng.random(n) < p).astype(int).tolist()
    # lora and series swap clearly (told apart both times); series and dora swap by a hair (noise)
    outcomes = {("lora", "s"): rows(0.8), ("lora.tuned", "s"): rows(0.2), ("series", "s"): rows(0.3),
                ("series.tuned", "s"): rows(0.7), ("dora", "s"): rows(0.31), ("dora.tuned", "s"): rows(0.69)}
    tuned = {"lora.tuned": "lora", "series.tuned": "series", "dora.tuned": "dora"}
    row = tuning.rank_stability(_found(outcomes), tuned, ["s"]).iloc[0]
    assert "lora / series" in row["swapped, told apart under both"] and "dora / lora" in row[
        "swapped, told apart under both"]
    assert row["order changed within noise"] in ("dora / series", "none")
    low, high = (float(x) for x in row["tau 95% CI"].strip("[]").split(","))
    assert low <= row["Kendall's tau"] <= high and row.finding.startswith("tuning changed the ranking")
    same = {k: v for k, v in outcomes.items() if k[0].endswith(".tuned")}
    same |= {(a.removesuffix(".tuned"), d): v for (a, d), v in same.items()}
    stable = tuning.rank_stability(_found(same), tuned, ["s"]).iloc[0]
    assert stable["swapped, told apart under both"] == "none" and stable.finding.startswith("the same order")


def test_a_choice_at_the_edge_of_its_space_is_flagged_everywhere(tmp_path):
    """The largest learning rate tried wins: the selection, the table's note, the notes and the run's warnings say
    the optimum may lie outside; trials whose steps or checkpoint rules differ between adapters are said to."""
    from pipeline_lib.evaluation.selection import checkpoint_rule, edges
    from pipeline_lib.report import tuning

    trials = lambda steps, rule: [{"trial": f"t{i}", "values": {"learning_rate": lr, "r": r}, "accuracy": acc,  # noqa
                                   "loss": 1 - acc, "failed": None, "steps": steps, "tokens": 100 * steps,
                                   "checkpoint": rule}
                                  for i, (lr, r, acc) in enumerate([(1e-4, 4, 0.1), (1e-3, 4, 0.2), (5e-3, 4, 0.4),
                                                                    (1e-4, 16, 0.1), (1e-3, 16, 0.3),
                                                                    (5e-3, 16, 0.2)])]
    lora = choose("lora", "accuracy", trials(10, "last step"))
    assert lora["chosen"]["values"] == {"learning_rate": 5e-3, "r": 4}
    assert lora["edges"] == {"learning_rate": "highest", "r": "lowest"}
    assert edges(trials(10, "x"), {"learning_rate": 1e-3, "r": 4}) == {"r": "lowest"}
    prefix = choose("prefix", "accuracy", trials(20, "best validation loss"))
    selections = {("m", "lora", "t"): lora, ("m", "prefix", "t"): prefix}
    table = tuning.tuning_table(selections)
    chosen = table[(table.adapter == "lora") & (table.chosen == "✓")].iloc[0]
    assert "highest learning_rate tried" in chosen.note and chosen.steps == 10 and chosen.checkpoint == "last step"
    notes = "\n".join(tuning.tuning_notes(selections))
    assert "differ in optimizer steps (lora 60, prefix 120)" in notes and "different checkpoints" in notes
    assert len(tuning.edge_warnings(selections)) == 2
    assert checkpoint_rule({"training": {"val_set_size": 20}}) == "best validation loss"
    assert checkpoint_rule({"training": {"val_set_size": 0}}) == "last step"


def test_findings_say_only_what_the_tests_support():
    """A run whose rows are within noise says so; a separated pair is named with its adjusted p; merging's changes
    are read against the float32 control and the precision floor."""
    import numpy as np
    import pandas as pd

    from pipeline_lib.report import comparisons, findings

    ids = [f"q{i}" for i in range(50)]
    cell = lambda o: {"ids": ids, "reported": np.array([o], dtype=float)}  # noqa: E731
    found = {("m", "lora", "t", "generate", d): cell([1] * 20 + [0] * 30) for d in ("s1", "s2")}
    found |= {("m", "series", "t", "generate", d): cell([1] * 18 + [0] * 32) for d in ("s1", "s2")}
    found |= {("m", "base", "none", "generate", d): cell([0] * 50) for d in ("s1", "s2")}
    compared = comparisons.compare_all(found, ["s1", "s2"])
    cells = pd.DataFrame([{"chance": None, "ci_low": 0.0, "ci_high": 1.0}])
    merging = {("m", "lora", "t", None): {"mergeable": True, "items": 10, "dtype": "bfloat16", "speedup": 1.4,
                                           "merged": {"rounds": 2}, "agreement": {"different_response": 3},
                                           "float32_control": {"different_response": 0},
                                           "precision_floor": {"different_response": 4}}}
    table = findings.findings(compared, cells, merging=merging)
    text = "\n".join(table.finding)
    assert "m / lora / t is above m / base / none on the average" in text
    assert "m / series / t" in text and "lora / t is above m / series" not in text  # 40% against 36%: noise
    assert "merging changed 3 of 10" in text and "beyond the precision's own rounding" in text
    assert set(table.columns) == {"topic", "finding", "evidence", "see"} and table.evidence.str.len().min() > 10


def test_trial_groups_share_a_letter_only_where_holm_cannot_separate_the_trials():
    """Three trials on 40 validation items: 'good' right on 30, 'mid' on 25 (the 5 more it misses are the only
    discordant items with 'good'), 'bad' on 2. Exact McNemar (scipy's binomial test on the discordant items),
    Holm over the three pairs: good and mid share a group, bad shares none; the chosen trial's note says it was not
    told apart from one other trial. With the metric loss, the lower loss is the better side."""
    from scipy.stats import binomtest

    from pipeline_lib.report import comparisons, tuning

    n = 40
    ids = [f"v{i}" for i in range(n)]
    outcomes = {"good": [1] * 30 + [0] * 10, "mid": [1] * 25 + [0] * 15, "bad": [1] * 2 + [0] * 38}
    trials = [{"trial": name, "values": {"learning_rate": lr}, "accuracy": sum(o) / n, "loss": 1.0, "failed": None,
               "items": {"ids": ids[::-1], "values": o[::-1]}}  # stored in another order: pairing is by id
              for name, lr, o in (("bad", 1e-4, outcomes["bad"]), ("good", 1e-3, outcomes["good"]),
                                  ("mid", 5e-3, outcomes["mid"]))]
    selection = choose("lora", "accuracy", trials)
    raw = {("good", "mid"): binomtest(5, 5, 0.5).pvalue, ("good", "bad"): binomtest(28, 28, 0.5).pvalue,
           ("mid", "bad"): binomtest(23, 23, 0.5).pvalue}
    adjusted = dict(zip(raw, comparisons.holm(list(raw.values()))))
    assert adjusted[("good", "mid")] >= comparisons.ALPHA > max(adjusted[("good", "bad")], adjusted[("mid", "bad")])
    groups = tuning.trial_groups(selection)
    assert groups == {"good": "a", "mid": "a", "bad": "b"}
    table = tuning.tuning_table({("m", "lora", "t"): selection}).set_index("trial")
    assert table.loc["learning_rate=0.001", "group"] == "a" and table.loc["learning_rate=0.0001", "group"] == "b"
    assert "not told apart from 1 other trial on validation" in table.loc["learning_rate=0.001", "note"]
    # the loss metric: per-item losses, the lowest loss is 'a'; one trial far lower on every item stands alone
    losses = {"low": [0.5] * n, "high": [2.0 + 0.01 * i for i in range(n)], "high2": [2.0 + 0.01 * i for i in range(n)]}
    by_loss = choose("lora", "loss", [{"trial": k, "values": {"r": r}, "accuracy": None, "loss": float(sum(v)) / n,
                                       "failed": None, "items": {"ids": ids, "values": v}}
                                      for r, (k, v) in zip((4, 8, 16), losses.items())])
    assert tuning.trial_groups(by_loss) == {"low": "a", "high": "b", "high2": "b"}
    # a failed trial, or trials without per-item outcomes, get no group
    assert tuning.trial_groups({**selection, "trials": [{**t, "items": None} for t in trials]}) == {}


def test_select_setting_keeps_each_trials_outcomes_by_item(tmp_path):
    """The selection job stores each trial's per-item validation outcomes (what the groups compare) from its
    validation.jsonl, and none for a failed trial."""
    from pipeline_lib.evaluation.selection import select_setting
    from pipeline_lib.planning import paths
    from pipeline_lib.runtime.files import write_json, write_jsonl

    records, adapters, predictions = [], [], []
    for name, failed, done in (("a", None, [{"id": "x", "correct": True}, {"id": "y", "correct": False}]),
                               ("b", "NaN loss", [])):
        write_json(tmp_path / f"{name}.json", {"run": name, "failed": failed, "accuracy": 0.5, "loss": 1.0, "n": 2})
        write_jsonl(tmp_path / f"{name}.jsonl", done)
        (tmp_path / name).mkdir()
        write_json(paths.metrics(str(tmp_path / name)), {"tokens": 10, "steps": 1})
        records.append(str(tmp_path / f"{name}.json"))
        adapters.append(str(tmp_path / name))
        predictions.append(str(tmp_path / f"{name}.jsonl"))
    s = select_setting(str(tmp_path / "selection.json"), records, adapters, "lora", "accuracy",
                       {"a": {"r": 4}, "b": {"r": 8}}, predictions)
    assert [t["items"] for t in s["trials"]] == [{"ids": ["x", "y"], "values": [1.0, 0.0]}, None]
