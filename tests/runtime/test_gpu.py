"""The GPU allocator with a fake device list and real concurrent processes: never more jobs than devices,
never two jobs on one device, a SIGKILLed job's device reused."""
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT, run
from pipeline_lib.runtime import gpu

JOB = """
import os, sys, time
with open(sys.argv[1], "a") as log:
    log.write(f"start {os.environ['CUDA_VISIBLE_DEVICES']} {time.time()}\\n")
time.sleep(float(sys.argv[2]))
with open(sys.argv[1], "a") as log:
    log.write(f"end {os.environ['CUDA_VISIBLE_DEVICES']} {time.time()}\\n")
"""


def launch(tmp_path, devices, gpus, seconds, log, env=(), options=()):
    job = tmp_path / "job.py"
    job.write_text(JOB)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": devices, **dict(env)}
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.Popen([sys.executable, str(ROOT / "scripts/on_gpus.py"), "--gpus", str(gpus),
                             *options, "--lock-dir", str(tmp_path / "locks"), "--", sys.executable, str(job),
                             str(log), str(seconds)], env=env)


def intervals(log):
    starts, spans = {}, []
    for kind, devices, t in (line.split() for line in log.read_text().splitlines()):
        if kind == "start":
            starts.setdefault(devices, []).append(float(t))
        else:
            spans.append((devices, starts[devices].pop(0), float(t)))
    return spans


def test_eight_jobs_on_four_devices(tmp_path):
    log = tmp_path / "log"
    jobs = [launch(tmp_path, "0,1,2,3", 1, 0.8, log) for _ in range(8)]
    assert [j.wait(timeout=60) for j in jobs] == [0] * 8
    spans = intervals(log)
    assert len(spans) == 8 and {d for d, _, _ in spans} <= {"0", "1", "2", "3"}
    events = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans])
    running, peak = 0, 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= 4
    for device in {d for d, _, _ in spans}:
        mine = sorted((s, e) for d, s, e in spans if d == device)
        assert all(e1 <= s2 for (_, e1), (s2, _) in zip(mine, mine[1:])), f"two jobs overlapped on GPU {device}"
    print(f"allocator: 8 jobs on 4 devices, peak {peak} running, per device {sorted(d for d, _, _ in spans)}")


def test_a_killed_jobs_device_is_reused(tmp_path):
    log = tmp_path / "log"
    first = launch(tmp_path, "7", 1, 60, log)
    for _ in range(100):
        if log.exists() and log.read_text():
            break
        time.sleep(0.1)
    second = launch(tmp_path, "7", 1, 0.1, log)
    time.sleep(1.0)
    assert second.poll() is None  # waiting: the only device is held
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    assert second.wait(timeout=30) == 0
    assert [line.split()[:2] for line in log.read_text().splitlines()] == [["start", "7"], ["start", "7"], ["end", "7"]]


def test_a_two_gpu_job_holds_two_distinct_devices(tmp_path):
    log = tmp_path / "log"
    assert launch(tmp_path, "4,5,6", 2, 0.1, log).wait(timeout=30) == 0
    devices = log.read_text().split()[1].split(",")
    assert len(devices) == 2 and len(set(devices)) == 2


