"""End to end on the real Snakefile: a tiny random LLaMA, a few real items per set from the data mirror."""
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from browser import chromium
from helpers import job_counts, run
from pipeline_lib.evaluation.extraction import score
from pipeline_lib.runtime.files import read_jsonl

pytestmark = pytest.mark.slow
ROWS = [("base", "none"), ("lora", "gsm8k_train"), ("series", "gsm8k_train"), ("parallel", "gsm8k_train")]
EVAL_SETS = ["gsm8k", "AQuA", "MultiArith"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_dir, data_mirror):
    workdir = tmp_path_factory.mktemp("tiny-run")
    overrides = {"model_defs": {"tiny-llama": {"path": str(tiny_dir)}}, "data": {"mirror": str(data_mirror)},
                 "costs": {"forgetting": {"tokens": 96, "sequence_length": 32}, "merging": {"items": 3}}}
    first = run(workdir, overrides)
    assert first.returncode == 0, first.stderr[-4000:]
    return workdir, overrides, first


def test_job_counts_per_rule(tiny_run):
    _, _, first = tiny_run
    assert job_counts(first.stderr + first.stdout) == {
        "fetch_data": 4, "normalize_data": 4, "contamination": 1, "prepare_data": 4, "finetune": 3, "evaluate": 4,
        "forgetting": 3, "forgetting_base": 1, "merging": 1, "render": 1, "all": 1}  # merging: LoRA only (the bottlenecks cannot merge)


def test_scores_agree_with_predictions(tiny_run):
    workdir = tiny_run[0]
    for adapter, train in ROWS:
        for dataset in EVAL_SETS:
            s = json.loads((workdir / f"results/scores/tiny-llama/{adapter}/{train}/generate/{dataset}.json").read_text())
            preds = read_jsonl(workdir / f"results/predictions/tiny-llama/{adapter}/{train}/generate/{dataset}.jsonl")
            items = {r["id"]: r for r in read_jsonl(workdir / f"results/data/eval/{dataset}.jsonl")}
            assert s["n"] == len(preds) == len(items) == 3
            assert (s["model"], s["adapter"], s["train_set"], s["dataset"]) == ("tiny-llama", adapter, train, dataset)
            for p in preds:
                item = items[p["id"]]
                assert p["gold"] == item["answer"]
                assert score(item["answer_type"], p["response"], item["answer"])[1] == p["correct"]
            assert s["accuracy"] == sum(p["correct"] for p in preds) / 3


