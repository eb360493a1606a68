"""Train/test overlap, reproduced on the mirrored upstream files, and the decontamination policies."""
import pytest

from pipeline_lib.catalog.datasets import DATASETS
from pipeline_lib.data import contamination
from pipeline_lib.data.fetch import fetch
from pipeline_lib.data.loaders import DataError
from pipeline_lib.data.prepare import contamination_report, decontamination_drops, normalize, select
from pipeline_lib.runtime.files import read_json, read_jsonl

MATH_EVAL = ["gsm8k", "SVAMP", "AQuA", "MultiArith", "AddSub", "SingleEq", "mawps"]


@pytest.fixture(scope="module")
def full(data_mirror, tmp_path_factory):
    """Normalized full files of the math sets, as the normalize_data rule writes them."""
    out = tmp_path_factory.mktemp("full")
    paths = {}
    for name in MATH_EVAL + ["math_data", "gsm8k_train", "mawps_train"]:
        spec = DATASETS[name]
        raw = fetch(spec.source, out / "raw" / spec.source.relpath, mirror=data_mirror)
        paths[name] = out / f"{name}.jsonl"
        normalize(spec, raw, paths[name])
    return paths


@pytest.fixture(scope="module")
def report(full, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "contamination.json"
    contamination_report({n: full[n] for n in ["math_data", "gsm8k_train", "mawps_train"]},
                         {n: full[n] for n in MATH_EVAL}, out, 8, 0.8, "near", "report")
    return read_json(out)


def counts(report, train, level):
    return {e: p[level] for e, p in report["pairs"][train].items()}


def test_math_data_holds_its_own_test_questions_verbatim(report):
    # the figures measured on these files (data/README.md): whitespace-collapsed exact matches
    assert counts(report, "math_data", "verbatim") == {"gsm8k": 1055, "SVAMP": 800, "MultiArith": 491, "AddSub": 316,
                                                       "SingleEq": 406, "AQuA": 203, "mawps": 54}


def test_mawps_train_overlaps_after_normalising_punctuation(report):
    # MAWPS is tokenised ("3 . 5"); the same questions match once case and punctuation are normalised
    assert counts(report, "mawps_train", "verbatim")["MultiArith"] == 0
    assert counts(report, "mawps_train", "normalised") == {"gsm8k": 0, "SVAMP": 0, "AQuA": 0, "MultiArith": 452,
                                                          "AddSub": 327, "SingleEq": 416, "mawps": 28}


def test_gsm8k_train_is_clean_and_levels_are_cumulative(report):
    assert set(counts(report, "gsm8k_train", "near").values()) == {0}
    for train, row in report["pairs"].items():
        for p in row.values():
            assert p["verbatim"] <= p["normalised"] <= p["near"] <= p["eval_items"]
            assert set(p["eval_ids"]["verbatim"]) <= set(p["eval_ids"]["normalised"]) <= set(p["eval_ids"]["near"])


def record(i, text, prefix="e"):
    return {"id": f"{prefix}{i}", "instruction": text, "input": ""}


def test_near_duplicates_are_caught_and_unrelated_questions_are_not():
    question = ("Tom has 12 red marbles and buys 7 more at the shop on Monday. He gives 3 to his sister. "
                "How many marbles does Tom have now?")
    paraphrase = question.replace("Monday", "Tuesday")          # one word changed
    extended = "Read carefully. " + question                   # a sentence added
    unrelated = "A train travels 60 miles per hour for 3 hours. How far does it go in total over the trip?"
    result = contamination.matrix({"t": [record(0, question, "t")]},
                                  {"e": [record(1, paraphrase), record(2, extended), record(3, unrelated)]},
                                  n=8, threshold=0.6)
    pair = result["pairs"]["t"]["e"]
    assert (pair["verbatim"], pair["normalised"]) == (0, 0)
    assert pair["eval_ids"]["near"] == ["e1", "e2"]
    assert pair["train_ids"]["near"] == ["t0"]


def test_normalisation_keeps_numbers():
    result = contamination.matrix({"t": [record(0, "Add 3 and 4.", "t")]},
                                  {"e": [record(1, "add 3 AND 4"), record(2, "Add 3 and 5.")]}, n=8, threshold=0.8)
    assert result["pairs"]["t"]["e"]["eval_ids"]["normalised"] == ["e1"]


def test_train_policy_empties_math_data_and_says_why(report, full, tmp_path):
    drop = contamination.flagged(report, "near", "train", "math_data")
    with pytest.raises(DataError, match=r"math_data: decontaminate=train removes all 3257 items: every one overlaps"):
        select("math_data", "train", full["math_data"], tmp_path / "m.jsonl", drop=drop, policy="train")
    assert not (tmp_path / "m.jsonl").exists()


def test_eval_policy_drops_the_overlapping_test_items(report, full, tmp_path):
    path = tmp_path / "contamination.json"
    path.write_text(__import__("json").dumps(report))
    drop = decontamination_drops(path, "eval", "near", "eval", "SVAMP")
    assert len(drop) == 802 and decontamination_drops(path, "eval", "near", "train", "math_data") == set()
    assert decontamination_drops(path, "report", "near", "eval", "SVAMP") == set()
    assert select("SVAMP", "eval", full["SVAMP"], tmp_path / "s.jsonl", drop=drop, policy="eval") == 1000 - 802
    assert not {r["id"] for r in read_jsonl(tmp_path / "s.jsonl")} & drop


def test_fail_policy_stops_naming_the_pairs(full, tmp_path):
    with pytest.raises(DataError, match=r"decontaminate: fail.*math_data x gsm8k: 1055/1319"):
        contamination_report({"math_data": full["math_data"]}, {"gsm8k": full["gsm8k"]}, tmp_path / "c.json",
                             8, 0.8, "normalised", "fail")
    assert not (tmp_path / "c.json").exists()
    contamination_report({"gsm8k_train": full["gsm8k_train"]}, {"gsm8k": full["gsm8k"]}, tmp_path / "c.json",
                         8, 0.8, "near", "fail")  # a clean pair passes
    assert (tmp_path / "c.json").exists()
