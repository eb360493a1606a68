"""Protocols under Snakemake: each (row, set, protocol) its own cached job, the tables in one block per protocol
with an agreement table, and a protocol added to a finished run re-runs only its own jobs."""
import json

import pandas as pd
import pytest

from helpers import ONE_LORA, job_counts, merged, run

pytestmark = pytest.mark.slow
pytest.importorskip("lm_eval")


def test_protocols_are_cached_jobs_with_tables_per_protocol(tmp_path, machine):
    config = merged(machine, {"eval_sets": ["winogrande", "MultiArith"],
                              "evaluation": {"protocols": ["generate", "harness"]}})
    done = run(tmp_path, config, configfiles=ONE_LORA)
    assert done.returncode == 0, done.stderr[-4000:]
    # a job per row (2), each over 2 sets under generate and the commonsense set under harness
    assert job_counts(done.stdout + done.stderr)["evaluate"] == 2
    table = pd.read_csv(tmp_path / "results/tables/accuracy.csv")
    assert list(dict.fromkeys(table.protocol)) == ["generate", "harness"]  # one block each
    assert table[table.protocol == "harness"].MultiArith.isna().all()  # no options to choose from
    score = json.loads((tmp_path / "results/scores/tiny-llama/lora/gsm8k_train/harness/winogrande.json").read_text())
    assert score["n"] == 3 and score["protocol"] == "harness" and "acc_stderr" in score["lm_eval"]
    assert score["accuracy"] == pytest.approx(score["lm_eval"]["acc"])
    agreement = pd.read_csv(tmp_path / "results/tables/agreement.csv")
    assert set(zip(agreement.A, agreement.B)) == {("generate", "harness")} and len(agreement) == 2  # both rows
    assert set(agreement.dataset) == {"winogrande"} and (agreement.n == 3).all()
    significance = pd.read_csv(tmp_path / "results/tables/significance.csv")
    assert set(significance.protocol) == {"generate", "harness"}  # rows compared within a protocol
    # one more protocol: the rows' evaluation jobs (which keep the sets they made) and the render re-run
    grown = merged(config, {"evaluation": {"protocols": ["generate", "harness", "harness_labels"]}})
    again = run(tmp_path, grown, "--dry-run", configfiles=ONE_LORA)
    assert job_counts(again.stdout + again.stderr) == {"evaluate": 2, "render": 1, "all": 1}
