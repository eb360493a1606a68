"""The report's tables and figures on hand-made scores: intervals, best-per-column, marks, the comparison with
published numbers, pairwise significance, LaTeX escaping, and figures in both formats."""

import pandas as pd
import pytest

from pipeline_lib.report import chance, comparisons, figures, formats, tables


def score_row(model, adapter, train, dataset, correct, n=20, wall=3.0, paper_correct=None):
    from pipeline_lib.evaluation.stats import accuracy_summary

    def interval(k):
        return accuracy_summary([True] * k + [False] * (n - k))["ci95"]

    paper_correct = correct if paper_correct is None else paper_correct
    (low, high), (paper_low, paper_high) = interval(correct), interval(paper_correct)
    return {"model": model, "adapter": adapter, "train_set": train, "protocol": "generate", "dataset": dataset,
            "accuracy": 100 * correct / n,
            "n": n, "ci_low": low, "ci_high": high, "wall_time_s": wall, "paper_accuracy": 100 * paper_correct / n,
            "paper_ci_low": paper_low, "paper_ci_high": paper_high, "seeds": 1, "seed_sd": float("nan"),
            "quantization": "none", "seed": None, "run": adapter}


@pytest.fixture()
def scores():
    return pd.DataFrame([score_row("m", "base", "none", "gsm8k", 2), score_row("m", "base", "none", "AQuA", 5),
                         score_row("m", "lora", "math_10k", "gsm8k", 8, paper_correct=7),
                         score_row("m", "lora", "math_10k", "AQuA", 4)])


def test_cells_hold_interval_letters_bold_and_marks(scores):
    cells = tables.accuracy_cells(scores, ["gsm8k", "AQuA"], {("math_10k", "gsm8k"): "contaminated"})
    lora = cells[cells.adapter == "lora"].iloc[0]
    assert lora["gsm8k"].startswith("40.0 [") and lora["gsm8k"].endswith("]†")  # no comparison given: no bold
    assert lora["average"] == 30.0
    groups = {("generate", "math_10k", "gsm8k", "m / lora / math_10k"): ("a", True),
              ("generate", "math_10k", "AQuA", "m / lora / math_10k"): ("ab", False)}
    lora = tables.accuracy_cells(scores, ["gsm8k", "AQuA"], {("math_10k", "gsm8k"): "contaminated"},
                                 groups=groups).query("adapter == 'lora'").iloc[0]
    assert lora["gsm8k"].startswith("**40.0 [") and lora["gsm8k"].endswith("]** a†")
    assert lora["AQuA"].endswith("] ab") and not lora["AQuA"].startswith("**")


def test_published_comparison_matches_model_method_and_training_set(scores):
    published = pd.DataFrame([
        {"source": "LLM-Adapters README", "trained_on": "math_10k", "model": "LLaMA-7B", "adapter": "LoRA", "dataset": "gsm8k",
         "accuracy": 37.5},
        {"source": "LLM-Adapters README", "trained_on": "commonsense_170k", "model": "LLaMA-7B", "adapter": "LoRA",
         "dataset": "AQuA", "accuracy": 99.0},
        {"source": "PEFT method_comparison", "trained_on": "hub:x/math", "model": "LLaMA-7B", "adapter": "LoRA r=32",
         "dataset": "gsm8k", "accuracy": 50.0}])
    names, trained = {"lora": ["LoRA", "LoRA r=32"]}, {"math_10k": ["math_10k"]}
    ours = {("m", "lora", "math_10k", "generate"): {"decoding": "greedy", "max_new_tokens": 256, "cutoff_len": 256,
                                                   "suite": "math"}}
    table = tables.published_comparison(scores, published, {"m": "LLaMA-7B"}, names, trained, ours)
    assert len(table) == 1  # the commonsense row was trained on another set; base has no published row
    row = table.iloc[0]
    # compared under upstream's extraction rule (7/20), our reported rule's 8/20 beside it
    assert (row.dataset, row["ours (paper rule)"], row.theirs, row["ours - theirs"]) == ("gsm8k", 35.0, 37.5, -2.5)
    assert row["ours (reported rule)"] == 40.0 and bool(row["theirs inside our CI"]) and row.source == "LLM-Adapters README"
    # the row says where it was produced otherwise than the source's numbers (upstream decodes with 4 beams)
    assert row["protocol differences"] == "decoding: ours greedy, theirs 4-beam search, batch 1"
    assert tables.published_comparison(scores, published, {}, names, trained).empty
    # the same training set under another published name (a hub dataset): a row per source
    both = tables.published_comparison(scores, published, {"m": "LLaMA-7B"}, names,
                                       {"math_10k": ["math_10k", "hub:x/math"]})
    assert list(both.source) == ["LLM-Adapters README", "PEFT method_comparison"] and list(both["theirs as"]) == ["LoRA", "LoRA r=32"]


