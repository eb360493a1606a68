"""A fine-tune killed with SIGKILL (or stopped by SIGTERM) and run again resumes from its last checkpoint and ends with the same
adapter weights, bit for bit, as an uninterrupted run with the same seed."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from helpers import RECORDS, ROOT, tests_env


def train_until_killed(tiny_dir, checkpoint_dir, out, kill_at=0, how="KILL"):
    cmd = [sys.executable, str(ROOT / "tests/training/train_until_killed.py"), str(tiny_dir), str(out),
           "--kill-at", str(kill_at), "--how", how]
    cmd += ["--checkpoint-dir", str(checkpoint_dir)] if checkpoint_dir else []
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=tests_env())


@pytest.fixture()
def run(tiny_dir):
    return lambda *args, **kwargs: train_until_killed(tiny_dir, *args, **kwargs)


@pytest.fixture(scope="module")
def uninterrupted(tiny_dir, tmp_path_factory) -> tuple[dict, dict]:
    """The same fine-tune never interrupted: its metrics and weights (one run for the tests below)."""
    out = tmp_path_factory.mktemp("uninterrupted") / "b.safetensors"
    done = train_until_killed(tiny_dir, None, out)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1]), load_file(out)


def test_sigkilled_finetune_resumes_to_identical_weights(run, uninterrupted, tmp_path):
    ckpt = tmp_path / "ckpt"
    killed = run(ckpt, tmp_path / "a.safetensors", kill_at=4)
    assert killed.returncode == -signal.SIGKILL
    saved = torch.load(ckpt / "last.pt", weights_only=True)
    assert saved["step"] == 4 and saved["wall_time_s"] > 0
    resumed = run(ckpt, tmp_path / "a.safetensors")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics, (whole, b) = json.loads(resumed.stdout.splitlines()[-1]), uninterrupted
    assert metrics["resumed_from_step"] == 4 and metrics["loss"] == whole["loss"]
    # time and throughput cover both segments, not only the one after the resumption
    assert metrics["segments"] == 2 and metrics["wall_time_s"] > saved["wall_time_s"]
    # over the whole time (the last segment alone would give about twice the rate); wall_time_s is rounded
    assert metrics["tokens"] == whole["tokens"] and metrics["tokens_per_s"] == \
        pytest.approx(metrics["tokens"] / metrics["wall_time_s"], rel=0.1)
    a = load_file(tmp_path / "a.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_saves_the_step_in_flight_and_the_retry_resumes_there(run, uninterrupted, tmp_path):
    """SIGTERM (SLURM's notice before a time limit or preemption: profiles/slurm) during step 3, between the
    checkpoints at steps 2 and 4: the step ends, a checkpoint of step 3 is saved, the process exits 143; the run
    again resumes at step 3 and ends with the uninterrupted run's weights, bit for bit."""
    ckpt = tmp_path / "ckpt"
    stopped = run(ckpt, tmp_path / "a.safetensors", kill_at=3, how="TERM")
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert "SIGTERM at step 3 of 7: checkpoint saved" in stopped.stderr
    assert torch.load(ckpt / "last.pt", weights_only=True)["step"] == 3
    assert not (tmp_path / "a.safetensors").exists()
    resumed = run(ckpt, tmp_path / "a.safetensors")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics, (whole, b) = json.loads(resumed.stdout.splitlines()[-1]), uninterrupted
    assert metrics["resumed_from_step"] == 3 and metrics["loss"] == whole["loss"]
    a = load_file(tmp_path / "a.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_handler_is_only_held_while_training():
    """Outside train() SIGTERM does what it did before (here: the default, which ends the process)."""
    import signal as signals

    from pipeline_lib.training.loop import stop_on_sigterm

    before = signals.getsignal(signals.SIGTERM)
    with stop_on_sigterm() as stop:
        assert signals.getsignal(signals.SIGTERM) is not before
        os.kill(os.getpid(), signals.SIGTERM)
        assert stop.wait(5)
    assert signals.getsignal(signals.SIGTERM) is before


ADALORA = {"method": "adalora", "init_r": 4, "target_r": 2, "total_step": 7, "tinit": 2, "lora_dropout": 0.1,
           "target_modules": ["q_proj", "v_proj"]}


def test_adalora_resumes_with_its_rank_allocation(tiny_dir, tmp_path):
    """AdaLoRA masks its ranks every step from importance averages it keeps outside the weights: a run stopped after
    its step-4 checkpoint resumes with the allocator it had there (importance averages and rank pattern; on this tiny
    model the masks happen not to depend on them, so the weights alone could not tell) and ends with the
    uninterrupted run's weights, bit for bit. In one process: a stop after the checkpoint is what a kill leaves."""
    import copy

    from pipeline_lib import adapters, models
    from pipeline_lib.catalog.training import TrainConfig
    from pipeline_lib.training.loop import train

    cfg = TrainConfig(max_steps=7, batch_size=4, micro_batch_size=2, warmup_steps=1, learning_rate=1e-2,
                      checkpoint_every=2)

    class Stop(Exception):
        pass

    def fresh():
        model, tokenizer = models.load(tiny_dir)
        torch.manual_seed(0)
        return adapters.attach(model, ADALORA), tokenizer

    def allocation(model) -> dict:
        found = copy.deepcopy({k: getattr(model.base_model.rankallocator, k) for k in ("ipt", "exp_avg_ipt",
                                                                                        "exp_avg_unc")})
        return {**found, "rank_pattern": copy.deepcopy(model.peft_config["default"].rank_pattern)}

    def weights(model) -> dict:
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    model, tokenizer = fresh()
    seen = {}

    def stop_at_4(step):
        if step == 4:
            seen.update(allocation(model))
            raise Stop

    with pytest.raises(Stop):
        train(model, tokenizer, RECORDS, cfg, progress=False, checkpoint_dir=tmp_path, fingerprint="f",
              on_checkpoint=stop_at_4)
    assert seen["exp_avg_ipt"] and seen["rank_pattern"]  # the run had allocated by step 4
    resumed, tokenizer = fresh()
    restored = {}

    def at_first_forward(module, inputs):  # resumed, before step 5
        if not restored:
            restored.update(allocation(resumed))

    resumed.register_forward_pre_hook(at_first_forward)
    assert train(resumed, tokenizer, RECORDS, cfg, progress=False, checkpoint_dir=tmp_path,
                 fingerprint="f")["resumed_from_step"] == 4
    assert restored["rank_pattern"] == seen["rank_pattern"]
    for name in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
        assert restored[name].keys() == seen[name].keys()
        assert all(torch.equal(restored[name][k], seen[name][k]) for k in seen[name])
    whole, tokenizer = fresh()
    train(whole, tokenizer, RECORDS, cfg, progress=False)
    a, b = weights(resumed), weights(whole)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_other_inputs_or_damaged_is_not_used_and_says_so(tmp_path, capsys):
    from pipeline_lib.training import checkpoints

    checkpoints.save(tmp_path, {"fingerprint": "x", "step": 3})
    assert checkpoints.load(tmp_path, "x")["step"] == 3
    assert checkpoints.load(tmp_path, "y") is None
    assert "written for other inputs" in capsys.readouterr().err
    (tmp_path / checkpoints.NAME).write_bytes(b"truncated")
    assert checkpoints.load(tmp_path, "x") is None
    err = capsys.readouterr().err
    assert "cannot be read" in err and "starts again from step 0" in err
    assert (tmp_path / (checkpoints.NAME + ".unreadable")).read_bytes() == b"truncated"  # kept for a look
