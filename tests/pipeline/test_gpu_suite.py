"""benchmarks/gpu_suite.py at its tiny shape on the CPU: every part runs and writes its figures (on a GPU machine
the same script measures the LLaMA-7B shape)."""
import json
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow


def test_the_suite_runs_every_part_and_writes_json(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_suite.py"), str(tmp_path), "--tiny"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    read = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(read) == {"device", "cuda_check", "pipeline", "train_throughput", "eval_throughput"}
    device = read["device"]
    assert device["device"] == "cpu" and device["matmul_peak_tflops"] > 0 and device["precision"]["requested"] == "auto"
    assert read["pipeline"]["cpu"]["returncode"] == 0 and "lora" in read["pipeline"]["cpu"]["accuracy"]
    train = read["train_throughput"]
    assert train["ours"]["tokens_per_s"] > 0 and train["trainer"]["tokens_per_s"] > 0
    assert train["ours_over_trainer"] == pytest.approx(train["ours"]["tokens_per_s"] / train["trainer"]["tokens_per_s"])
    # utilisation against the peak of the precision actually trained in (no bound that depends on the CPU)
    assert train["autocast"] == device["precision"]["chosen"] and train["peak_flops"] == pytest.approx(
        1e12 * device["matmul_peak_tflops"])
    for trainer in ("ours", "trainer"):
        assert train[trainer]["mfu"] > 0 and train[trainer]["mfu"] == pytest.approx(
            train[trainer]["tokens_per_s"] * train["ours"]["mfu"] / train["ours"]["tokens_per_s"])
    evaluation = read["eval_throughput"]
    assert evaluation["ours"]["items_per_s"] > 0 and evaluation["ours_over_upstream"] > 0
    # MFU as the pipeline records it, for training and for generation (prefill and decoding apart)
    for spent in (train["ours"]["efficiency"], evaluation["ours"]["efficiency"]):
        assert 0 < spent["mfu"] < 1 and spent["peak_flops_per_s"] > 0
    assert set(evaluation["ours"]["efficiency"]["model_flops"]) == {"prefill", "decode"}