def test_the_published_sources_read_into_one_frame():
    from helpers import ROOT
    from pipeline_lib.catalog import published as published_names
    from pipeline_lib.report import published

    frame = published.load(ROOT / "published")
    assert set(frame.source) == {s.name for s in published.SOURCES}
    peft = frame[frame.source == "PEFT method_comparison"]
    lora = peft[peft.adapter == "lora/llama-3.2-3B-rank32"].iloc[0]
    assert (lora.model, lora.dataset, lora.trained_on) == ("meta-llama/Llama-3.2-3B", "gsm8k",
                                                           "hub:meta-math/MetaMathQA")
    assert lora.accuracy == pytest.approx(47.8393, abs=1e-3)  # 0.478393 as a fraction there
    dora = frame[(frame.source == "DoRA README") & (frame.model == "LLaMA-7B") & (frame.dataset == "boolq")]
    assert dict(zip(dora.adapter, dora.accuracy))["LoRA r=32"] == 67.5
    assert not frame.duplicated(["source", "trained_on", "model", "adapter", "dataset"]).any()
    assert published_names.adapter_labels({"method": "dora", "r": 16}) == ["DoRA", "DoRA r=16"]
    assert published_names.adapter_labels({"method": "lora", "published_as": "lora/x"}) == ["lora/x"]
    assert published_names.training_keys("metamath", {"hub": "meta-math/MetaMathQA"}) == ["metamath",
                                                                                   "hub:meta-math/MetaMathQA"]


def _cell(outcomes):
    import numpy as np

    outcomes = np.array(outcomes, dtype=float).reshape(-1, np.shape(outcomes)[-1])
    return {"ids": [f"q{i}" for i in range(outcomes.shape[1])], "reported": outcomes}


def test_significance_lists_every_pair_of_each_block_with_holm():
    from scipy.stats import binomtest

    from pipeline_lib.report import comparisons

    a = [True] * 12 + [False] * 8
    b = [True] * 4 + [False] * 16
    found = {("m", name, train, "generate", "gsm8k"): _cell([correct])
             for name, train, correct in (("lora", "t", a), ("series", "t", b), ("other", "u", a), ("base", "none", b))}
    table = comparisons.significance_table(found, ["gsm8k"])
    # blocks: training set t with the base row, training set u with the base row
    assert sorted(zip(table.train_set, table.A, table.B)) == sorted([
        ("t", "m / lora / t", "m / series / t"), ("t", "m / lora / t", "m / base / none"),
        ("t", "m / series / t", "m / base / none"), ("u", "m / other / u", "m / base / none")])
    row = table[(table.A == "m / lora / t") & (table.B == "m / series / t")].iloc[0]
    assert row["A - B (points)"] == 40.0 and row.p == round(binomtest(8, 8, 0.5).pvalue, 4)  # 8 discordant, all A
    block = table[table.train_set == "t"]
    assert sorted(block["p (Holm)"]) == sorted(round(p, 4) for p in comparisons.holm(
        [binomtest(8, 8, 0.5).pvalue, binomtest(8, 8, 0.5).pvalue, 1.0]))
    assert row["told apart"] == "yes" and row.seeds == "1/1"


