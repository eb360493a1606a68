"""Datasets read with the datasets library (config `format: hf`): local parquet files and save_to_disk folders,
field mapping and answer rules, validation of every item, the fingerprint of what was loaded, the hub path
offline, and runs of the Snakefile with such datasets (a changed file re-runs only what depends on it)."""
import hashlib
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from helpers import ONE_LORA, ROOT, job_counts, run
from pipeline_lib.catalog.datasets import config_dataset
from pipeline_lib.data import hf
from pipeline_lib.data.loaders import DataError

# MetaMathQA's layout: query / response, the answer stated at the end as "The answer is: N"
ROWS = [{"query": f"What is {i} + {i}?", "response": f"{i} + {i} = {2 * i}\nThe answer is: {2 * i}", "type": "GSM"}
        for i in range(1, 13)]
TRAIN_ENTRY = {"format": "hf", "split": "train", "answer_type": "number", "answer_rule": "answer_is",
               "fields": {"instruction": "query", "output": "response"}}


def parquet(tmp_path, rows=ROWS):
    from datasets import Dataset

    path = tmp_path / "metamath.parquet"
    Dataset.from_list(rows).to_parquet(str(path))
    return path


def saved(tmp_path):
    from datasets import Dataset, DatasetDict

    folder = tmp_path / "eval-ds"
    rows = [{"question": f"How many legs do {i} cats have?", "label": 4 * i} for i in range(1, 6)]
    DatasetDict({"test": Dataset.from_list(rows)}).save_to_disk(str(folder))
    return folder


def test_parquet_rows_are_mapped_validated_and_fingerprinted(tmp_path):
    path = parquet(tmp_path)
    entry = {**TRAIN_ENTRY, "path": str(path)}
    spec = config_dataset("metamath", entry)
    hf.load(spec, entry, tmp_path / "full.jsonl", tmp_path / "source.json")
    records = [json.loads(line) for line in (tmp_path / "full.jsonl").read_text().splitlines()]
    assert len(records) == 12 and records[0]["instruction"] == "What is 1 + 1?" and records[0]["answer"] == "2"
    assert records[0]["output"].endswith("The answer is: 2") and records[0]["id"] == "metamath-00000"
    source = json.loads((tmp_path / "source.json").read_text())
    assert source["sha256"] == {path.name: hashlib.sha256(path.read_bytes()).hexdigest()} and source["items"] == 12


def test_where_keeps_the_rows_of_the_chosen_kinds(tmp_path):
    rows = ROWS + [{"query": "Simplify x/2x.", "response": "The answer is: \\frac{1}{2}", "type": "MATH_AnsAug"}]
    entry = {**TRAIN_ENTRY, "path": str(parquet(tmp_path, rows))}
    spec = config_dataset("metamath", entry)
    with pytest.raises(DataError, match=r"item 12: field 'answer' should be a number"):
        hf.load(spec, entry, tmp_path / "full.jsonl", tmp_path / "source.json")
    assert hf.load(spec, {**entry, "where": {"type": ["GSM"]}}, tmp_path / "full.jsonl", tmp_path / "source.json") == 12


def test_all_of_metamathqa_as_peft_reads_it_free_text_answers_and_a_length_cap(tmp_path):
    """PEFT's benchmark trains on every row (MATH's LaTeX answers too) of at most 1300 characters."""
    long = {"query": "Add " + "1 + " * 400 + "1.", "response": "The answer is: 401", "type": "GSM"}
    rows = ROWS + [{"query": "Simplify x/2x.", "response": "The answer is: $\\frac{1}{2}$", "type": "MATH_AnsAug"},
                   long]
    entry = {**TRAIN_ENTRY, "answer_type": "text", "max_chars": 1300, "path": str(parquet(tmp_path, rows))}
    spec = config_dataset("metamath", entry)
    assert hf.load(spec, entry, tmp_path / "full.jsonl", tmp_path / "source.json") == 13  # the long row dropped
    records = [json.loads(line) for line in (tmp_path / "full.jsonl").read_text().splitlines()]
    assert records[-1]["answer"] == "$\\frac{1}{2}$" and records[0]["answer"] == "2"
    assert hf.load(spec, {**entry, "max_chars": None}, tmp_path / "all.jsonl", tmp_path / "s.json") == 14


