"""A distinct GPU for each concurrent job. Snakemake counts a `gpu` resource but never says which device a job
should use (snakemake issue #281), so every job would see every GPU. Each fine-tune and evaluation job runs
through this module, with the job's own `gpu` resource (whatever the config, a profile or `--set-resources`
made it):

    python scripts/on_gpus.py --gpus N [--data-parallel] --lock-dir DIR -- COMMAND ...

- N = 0: exec()s the command as it is.
- Inside a SLURM job (SLURM_JOB_ID set): the scheduler has already chosen the devices and set
  CUDA_VISIBLE_DEVICES to them; they are used as given, without locks. Where SLURM confines devices every job
  sees its GPUs as 0..N-1, so a per-host lock on "GPU 0" would serialise jobs holding different physical GPUs.
- Otherwise (one machine, several jobs): it takes an exclusive flock on one file per device until it holds N
  of them and sets CUDA_VISIBLE_DEVICES to those. The lock files stay open (inherited across exec and by child
  processes, e.g. torchrun's workers), so the locks last exactly as long as the job: the kernel releases them
  when the last process holding them exits, SIGKILL included. The devices are the existing
  CUDA_VISIBLE_DEVICES when set, else every device the machine reports.

`--data-parallel` (the fine-tune): with N > 1 the command, a Python interpreter and its arguments, is started
as N data-parallel processes by torchrun, one per device. How the devices were obtained is passed on in
PEFT_BENCH_GPUS_BY, and `allocation()` is what the jobs record in metrics.json and their score files."""
from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from pathlib import Path

BY_VARIABLE = "PEFT_BENCH_GPUS_BY"


class GpuError(RuntimeError):
    pass


def visible_devices(environ=None) -> list[str]:
    environ = os.environ if environ is None else environ
    if environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def try_lock(path: Path) -> int | None:
    """An open fd holding an exclusive flock on `path`, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def acquire(count: int, devices: list[str], lock_dir: str | Path, poll_s: float = 0.2,
            timeout_s: float | None = None) -> tuple[list[str], list[int]]:
    """Wait until `count` of `devices` are free; return them and the fds that hold their locks."""
    if count > len(devices):
        raise GpuError(f"a job needs {count} GPU(s) but only {len(devices)} are visible "
                       f"({','.join(devices) or 'none'})")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        held = []
        for device in devices:
            # per host: on a shared filesystem, GPU 0 of one node is not GPU 0 of another
            fd = try_lock(lock_dir / f"{socket.gethostname()}-gpu-{device}.lock")
            if fd is not None:
                held.append((device, fd))
                if len(held) == count:
                    return [d for d, _ in held], [fd for _, fd in held]
        for _, fd in held:  # all or nothing: holding some while waiting for more could deadlock two jobs
            os.close(fd)
        if deadline is not None and time.monotonic() > deadline:
            raise GpuError(f"no {count} free GPU(s) among {','.join(devices)} within {timeout_s} s")
        time.sleep(poll_s)


def allocation(environ=None) -> dict:
    """Where a job ran and on which devices, as its metrics record it: the host, how the devices were obtained
    (slurm, lock or none), CUDA_VISIBLE_DEVICES, and the SLURM job and GPUs when under SLURM."""
    environ = os.environ if environ is None else environ
    record = {"host": socket.gethostname(), "by": environ.get(BY_VARIABLE, "none"),
              "cuda_visible_devices": environ.get("CUDA_VISIBLE_DEVICES")}
    if _in_slurm_job(environ):
        record["slurm_job_id"] = environ["SLURM_JOB_ID"]
        record["slurm_gpus"] = environ.get("SLURM_STEP_GPUS") or environ.get("SLURM_JOB_GPUS")
    return record


def _in_slurm_job(environ) -> bool:
    return bool(environ.get("SLURM_JOB_ID"))


def launcher(gpus: int) -> list[str]:
    """The command prefix that starts `gpus` data-parallel processes of a script (or `-m` module); empty for one."""
    if gpus <= 1:
        return []
    return ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}"]


def hold(count: int, lock_dir: str | Path, environ=None) -> tuple[list[str], list[int], str]:
    """The `count` devices this job uses, the fds of the locks it holds on them (none under SLURM) and how they
    were obtained."""
    environ = os.environ if environ is None else environ
    if count == 0:
        return [], [], "none"
    devices = visible_devices(environ)
    if _in_slurm_job(environ):  # the scheduler's allocation: trusted as it is
        if count > len(devices):
            raise GpuError(f"SLURM job {environ['SLURM_JOB_ID']} needs {count} GPU(s) but its allocation shows "
                           f"{len(devices)} ({','.join(devices) or 'none'}): request them with --gpus/--gres")
        return devices[:count], [], "slurm"
    chosen, fds = acquire(count, devices, lock_dir)
    return chosen, fds, "lock"


def run(count: int, command: list[str], lock_dir: str | Path, data_parallel: bool = False):
    """Hold `count` devices and become `command` with CUDA_VISIBLE_DEVICES set to them (never returns)."""
    chosen, fds, by = hold(count, lock_dir)
    for fd in fds:
        os.set_inheritable(fd, True)  # the locks must outlive exec() and pass to child processes
    if count:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(chosen)
        os.environ[BY_VARIABLE] = by
        where = f"SLURM job {os.environ['SLURM_JOB_ID']}'s allocation" if by == "slurm" else "locked"
        print(f"on_gpus: {socket.gethostname()} GPU(s) {','.join(chosen)} ({where}) at "
              f"{time.time():.3f}", file=sys.stderr, flush=True)
    if data_parallel and count > 1:
        command = [command[0], *launcher(count), *command[1:]]
    sys.stdout.flush()
    os.execvp(command[0], command)