def test_seeds_far_apart_leave_the_secondary_interval_open():
    import numpy as np

    rng = np.random.default_rng(0)
    items = rng.random(200)
    noisy = np.array([items < q for q in (0.3, 0.6, 0.45)], dtype=float)  # seeds far apart
    steady = np.array([items < q for q in (0.44, 0.46, 0.45)], dtype=float)
    found = {("m", "lora", "t", "generate", "gsm8k"): _cell(noisy), ("m", "series", "t", "generate", "gsm8k"):
             _cell(steady)}
    row = comparisons.significance_table(found, ["gsm8k"]).iloc[0]
    low, high = (float(x) for x in row["95% CI (seeds and items)"].strip("[]").split(","))
    spread = [float(x) for x in row["seed SD A/B (points)"].split("/")]
    assert row.seeds == "3/3" and low < 0 < high and spread[0] > 10 > spread[1]


def test_bold_marks_only_a_row_told_apart_from_every_other():
    """The highest accuracy of a column is not bold unless the paired test separates it from every other row; a
    row that is separated is bold, and rows sharing a letter are exactly the rows not told apart."""
    from pipeline_lib.report import comparisons

    def render(outcomes: dict[str, list]):
        found = {("m", a, "t" if a != "base" else "none", "generate", "gsm8k"): _cell(o) for a, o in outcomes.items()}
        cells = pd.DataFrame([{"model": "m", "adapter": a, "train_set": t, "protocol": "generate", "dataset": d,
                               "accuracy": 100 * c["reported"].mean(), "ci_low": 0.0, "ci_high": 1.0, "seeds": 1,
                               "n": c["reported"].shape[1]} for (_, a, t, _, d), c in found.items()])
        compared = comparisons.compare_all(found, ["gsm8k"])
        accuracy = {("generate", "gsm8k", f"m / {a} / {t}"): 100 * c["reported"].mean()
                    for (_, a, t, _, _), c in found.items()}
        groups = comparisons.marks(compared, accuracy)
        shown = tables.accuracy_cells(cells, ["gsm8k"], {}, groups=groups)
        return dict(zip(shown.adapter, shown.gsm8k)), compared
    n = 25
    close, _ = render({"lora": [1] * 5 + [0] * (n - 5), "series": [1] * 3 + [0] * (n - 3), "base": [0] * n})
    assert not any("**" in text for text in close.values())  # 20% against 12% and 0% on 25 items: none told apart
    far, compared = render({"lora": [1] * 20 + [0] * 30, "series": [0] * 50, "base": [0] * 50})
    assert far["lora"].startswith("**") and not any("**" in far[a] for a in ("series", "base"))
    assert far["lora"].endswith(" a") and far["series"].endswith(" b") and far["base"].endswith(" b")
    assert all(p["separable"] == ("m / lora / t" in (p["A"], p["B"])) for p in compared[("generate", "t", "gsm8k")])


def test_every_table_is_written_as_csv_markdown_and_latex(scores, tmp_path):
    cells = tables.accuracy_cells(scores, ["gsm8k", "AQuA"], {("math_10k", "gsm8k"): "contaminated"},
                                  groups={("generate", "math_10k", "gsm8k", "m / lora / math_10k"): ("a", True)})
    csv, md, tex = formats.write_table(cells, tmp_path / "accuracy_ci", "Accuracy (%) with 95% intervals", ["note"])
    assert pd.read_csv(csv).shape == cells.shape
    assert "| m " in md.read_text() and "note" in md.read_text()
    latex = tex.read_text()
    assert r"\textbf{40.0 [" in latex and r"$^\dagger$" in latex and r"train\_set" in latex and "**" not in latex