def test_a_save_to_disk_folder_and_its_split(tmp_path):
    entry = {"format": "hf", "path": str(saved(tmp_path)), "hf_split": "test", "split": "eval", "answer_type": "number",
             "fields": {"instruction": "question", "answer": "label"}}
    records = hf.records(config_dataset("legs", entry), entry, hf.open_dataset("legs", entry))
    assert [r["answer"] for r in records] == ["4", "8", "12", "16", "20"] and records[0]["output"] == ""
    assert config_dataset("legs", entry).suite == "math"


@pytest.mark.parametrize("change, message", [
    ({"fields": {"instruction": "question", "output": "response"}}, r"item 0: missing field 'question'"),
    ({"answer_rule": "gsm8k"}, r"item 0: answer_rule 'gsm8k' finds no answer in column 'response'"),
    ({"hf_split": "validation"}, r"cannot load .*metamath.parquet split 'validation'"),
])
def test_bad_entries_name_the_dataset_item_and_column(tmp_path, change, message):
    entry = {**TRAIN_ENTRY, "path": str(parquet(tmp_path)), **change}
    spec = config_dataset("metamath", entry)
    with pytest.raises(DataError, match=message):
        hf.records(spec, entry, hf.open_dataset("metamath", entry))


def test_a_hub_dataset_not_in_the_cache_fails_clearly_offline(tmp_path):
    code = ("from pipeline_lib.data import hf\n"
            "hf.open_dataset('metamath', {'hub': 'meta-math/MetaMathQA', 'revision': '0' * 40})")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache"),
           "HF_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0
    assert "datasets.metamath: cannot load meta-math/MetaMathQA@0000000000" in done.stderr
    assert "offline (HF_HUB_OFFLINE=1) the dataset must already be in the datasets cache" in done.stderr


@pytest.mark.slow
def test_local_datasets_run_through_the_pipeline_and_a_changed_file_reruns_its_jobs(tmp_path, machine):
    path, folder = parquet(tmp_path), saved(tmp_path)
    overrides = {
        **machine,
        "datasets": {"metamath": {**TRAIN_ENTRY, "path": str(path)},
                     "legs": {"format": "hf", "path": str(folder), "hf_split": "test", "split": "eval",
                              "answer_type": "number", "fields": {"instruction": "question", "answer": "label"}}},
        "train_sets": ["metamath"], "eval_sets": ["legs", "gsm8k"], "include_base": False}
    work = tmp_path / "run"
    first = run(work, overrides, configfiles=ONE_LORA)
    assert first.returncode == 0, first.stderr[-4000:]
    counts = job_counts(first.stdout + first.stderr)
    assert counts["load_dataset"] == 2 and counts["fetch_data"] == 1 and counts["normalize_data"] == 1
    table = pd.read_csv(work / "results/tables/accuracy.csv")
    assert list(table.columns[4:6]) == ["legs", "gsm8k"] and "metamath" in set(table.train_set)
    assert json.loads((work / "results/data/full/legs.source.json").read_text())["items"] == 5
    assert "Nothing to be done" in run(work, overrides, "--dry-run", configfiles=ONE_LORA).stdout
    parquet(tmp_path, ROWS[:10])  # the training file changes: its load and everything trained on it re-run
    again = run(work, overrides, "--dry-run", configfiles=ONE_LORA)
    changed = job_counts(again.stdout + again.stderr)
    assert changed["load_dataset"] == 1 and changed["finetune"] == 1 and "fetch_data" not in changed
    assert changed["evaluate"] == 1  # the adapter's row (its two sets), nothing of the base


def test_the_metamath_example_config_dry_runs(tmp_path):
    result = run(tmp_path, {}, "--dry-run", configfiles=("config/metamath.yaml",))
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr)["load_dataset"] == 1
    assert "meta-math/MetaMathQA" in (ROOT / "config/metamath.yaml").read_text()
