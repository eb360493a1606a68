"""Snakemake killed (SIGKILL, whole process group) in the middle of a fine-tune, then unlocked and re-run:
the fine-tune resumes from its checkpoint, and the adapter equals that of an uninterrupted run."""
import os
import signal
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from snakemake_run import popen, run

pytestmark = pytest.mark.slow


def test_killed_finetune_resumes_under_snakemake(tmp_path, tiny_dir, data_mirror):
    import json

    overrides = {
        "model_defs": {"tiny-llama": {"path": str(tiny_dir)}}, "data": {"mirror": str(data_mirror)},
        "adapters": {"lora": {"method": "lora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.1,
                              "target_modules": ["q_proj", "v_proj", "up_proj"]}},
        "include_base": False, "eval_sets": ["MultiArith"],
        "training": {"max_steps": 100, "checkpoint_every": 10}}
    target = "results/adapters/tiny-llama/lora/gsm8k_train"
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    proc = popen(killed_dir, overrides, target, cores=1, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed_dir / f"{target}.checkpoint" / "last.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists(), "the fine-tune ended before it could be killed"
    assert not (killed_dir / target).exists()  # nothing half-written under the final name

    assert run(killed_dir, overrides, "--unlock", cores=1).returncode == 0
    again = run(killed_dir, overrides, target, "--rerun-incomplete", cores=1, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    metrics = json.loads((killed_dir / target / "metrics.json").read_text())
    assert metrics["resumed_from_step"] >= 10 and len(metrics["loss"]) == 100
    assert not checkpoint.parent.exists()  # cleaned up after success

    clean = run(clean_dir, overrides, target, cores=1, timeout=600)
    assert clean.returncode == 0, clean.stderr[-3000:]
    a = load_file(killed_dir / target / "adapter_model.safetensors")
    b = load_file(clean_dir / target / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