PAPER_RULES = {"gsm8k": "paper", "AQuA": "paper"}


def _score_files(tmp_path):
    from pipeline_lib.runtime.files import write_json

    paths = []
    for adapter, train_set, accs in [("base", "none", (0.1, 0.2)), ("lora", "gsm8k_train", (0.3, 0.5))]:
        for dataset, acc in zip(["gsm8k", "AQuA"], accs):
            path = tmp_path / f"{adapter}-{dataset}.json"
            write_json(path, {"model": "m", "adapter": adapter, "train_set": train_set, "protocol": "generate",
                              "dataset": dataset,
                              "accuracy": acc, "n": 10, "rules": {"paper": acc / 2}})
            paths.append(path)
    return paths


def test_accuracy_table_has_paper_layout(tmp_path):
    frame = tables.collect(_score_files(tmp_path), PAPER_RULES)
    table = tables.accuracy_table(frame, ["gsm8k", "AQuA", "SVAMP"])
    assert list(table.columns) == ["model", "adapter", "train_set", "protocol", "gsm8k", "AQuA", "average"]
    lora = table[table.adapter == "lora"].iloc[0]
    assert (lora.gsm8k, lora.AQuA, lora.average) == (30.0, 50.0, 40.0)
    assert table[table.adapter == "base"].iloc[0].average == 15.0
    assert frame[frame.adapter == "lora"].paper_accuracy.tolist() == [15.0, 25.0]  # from each score's rules


def test_the_paper_accuracy_is_under_the_rule_each_set_names(tmp_path):
    frame = tables.collect(_score_files(tmp_path), {"gsm8k": "stated", "AQuA": "paper"})
    lora = frame[frame.adapter == "lora"]
    assert lora.paper_accuracy.tolist() == [30.0, 25.0]  # gsm8k's files have no `stated` rule: its accuracy
    assert lora.paper_rule.tolist() == ["stated", "paper"]


def test_numeric_accuracy_table_is_written_with_its_marks(tmp_path):
    table = tables.accuracy_table(tables.collect(_score_files(tmp_path), PAPER_RULES), ["gsm8k", "AQuA"])
    csv, md, tex = tables.write_accuracy(table, tmp_path / "t", {("gsm8k_train", "AQuA"): "contaminated"})
    written = pd.read_csv(csv)
    assert written["marks"].fillna("").tolist() == ["", "AQuA:contaminated"]
    pd.testing.assert_frame_equal(written.drop(columns="marks"), table, check_dtype=False, check_names=False)
    lines = md.read_text().splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == ["model", "adapter", "train_set", "protocol", "gsm8k",
                                                              "AQuA", "average"]
    assert "50.0†" in lines[3] and "† contaminated" in md.read_text() and r"50.0$^\dagger$" in tex.read_text()


def test_figures_are_written_as_png_and_pdf(scores, tmp_path):
    from pipeline_lib.report.tables import accuracy_table

    metrics = {("m", "lora", "math_10k"): {"loss": [2.0, 1.5, 1.2], "wall_time_s": 10.0, "trainable_params": 1000,
                                           "validation": {"steps": [3], "loss": [1.4]}}}
    made = figures.accuracy_by_dataset(scores, ["gsm8k", "AQuA"], tmp_path / "accuracy")
    made += figures.accuracy_vs_parameters(accuracy_table(scores, ["gsm8k", "AQuA"]), {("m", "lora", "math_10k"): 1000},
                                           tmp_path / "tradeoff")
    made += figures.loss_curves(metrics, tmp_path / "loss")
    made += figures.job_times(metrics, scores, tmp_path / "time")
    assert len(made) == 8
    for path in made:
        head = path.read_bytes()[:5]
        assert head == (b"\x89PNG\r" if path.suffix == ".png" else b"%PDF-")


