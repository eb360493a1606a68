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


def finetune(tiny_dir, data, out, processes):
    cmd = [sys.executable, *launcher(processes), str(ROOT / "scripts/finetune.py"),
           "--model", str(tiny_dir), "--data", str(data), "--out", str(out), "--adapter", json.dumps(ADAPTER),
           "--training", json.dumps(TRAINING), "--device", "cpu", "--threads", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
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
