"""benchmarks/gpu_suite.py at its tiny shape on the CPU: every part runs and writes its figures (on a GPU machine
the same script measures the LLaMA-7B shape)."""
import json
import subprocess
import sys

import pytest

from snakemake_run import ROOT

pytestmark = pytest.mark.slow


def test_the_suite_runs_every_part_and_writes_json(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_suite.py"), str(tmp_path), "--tiny"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    read = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(read) == {"device", "cuda_check", "pipeline", "train_throughput", "eval_throughput"}
    assert read["device"]["device"] == "cpu" and read["device"]["bf16_matmul_peak_tflops"] > 0
    assert read["pipeline"]["cpu"]["returncode"] == 0 and "lora" in read["pipeline"]["cpu"]["accuracy"]
    train = read["train_throughput"]
    assert train["ours"]["tokens_per_s"] > 0 and train["trainer"]["tokens_per_s"] > 0
    assert train["ours_over_trainer"] == pytest.approx(train["ours"]["tokens_per_s"] / train["trainer"]["tokens_per_s"])
    assert 0 < train["ours"]["mfu"] < 1.5
    evaluation = read["eval_throughput"]
    assert evaluation["ours"]["items_per_s"] > 0 and evaluation["ours_over_upstream"] > 0