def test_sweep_figures_placement_and_size(tmp_path):
    rows, coords, params = [], {}, {}
    for family in ("series", "lora"):
        for place, correct in (("attention", 4), ("mlp", 9), ("both", 7)):
            name = f"{family}-{place}"
            coords[name] = {"family": family, "method": family, "placement": place, "size_key": None, "size": None}
            rows += [score_row("m", name, "t", d, correct) for d in ("gsm8k", "AQuA")]
    for r in (2, 8, 32):
        name = f"lora-size-r{r}"
        coords[name] = {"family": "lora-size", "method": "lora", "placement": None, "size_key": "r", "size": r}
        params[("m", name, "t")] = 1000 * r
        rows += [score_row("m", name, "t", d, r // 2) for d in ("gsm8k", "AQuA")]
    scores = pd.DataFrame(rows)
    avg = figures.average_with_interval(scores)
    mlp = avg[avg.adapter == "series-mlp"].iloc[0]
    assert mlp.average == 45.0 and mlp.low < 45.0 < mlp.high
    made = figures.placement(scores, coords, tmp_path / "placement") + figures.size(scores, coords, params,
                                                                                     tmp_path / "size")
    assert [p.suffix for p in made] == [".png", ".pdf", ".png", ".pdf"]
    assert all(p.stat().st_size > 5000 for p in made)


def test_a_cell_whose_interval_holds_chance_is_marked_and_listed():
    cells = pd.DataFrame([
        {"model": "m", "adapter": a, "train_set": "t", "protocol": "generate", "dataset": "boolq", "accuracy": acc,
         "ci_low": lo, "ci_high": hi, "seeds": 1, "n": 40, "chance": 0.5, "no_answer_share": share}
        for a, acc, lo, hi, share in (("lora", 55.0, 0.40, 0.69, 0.0), ("series", 80.0, 0.65, 0.89, 0.1))])
    shown = tables.accuracy_cells(cells, ["boolq"], {}).set_index("adapter").boolq
    assert shown["lora"].endswith(chance.CHANCE_MARK) and not shown["series"].endswith(chance.CHANCE_MARK)
    answers = chance.answers_table(cells).set_index("adapter")
    assert list(answers["at chance"]) == ["yes", "no"] and list(answers["no answer (%)"]) == [0.0, 10.0]
    assert answers.loc["lora", "chance (%)"] == 50.0
    assert "boolq 50.0%" in chance.chance_notes(cells)[0] and "(1 of 2 cells)" in chance.chance_notes(cells)[0]


def test_rows_made_by_other_code_are_named_with_the_code_that_made_them():
    from pipeline_lib.report.tables import code_notes

    def row(adapter, dataset, stage):
        return {"model": "m", "adapter": adapter, "train_set": "t", "protocol": "generate", "dataset": dataset,
                "provenance": {"code": {"stage": stage, "commit": "c"}}}

    runs = pd.DataFrame([row("lora", "gsm8k", "new"), row("lora", "AQuA", "old"), row("series", "gsm8k", None)])
    metrics = {("m", "lora", "t", None): {"provenance": {"code": {"stage": "new"}}},
               ("m", "series", "t", None): {"provenance": {"code": {"stage": "older"}}}}
    current = {"evaluate": "new", "finetune": "new"}
    scores, finetunes = code_notes(runs, metrics, current)
    assert scores.startswith("1 of 3 scores were made by other evaluate code (old) than this checkout's (new): "
                             "m lora t generate on AQuA.")  # a row that recorded no code is not counted as other
    assert finetunes.startswith("1 of 2 fine-tunes were made by other finetune code (older)") and "m series t." in finetunes
    assert code_notes(runs.iloc[:1], {}, current) == [] and code_notes(runs, metrics, None) == []
    many = pd.DataFrame([row("lora", f"d{i}", "old") for i in range(9)])
    assert "m lora t generate on d5 and 3 more." in code_notes(many, {}, current)[0]
