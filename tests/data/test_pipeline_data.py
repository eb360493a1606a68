"""The data stage on the real Snakefile: datasets added by configuration, a malformed file stopping the run
with nothing downstream and nothing already prepared lost, and the decontamination policies end to end."""
import hashlib
import json

import pandas as pd
import pytest

import helpers
from helpers import ONE_LORA
from pipeline_lib.runtime.files import read_jsonl

pytestmark = pytest.mark.slow
ITEM = {"instruction": "Ann has 3 pens and buys 4 more. How many pens does she have?", "input": "",
        "output": "3 + 4 = 7. The answer is 7.", "answer": "7"}


def dataset_entry(path, split="eval"):
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "format": "llm_adapters",
            "split": split, "answer_type": "number"}


def run(workdir, overrides, *targets):
    return helpers.run(workdir, overrides, *targets, configfiles=ONE_LORA)


@pytest.fixture()
def base(machine):
    return machine


def test_a_dataset_added_by_config_runs_like_a_built_in_one(tmp_path, base):
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps([dict(ITEM, id=i, instruction=f"{ITEM['instruction']} ({i})") for i in range(4)]))
    overrides = {**base, "datasets": {"pens": dataset_entry(mine)}, "eval_sets": ["pens"]}
    done = run(tmp_path / "w", overrides)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(read_jsonl(tmp_path / "w/results/data/eval/pens.jsonl")) == 3  # eval_limit of the tiny config
    table = pd.read_csv(tmp_path / "w/results/tables/accuracy.csv")
    assert list(table.columns)[4] == "pens" and list(table.adapter) == ["base", "lora"]


def test_a_malformed_file_stops_the_data_stage_and_keeps_what_was_prepared(tmp_path, base):
    workdir = tmp_path / "w"
    first = run(workdir, base, "results/data/eval/gsm8k.jsonl")
    assert first.returncode == 0, first.stderr[-3000:]
    prepared = workdir / "results/data/eval/gsm8k.jsonl"
    before = (prepared.stat().st_mtime_ns, prepared.read_bytes())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([dict(ITEM, id="a"), dict(ITEM, id="a")]))
    overrides = {**base, "datasets": {"bad": dataset_entry(bad)}, "eval_sets": ["gsm8k", "bad"]}
    failed = run(workdir, overrides)
    assert failed.returncode != 0
    log = (workdir / "logs/normalize_data/bad.log").read_text()
    assert "bad.json: item 1: field 'id' 'a' duplicates item 0" in log
    assert not (workdir / "results/data/full/bad.jsonl").exists()
    # nothing that depends on it ran: no overlap report, no training set, no adapter, no score on it
    assert not (workdir / "results/data/contamination.json").exists()
    assert not (workdir / "results/adapters").exists()
    assert not list((workdir / "results").rglob("scores/**/bad.json"))
    assert (prepared.stat().st_mtime_ns, prepared.read_bytes()) == before


def test_a_changed_config_dataset_file_fails_its_checksum(tmp_path, base):
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps([ITEM]))
    entry = dataset_entry(mine)
    mine.write_text(json.dumps([ITEM, ITEM]))
    failed = run(tmp_path / "w", {**base, "datasets": {"pens": entry}, "eval_sets": ["pens"]})
    assert failed.returncode != 0
    assert "sha256 mismatch" in (tmp_path / "w/logs/fetch_data/config-datasets/pens/mine.json.log").read_text()


def test_report_policy_marks_every_affected_cell(tmp_path, base):
    overrides = {**base, "train_sets": ["mawps_train"], "eval_sets": ["AddSub", "gsm8k"], "decontaminate": "report",
                 "include_base": True}
    done = run(tmp_path / "w", overrides)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(tmp_path / "w/results/tables/accuracy.csv")
    lora = table[table.adapter == "lora"].iloc[0]
    assert lora["marks"] == "AddSub:contaminated"  # gsm8k is clean; the base row is never marked
    assert table[table.adapter == "base"]["marks"].isna().all()
    md = (tmp_path / "w/results/tables/accuracy.md").read_text()
    assert "†" in md and "contaminated: the training set contains some of these test questions" in md
    overlap = (tmp_path / "w/results/tables/contamination.md").read_text()
    assert "| mawps_train" in overlap and "327/395" in overlap


def test_fail_policy_stops_before_training(tmp_path, base):
    overrides = {**base, "train_sets": ["math_data"], "eval_sets": ["SVAMP"], "decontaminate": "fail"}
    failed = run(tmp_path / "w", overrides)
    assert failed.returncode != 0
    assert "math_data x SVAMP: 802/1000" in (tmp_path / "w/logs/contamination/contamination.log").read_text()
    assert not (tmp_path / "w/results/adapters").exists()


def test_train_policy_empties_math_data_and_the_run_says_why(tmp_path, base):
    seven = ["gsm8k", "SVAMP", "AQuA", "MultiArith", "AddSub", "SingleEq", "mawps"]
    overrides = {**base, "train_sets": ["math_data"], "eval_sets": seven, "include_base": False}
    failed = run(tmp_path / "w", overrides)  # decontaminate: train, the default
    assert failed.returncode != 0
    log = (tmp_path / "w/logs/prepare_data/train/math_data.log").read_text()
    assert "math_data: decontaminate=train removes all 3257 items: every one overlaps" in log
    assert not (tmp_path / "w/results/data/train/math_data.jsonl").exists()
    assert not (tmp_path / "w/results/adapters").exists()
