"""Data-parallel fine-tuning, run for real on CPU: the fine-tune entry point launched by torchrun with two gloo
processes ends with the same adapter (to float tolerance) and the same loss curve as one process; the launch
command the pipeline builds for a multi-GPU fine-tune is checked in tests/planning/test_config.py's dry runs."""
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from helpers import RECORDS, ROOT
from pipeline_lib.runtime.gpu import launcher
from pipeline_lib.training import distributed

ADAPTER = {"method": "lora", "r": 4, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
TRAINING = {"max_steps": 3, "batch_size": 8, "micro_batch_size": 2, "warmup_steps": 1, "learning_rate": 1e-2,
            "checkpoint_every": 2}


def command(tiny_dir, data, out, processes, adapter=ADAPTER, training=TRAINING) -> list[str]:
    return [sys.executable, *launcher(processes), str(ROOT / "scripts/finetune.py"),
            "--model", str(tiny_dir), "--data", str(data), "--out", str(out), "--adapter", json.dumps(adapter),
            "--training", json.dumps(training), "--device", "cpu", "--threads", "1"]


def finetune(tiny_dir, data, out, processes, **specs):
    done = subprocess.run(command(tiny_dir, data, out, processes, **specs), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def test_launcher_is_empty_for_one_device_and_torchrun_for_several():
    assert launcher(1) == []
    assert launcher(4)[-1] == "--nproc-per-node=4"
    assert distributed.share(list(range(8)), 1, 4) == [1, 5]


def test_two_processes_train_like_one(tiny_dir, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    one = finetune(tiny_dir, data, tmp_path / "one", 1)
    two = finetune(tiny_dir, data, tmp_path / "two", 2)
    assert (one["processes"], two["processes"]) == (1, 2)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-4)
    assert two["tokens"] == one["tokens"]
    a = load_file(tmp_path / "one" / "adapter_model.safetensors")
    b = load_file(tmp_path / "two" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    assert not (tmp_path / "two.checkpoint").exists()  # removed once the adapter is written


def test_two_processes_resume_with_each_ranks_dropout(tiny_dir, tmp_path):
    """Each rank draws its own dropout masks (its share of the micro-batches): a two-process fine-tune stopped by
    SIGTERM saves every rank's random state and resumes to the uninterrupted two-process run's adapter, bit for
    bit (with rank 0's state restored on both ranks, rank 1's masks would differ from there on)."""
    import os
    import signal
    import time

    adapter = {**ADAPTER, "lora_dropout": 0.1}
    training = {**TRAINING, "max_steps": 40, "checkpoint_every": 4}
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    whole = finetune(tiny_dir, data, tmp_path / "whole", 2, adapter=adapter, training=training)
    out = tmp_path / "stopped"
    proc = subprocess.Popen(command(tiny_dir, data, out, 2, adapter=adapter, training=training),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    checkpoint = tmp_path / "stopped.checkpoint" / "last.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)  # torchrun and both workers, as a scheduler signals a job's processes
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "SIGTERM at step" in err, err[-3000:]
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["step"] < 40 and len(saved["rank_rng"]) == 2
    assert not torch.equal(saved["rank_rng"][0]["torch"], saved["rank_rng"][1]["torch"])  # the ranks' own draws
    resumed = finetune(tiny_dir, data, out, 2, adapter=adapter, training=training)
    assert resumed["resumed_from_step"] == saved["step"] > 0 and resumed["loss"] == whole["loss"]
    a = load_file(tmp_path / "whole" / "adapter_model.safetensors")
    b = load_file(out / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
