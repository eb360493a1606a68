"""A fine-tune killed with SIGKILL and run again resumes from its last checkpoint and ends with the same
adapter weights, bit for bit, as an uninterrupted run with the same seed."""
import json
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from snakemake_run import ROOT

SCRIPT = """
import json, os, signal, sys
sys.path[:0] = [{root!r}, {tests!r}]
import torch
from safetensors.torch import save_file
from pipeline_lib import adapters, models
from pipeline_lib.training import TrainConfig, train
from test_training import RECORDS

tiny_dir, ckpt, out, kill_at = sys.argv[1], sys.argv[2] or None, sys.argv[3], int(sys.argv[4])
model, tok = models.load(tiny_dir)
torch.manual_seed(0)
model = adapters.attach(model, {{"method": "lora", "r": 4, "lora_dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}})
cfg = TrainConfig(max_steps=7, batch_size=4, micro_batch_size=2, warmup_steps=1, learning_rate=1e-2,
                  checkpoint_every=2)

def on_checkpoint(step):
    if kill_at and step >= kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

metrics = train(model, tok, RECORDS, cfg, progress=False, checkpoint_dir=ckpt, fingerprint="same-inputs",
                on_checkpoint=on_checkpoint)
save_file({{n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}}, out)
print(json.dumps({{k: metrics[k] for k in ("resumed_from_step", "loss", "segments", "wall_time_s", "tokens",
                                          "tokens_per_s")}}))
"""


@pytest.fixture()
def run(tmp_path, tiny_dir):
    script = tmp_path / "train_once.py"
    script.write_text(SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests")))

    def _run(checkpoint_dir, out, kill_at=0):
        return subprocess.run([sys.executable, str(script), str(tiny_dir), str(checkpoint_dir or ""), str(out),
                               str(kill_at)], capture_output=True, text=True, timeout=300)
    return _run


def test_sigkilled_finetune_resumes_to_identical_weights(run, tmp_path):
    ckpt = tmp_path / "ckpt"
    killed = run(ckpt, tmp_path / "a.safetensors", kill_at=4)
    assert killed.returncode == -signal.SIGKILL
    saved = torch.load(ckpt / "last.pt", weights_only=True)
    assert saved["step"] == 4 and saved["wall_time_s"] > 0
    resumed = run(ckpt, tmp_path / "a.safetensors")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    uninterrupted = run(None, tmp_path / "b.safetensors")
    metrics, whole = (json.loads(r.stdout.splitlines()[-1]) for r in (resumed, uninterrupted))
    assert metrics["resumed_from_step"] == 4 and metrics["loss"] == whole["loss"]
    # time and throughput cover both segments, not only the one after the resumption
    assert metrics["segments"] == 2 and metrics["wall_time_s"] > saved["wall_time_s"]
    assert metrics["tokens"] == whole["tokens"] and metrics["tokens_per_s"] == \
        pytest.approx(metrics["tokens"] / metrics["wall_time_s"], rel=0.01)
    a, b = load_file(tmp_path / "a.safetensors"), load_file(tmp_path / "b.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_other_inputs_or_damaged_is_not_used(tmp_path):
    from pipeline_lib import checkpoints

    checkpoints.save(tmp_path, {"fingerprint": "x", "step": 3})
    assert checkpoints.load(tmp_path, "x")["step"] == 3
    assert checkpoints.load(tmp_path, "y") is None
    (tmp_path / checkpoints.NAME).write_bytes(b"truncated")
    assert checkpoints.load(tmp_path, "x") is None