def test_more_gpus_than_visible_is_a_clear_error(tmp_path):
    with pytest.raises(gpu.GpuError, match=r"needs 3 GPU\(s\) but only 2 are visible \(0,1\)"):
        gpu.acquire(3, ["0", "1"], tmp_path)
    assert gpu.visible_devices({"CUDA_VISIBLE_DEVICES": "2, 3"}) == ["2", "3"]
    assert gpu.visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_inside_a_slurm_job_the_allocation_is_trusted_without_locks(tmp_path):
    """Where SLURM confines devices, two jobs holding different physical GPUs both see theirs as 0: they must run
    at the same time, not wait for each other's lock on "GPU 0"."""
    log = tmp_path / "log"
    jobs = [launch(tmp_path, "0", 1, 1.5, log, env={"SLURM_JOB_ID": str(100 + i)}) for i in range(2)]
    assert [j.wait(timeout=60) for j in jobs] == [0, 0]
    (_, s1, e1), (_, s2, e2) = intervals(log)
    assert max(s1, s2) < min(e1, e2), "the two SLURM jobs did not overlap"
    assert not (tmp_path / "locks").exists() or not any((tmp_path / "locks").iterdir())
    with pytest.raises(gpu.GpuError, match=r"SLURM job 7 needs 2 GPU\(s\) but its allocation shows 1 \(0\)"):
        gpu.hold(2, tmp_path / "locks", {"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "0"})


def test_no_gpus_runs_the_command_as_it_is(tmp_path):
    log = tmp_path / "log"
    assert launch(tmp_path, "3", 0, 0, log).wait(timeout=30) == 0
    assert log.read_text().split()[:2] == ["start", "3"]  # CUDA_VISIBLE_DEVICES untouched
    assert gpu.hold(0, tmp_path / "locks", {}) == ([], [], "none")


def test_data_parallel_starts_one_torchrun_process_per_gpu(tmp_path):
    job = tmp_path / "rank.py"
    job.write_text("import os, sys\n"
                   "open(sys.argv[1] + os.environ['RANK'], 'w').write(os.environ['CUDA_VISIBLE_DEVICES'] + ' ' +"
                   " os.environ['WORLD_SIZE'] + ' ' + os.environ['PEFT_BENCH_GPUS_BY'])\n")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "4,5,6"}
    done = subprocess.run([sys.executable, str(ROOT / "scripts/on_gpus.py"), "--gpus", "2", "--data-parallel",
                           "--lock-dir", str(tmp_path / "locks"), "--", sys.executable, str(job),
                           str(tmp_path / "rank")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = [(tmp_path / f"rank{r}").read_text().split() for r in (0, 1)]
    assert seen[0] == seen[1] and seen[0][1:] == ["2", "lock"] and len(set(seen[0][0].split(","))) == 2


def test_allocation_record_names_the_slurm_job_and_its_gpus():
    record = gpu.allocation({"SLURM_JOB_ID": "12", "SLURM_STEP_GPUS": "2,3", "CUDA_VISIBLE_DEVICES": "2,3",
                             gpu.BY_VARIABLE: "slurm"})
    assert record["by"] == "slurm" and record["slurm_job_id"] == "12" and record["slurm_gpus"] == "2,3"
    assert gpu.allocation({})["by"] == "none" and "slurm_job_id" not in gpu.allocation({})


# --- the CUDA paths, as far as a machine without CUDA can check them

def test_cuda_check_script_skips_cleanly_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs the real check")
    out = subprocess.run([sys.executable, str(ROOT / "scripts/cuda_check.py"), "unused"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "no CUDA device" in out.stdout


def test_multi_gpu_finetune_dry_run_launches_torchrun_on_the_gpus_it_holds(tmp_path):
    result = run(tmp_path, {"device": "cuda", "gpus_per_finetune": 2}, "--dry-run", "--printshellcmds",
                 configfiles=("config.yaml",))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    finetunes = [line for line in out.splitlines() if "scripts/finetune.py" in line]
    # each job first takes its own devices (its gpu resource): two for a fine-tune, started as two torchrun
    # processes, one for an evaluation
    assert len(finetunes) == 3 and all("scripts/on_gpus.py --gpus 2 --data-parallel --lock-dir "
                                       "/tmp/peft-bench-gpu-locks -- " in line for line in finetunes)
    evaluations = [line for line in out.splitlines() if "scripts/evaluate.py" in line]
    assert evaluations and all("scripts/on_gpus.py --gpus 1 --lock-dir" in line for line in evaluations)
    assert "gpu=2" in out.replace(" ", "")