def test_table_shape_and_contents(tiny_run):
    workdir = tiny_run[0]
    table = pd.read_csv(workdir / "results/tables/accuracy.csv")
    assert list(table.columns) == ["model", "adapter", "train_set", "protocol", *EVAL_SETS, "average", "marks"]
    assert set(table.protocol) == {"generate"}
    assert table["marks"].isna().all()  # gsm8k_train holds none of these test questions
    assert sorted(zip(table.adapter, table.train_set)) == sorted(ROWS)
    for _, row in table.iterrows():
        for dataset in EVAL_SETS:
            s = json.loads((workdir / f"results/scores/tiny-llama/{row.adapter}/{row.train_set}/generate/{dataset}.json")
                           .read_text())
            assert row[dataset] == pytest.approx(round(100 * s["accuracy"], 1))
        assert row.average == pytest.approx(round(sum(row[d] for d in EVAL_SETS) / 3, 1), abs=0.06)
    assert (workdir / "results/figures/accuracy.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((workdir / "results/adapters/tiny-llama/lora/gsm8k_train/metrics.json").read_text())
    assert metrics["steps"] == 2 and len(metrics["loss"]) == 2 and metrics["trainable_params"] > 0
    for rule in ["fetch_data", "normalize_data", "contamination", "prepare_data", "finetune", "evaluate", "render"]:
        assert any((workdir / "logs" / rule).rglob("*.log")), rule


def test_second_run_executes_nothing(tiny_run):
    workdir, overrides, _ = tiny_run
    again = run(workdir, overrides)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_switching_from_the_mirror_to_downloads_reruns_nothing(tiny_run):
    """Where the (sha256-verified) data files come from is no setting of any job."""
    workdir, overrides, _ = tiny_run
    download = {**overrides, "data": {"mirror": None, "base_url": "http://127.0.0.1:9"}}
    dry = run(workdir, download, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]


def test_changing_one_adapter_reruns_only_its_jobs(tiny_run):
    workdir, overrides, _ = tiny_run
    changed = {**overrides, "adapters": {"lora": {"method": "lora", "r": 8, "lora_alpha": 8,
                                                  "target_modules": ["q_proj", "v_proj", "up_proj"]}}}
    dry = run(workdir, changed, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert job_counts(dry.stdout + dry.stderr) == {"finetune": 1, "evaluate": 1, "forgetting": 1, "merging": 1,
                                                   "render": 1, "all": 1}


def test_a_set_added_evaluates_that_set_alone_in_each_rows_job(tiny_run, tmp_path):
    """One evaluation job per row: adding a set re-runs each row's job, which keeps the sets it made from the same
    inputs, settings and code (the same files, byte for byte, said in its log) and generates the new set. (The new
    set also re-runs the contamination check, and what it re-makes: a fine-tune re-made to the same weights is the
    same input.)"""
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run[0], workdir, symlinks=True)
    made = {p: p.read_bytes() for p in (workdir / "results").glob("[ps][rc]*/tiny-llama/*/*/generate/*.json*")}
    assert len(made) == 2 * len(ROWS) * len(EVAL_SETS)
    grown = run(workdir, {**tiny_run[1], "eval_sets": [*EVAL_SETS, "SingleEq"]})
    assert grown.returncode == 0, grown.stderr[-4000:]
    counts = job_counts(grown.stdout + grown.stderr)
    assert counts["evaluate"] == len(ROWS), counts
    assert all(p.read_bytes() == content for p, content in made.items())
    for adapter, train in ROWS:
        log = (workdir / f"logs/evaluate/tiny-llama/{adapter}/{train}.log").read_text()
        assert log.count(": kept (made from the same inputs") == len(EVAL_SETS), log[-2000:]
        score = json.loads((workdir / f"results/scores/tiny-llama/{adapter}/{train}/generate/SingleEq.json")
                           .read_text())
        assert score["resumed_items"] == 0 and score["generated_rows"] == score["n"] > 0


def test_every_table_and_figure_is_written_and_declared(tiny_run):
    from pipeline_lib.report import outputs

    workdir = tiny_run[0]
    written = {str(p.relative_to(workdir)) for d in ("results/tables", "results/figures")
               for p in (workdir / d).iterdir()} | {"results/explorer.html"}
    # a file written is a file the render rule declares (the tiny run measures forgetting)
    assert written == set(outputs.declared_files({}, ["generate"], forgetting=True))
    for path in written:
        assert (workdir / path).stat().st_size > 0, path
    resources = pd.read_csv(workdir / "results/tables/resources.csv").set_index("adapter")
    assert sorted(resources.index) == ["lora", "parallel", "series"] and (resources["trainable params"] > 0).all()
    # the costs: forgetting for every fine-tune, merged = unmerged for the one that merges (float32: all agree)
    assert resources["forgetting (Δ CE)"].notna().all() and resources.loc["lora", "merged = unmerged"] == "3/3"
    assert set(resources.loc[["series", "parallel"], "merged = unmerged"]) == {"not merged"}
    # the total is training plus every evaluation of the fine-tune, each rounded to 10 ms
    assert (resources["eval time (s)"] > 0).all()
    assert ((resources["total time (s)"] - resources["train time (s)"] - resources["eval time (s)"]).abs()
            <= 0.011).all()
    # MFU on record: every fine-tune and its generating evaluations, against the CPU's measured peak
    assert resources["train MFU (%)"].between(0, 100, inclusive="neither").all()
    assert resources["eval MFU (%)"].between(0, 100, inclusive="neither").all()
    score = json.loads((workdir / "results/scores/tiny-llama/lora/gsm8k_train/generate/gsm8k.json").read_text())
    spent = score["efficiency"]
    assert set(spent["model_flops"]) == {"prefill", "decode"} and spent["peak_source"].startswith("measured")
    assert spent["mfu"] == pytest.approx(sum(spent["model_flops"].values()) / sum(spent["seconds"].values())
                                         / spent["peak_flops_per_s"], abs=1e-4)  # recorded to 4 decimals
    forgot = json.loads((workdir / "results/costs/tiny-llama/lora/gsm8k_train/forgetting.json").read_text())
    assert forgot["reference"]["kind"] == "builtin" and forgot["tokens_scored"] > 0
    assert forgot["forgetting"] == pytest.approx(forgot["cross_entropy_enabled"] - forgot["cross_entropy_disabled"],
                                                 abs=2e-6)
    card = pd.read_csv(workdir / "results/tables/protocol_card.csv")
    recorded = dict(zip(card.setting, card.value))
    assert recorded["training precision"] and "torch" in recorded["versions"] and "peft" in recorded["versions"]
    assert "train_on_inputs True" in recorded["examples"] and "python-docs" in recorded["forgetting"]
    assert "Protocol:" in (workdir / "results/tables/accuracy_ci.md").read_text()
    significance = pd.read_csv(workdir / "results/tables/significance.csv")
    assert len(significance) == (3 + 1) * 6  # every pair of the 4 rows, on each of the 3 datasets and the average
    assert "reproduces no published cell" in (workdir / "results/tables/published.md").read_text()
    for name in ["accuracy", "tradeoff", "loss", "time", "pareto"]:
        assert (workdir / f"results/figures/{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (workdir / f"results/figures/{name}.pdf").read_bytes()[:5] == b"%PDF-"


def test_html_report_holds_every_table_and_figure(tiny_run):
    workdir, overrides, _ = tiny_run
    built = run(workdir, overrides, "--report", "results/report.html")
    assert built.returncode == 0, built.stderr[-3000:]
    html = (workdir / "results/report.html").read_text(errors="replace")
    from pipeline_lib.report import outputs

    captioned = [Path(o.reported_file()).name for o in outputs.applicable({}, ["generate"]) if o.caption]
    assert {"accuracy_ci.csv", "accuracy_seeds.csv", "contamination.csv", "time.png"} <= set(captioned)
    for name in captioned:
        assert name in html, name
    assert "Every pair of rows evaluated on the same items" in html  # a caption
    assert "PEFT benchmark pipeline (LLM-Adapters reproduction)" in html  # the workflow description


def test_tables_target_renders_into_interim_without_touching_the_runs_tables(tiny_run):
    """`snakemake tables` trains and evaluates nothing and writes results/interim/: a live run's tables (its render
    job's outputs, which Snakemake tracks) are never overwritten by a look at partial results."""
    workdir, overrides, _ = tiny_run
    final = {p: p.stat().st_mtime_ns for p in (workdir / "results/tables").iterdir()}
    again = run(workdir, overrides, "tables")
    assert again.returncode == 0, again.stderr[-3000:]
    assert job_counts(again.stdout + again.stderr) == {"tables": 1}
    interim = workdir / "results/interim/tables/accuracy_ci.md"
    assert interim.read_text() == (workdir / "results/tables/accuracy_ci.md").read_text()
    assert {p: p.stat().st_mtime_ns for p in (workdir / "results/tables").iterdir()} == final
    assert (workdir / "results/interim/figures/accuracy.png").is_file()
    assert "Nothing to be done" in run(workdir, overrides, "--dry-run").stdout  # nothing else became stale


def test_rows_made_by_other_code_are_named_under_the_table(tiny_run, tmp_path):
    """A score whose recorded stage code is not the checkout's (a run that opted out of the `code` rerun trigger,
    or results copied from elsewhere) is named under the accuracy table, with the code that made it; in a copy of
    the run, so that the run itself stays as it was."""
    workdir, overrides, _ = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True)
    score = copy / "results/scores/tiny-llama/lora/gsm8k_train/generate/gsm8k.json"
    record = json.loads(score.read_text())
    record["provenance"]["code"]["stage"] = "0123456789abcdef"
    score.write_text(json.dumps(record))
    again = run(copy, overrides, "tables")
    assert again.returncode == 0, again.stderr[-3000:]
    table = (copy / "results/interim/tables/accuracy_ci.md").read_text()
    note = re.search(r"1 of (\d+) scores were made by other evaluate code \(0123456789abcdef\) than this checkout's "
                     r"\(\w+\): tiny-llama lora gsm8k_train generate on gsm8k\. Re-run them", table)
    assert note and int(note.group(1)) > 1, table[-2000:]
    assert "WARNING: 1 of" in (copy / "logs/tables/tables.log").read_text()  # and said while rendering
    assert "other evaluate code" not in (workdir / "results/tables/accuracy_ci.md").read_text()


def test_base_only_run_downloads_without_a_mirror_and_evaluates_a_config_dataset(tmp_path, tiny_dir, upstream_server):
    """No training sets (lm-eval style: models as they are), no mirror (files downloaded from a local server
    with raw GitHub's layout), and an evaluation set added by configuration alone."""
    import hashlib

    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps([{"instruction": f"What is {i} + {i}?", "input": "", "output": "", "answer": str(2 * i)}
                                for i in range(1, 5)]))
    overrides = {"model_defs": {"tiny-llama": {"path": str(tiny_dir)}},
                 "data": {"mirror": None, "base_url": upstream_server, "eval_limit": 3},
                 "datasets": {"mine": {"path": str(mine), "sha256": hashlib.sha256(mine.read_bytes()).hexdigest(),
                                       "format": "llm_adapters", "split": "eval", "answer_type": "number"}},
                 "train_sets": [], "eval_sets": ["gsm8k", "mine"]}
    result = run(tmp_path / "run", overrides)
    assert result.returncode == 0, result.stderr[-4000:]
    assert job_counts(result.stdout + result.stderr) == {
        "fetch_data": 2, "normalize_data": 2, "contamination": 1, "prepare_data": 2, "evaluate": 1, "render": 1,
        "all": 1}
    table = pd.read_csv(tmp_path / "run/results/tables/accuracy.csv")
    assert list(zip(table.adapter, table.train_set)) == [("base", "none")]
    assert json.loads((tmp_path / "run/results/scores/tiny-llama/base/none/generate/mine.json").read_text())["n"] == 3
    assert json.loads((tmp_path / "run/results/data/contamination.json").read_text())["pairs"] == {}


