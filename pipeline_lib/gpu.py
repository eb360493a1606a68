"""A distinct GPU for each concurrent job. Snakemake counts a `gpu` resource but never says which device a job
should use (snakemake issue #281), so every job would see every GPU. Each GPU job runs through this module:

    python -m pipeline_lib.gpu --gpus N --lock-dir DIR -- COMMAND ...

It takes an exclusive flock on one file per device until it holds N of them, sets CUDA_VISIBLE_DEVICES to
those devices and exec()s the command. The lock files stay open (inherited across exec and by child processes,
e.g. torchrun's workers), so the locks last exactly as long as the job: the kernel releases them when the last
process holding them exits, SIGKILL included. The devices are the existing CUDA_VISIBLE_DEVICES when set
(SLURM sets it to the job's allocation), else every device the machine reports."""
from __future__ import annotations

import argparse
import fcntl
import os
import socket
import sys
import time
from pathlib import Path

DEFAULT_LOCK_DIR = ".snakemake/gpu-locks"


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


def run(count: int, command: list[str], lock_dir: str | Path = DEFAULT_LOCK_DIR, devices: list[str] | None = None):
    """Hold `count` devices and become `command` with CUDA_VISIBLE_DEVICES set to them (never returns)."""
    chosen, fds = acquire(count, visible_devices() if devices is None else devices, lock_dir)
    for fd in fds:
        os.set_inheritable(fd, True)  # the locks must outlive exec() and pass to child processes
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(chosen)
    sys.stdout.flush()
    os.execvp(command[0], command)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, required=True)
    parser.add_argument("--lock-dir", default=DEFAULT_LOCK_DIR)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    try:
        run(args.gpus, command, args.lock_dir)
    except GpuError as e:
        raise SystemExit(f"pipeline_lib.gpu: {e}") from e


if __name__ == "__main__":
    main()
