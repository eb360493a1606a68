"""Tuning through the real Snakefile on the tiny model: two adapters, two trials each, chosen on a validation split
carved from the training set; the DAG shows no selection job reads a test set's prediction or score."""
import json
import re

import pandas as pd
import pytest

from helpers import job_counts, run
from pipeline_lib.runtime.files import read_jsonl

pytestmark = pytest.mark.slow
TUNING = ("tests/configs/tiny-tuning.yaml",)


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory, machine):
    workdir = tmp_path_factory.mktemp("tuning")
    done = run(workdir, machine, configfiles=TUNING, timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    return workdir, done.stdout + done.stderr


def test_trials_validate_select_and_the_chosen_setting_is_trained_and_tested(tuned_run):
    workdir, out = tuned_run
    counts = job_counts(out)
    # fine-tunes: 2 configured + 2 x 2 trials + 2 tuned; evaluations: base, 2 configured, 2 tuned on MultiArith
    assert (counts["finetune"], counts["validate"], counts["select_setting"], counts["evaluate"]) == (8, 4, 2, 5)
    for adapter in ("lora", "series"):
        selection = json.loads((workdir / f"results/tuning/tiny-llama/{adapter}/gsm8k_train/selection.json")
                               .read_text())
        trials = selection["trials"]
        assert len(trials) == 2 and selection["budget"]["trials"] == 2
        best = max(trials, key=lambda t: (t["accuracy"], -t["loss"]))
        assert selection["chosen"]["trial"] == best["trial"]
        tuned = json.loads((workdir / f"results/adapters/tiny-llama/{adapter}.tuned/gsm8k_train/metrics.json")
                           .read_text())
        assert tuned["training"]["learning_rate"] == selection["chosen"]["values"]["learning_rate"]
        assert tuned["adapter"] == f"{adapter}.tuned"
    tables = workdir / "results/tables"
    assert len(pd.read_csv(tables / "tuning.csv")) == 4
    versus = pd.read_csv(tables / "tuned_vs_default.csv")
    assert set(versus.adapter) == {"lora", "series"} and set(versus.dataset) == {"MultiArith"}  # one set: no average
    assert len(pd.read_csv(tables / "rank_stability.csv")) == 1
    assert (workdir / "results/figures/sensitivity.png").stat().st_size > 10_000


def test_the_validation_split_is_never_trained_on_nor_a_test_question(tuned_run):
    workdir, _ = tuned_run
    validation = {r["id"]: r for r in read_jsonl(workdir / "results/data/val/gsm8k_train.jsonl")}
    trained = {r["id"] for r in read_jsonl(workdir / "results/data/train/gsm8k_train.jsonl")}
    tested = {r["instruction"] for r in read_jsonl(workdir / "results/data/full/MultiArith.jsonl")}
    assert len(validation) == 4 and not set(validation) & trained
    assert not {r["instruction"] for r in validation.values()} & tested


def test_no_selection_job_reads_a_test_set(tuned_run, machine):
    """The DAG, as Snakemake builds it: no evaluation job (a test set's predictions and score) is an ancestor of a
    selection job."""
    workdir, _ = tuned_run
    dag = run(workdir, machine, "--dag", "--forceall", configfiles=TUNING)
    assert dag.returncode == 0, dag.stderr[-3000:]
    labels = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)', dag.stdout, re.M))
    parents: dict[str, set[str]] = {}
    for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dag.stdout, re.M):
        parents.setdefault(b, set()).add(a)

    def ancestors(node):
        seen, todo = set(), [node]
        while todo:
            for p in parents.get(todo.pop(), ()):
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return seen
    selections = [n for n, rule in labels.items() if rule == "select_setting"]
    assert len(selections) == 2
    for node in selections:
        upstream = {labels[a] for a in ancestors(node)}
        assert "validate" in upstream and "finetune" in upstream
        assert "evaluate" not in upstream and "render" not in upstream, upstream
    assert any(labels[a] == "select_setting" for n, rule in labels.items() if rule == "evaluate"
               for a in ancestors(n))  # the tuned rows' tests come after their selection