def test_adapter_only_run(tiny_run, tmp_path, tiny_dir, data_mirror):
    """Without the base model: a fresh run plans the fine-tunes and their evaluations, none of the base model (its
    dry run); on a copy of the tiny run, whose fine-tunes and evaluations are these, it trains and evaluates nothing
    again and tabulates the adapters alone."""
    overrides = {"model_defs": {"tiny-llama": {"path": str(tiny_dir)}}, "data": {"mirror": str(data_mirror)},
                 "include_base": False}
    planned = run(tmp_path / "fresh", overrides, "--dry-run")
    assert planned.returncode == 0, planned.stderr[-4000:]
    assert job_counts(planned.stdout + planned.stderr) == {
        "fetch_data": 4, "normalize_data": 4, "contamination": 1, "prepare_data": 4, "finetune": 3, "evaluate": 3,
        "render": 1, "all": 1}
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run[0], workdir, symlinks=True)
    result = run(workdir, overrides)
    assert result.returncode == 0, result.stderr[-4000:]
    assert job_counts(result.stdout + result.stderr) == {"render": 1, "all": 1}
    table = pd.read_csv(workdir / "results/tables/accuracy.csv")
    assert sorted(table.adapter) == ["lora", "parallel", "series"] and set(table.train_set) == {"gsm8k_train"}
    pairs = pd.read_csv(workdir / "results/tables/significance.csv")
    # 3 pairs of adapters on each of 3 sets and on the average
    assert len(pairs) == 3 * (3 + 1) and not any(pairs.A.str.startswith("base") | pairs.B.str.startswith("base"))


def test_the_explorer_page_works_in_a_real_browser(tiny_run, tmp_path):
    """results/explorer.html in headless Chromium: no console errors, the run's cells shown, a filter narrows
    them, the scatter draws a point per row, and a screenshot is written."""
    from selenium.webdriver.support.ui import Select

    workdir = tiny_run[0]
    browser = chromium()
    try:
        browser.get((workdir / "results/explorer.html").as_uri())
        rows = browser.find_elements("css selector", "#results tbody tr")
        assert len(rows) == len(ROWS) * len(EVAL_SETS)
        assert len(browser.find_elements("css selector", "#scatter circle.point")) == len(ROWS) - 1  # base: no costs
        Select(browser.find_element("id", "filter-adapter")).select_by_visible_text("lora")
        assert len(browser.find_elements("css selector", "#results tbody tr")) == len(EVAL_SETS)
        assert browser.find_element("id", "count").text == f"{len(EVAL_SETS)} of {len(ROWS) * len(EVAL_SETS)} rows shown"
        assert len(browser.find_elements("css selector", "#scatter circle.point")) == 1  # the scatter follows
        Select(browser.find_element("id", "filter-adapter")).select_by_visible_text("(all)")
        browser.find_elements("css selector", "#results thead th")[5].click()  # sort by accuracy
        shown = [float(r.find_elements("css selector", "td")[5].text) for r in
                 browser.find_elements("css selector", "#results tbody tr")]
        assert shown == sorted(shown)
        screenshot = tmp_path / "explorer.png"
        assert browser.save_screenshot(str(screenshot)) and screenshot.read_bytes()[:4] == b"\x89PNG"
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        print(f"explorer screenshot: {screenshot}")
    finally:
        browser.quit()
