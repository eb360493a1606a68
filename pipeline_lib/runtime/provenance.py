"""What produced a result, recorded in every metrics, score and validation file: the base model (a hub commit, the
embedded wheel's checksum, or a directory's fingerprint: pipeline_lib.models.convert.provenance), the data file's
checksum, the versions of the packages that computed it, and the device. The run's protocol card reads its
`versions` and `device` from these records rather than measuring them again."""
from __future__ import annotations

import platform
import sys
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("peft-bench", "torch", "transformers", "peft", "datasets", "accelerate", "bitsandbytes", "lm-eval",
            "snakemake")
ROOT = Path(__file__).resolve().parents[2]  # the project's checkout, when the package runs from one


def code() -> dict | None:
    """Which code made the result: the hash of the modules the job's script reaches (PEFT_BENCH_CODE, which the
    rule's command sets: planning/code.py), the project's commit and whether the checkout differed from it."""
    import os

    found = {"stage": os.environ.get("PEFT_BENCH_CODE"), **(_checkout() or {})}
    return found if any(v is not None for v in found.values()) else None


@lru_cache(maxsize=1)
def _checkout() -> dict | None:
    """The project's commit and whether tracked files differ from it, where the package runs from a git checkout;
    None elsewhere (an installed wheel)."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        return {"commit": head.stdout.strip(), "dirty": git("diff", "--quiet", "HEAD", "--").returncode != 0}
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def device(name: str) -> dict:
    """The machine a job ran on: its CPU, torch's threads (sums split over them round differently: results depend
    on the count at the last bit), and the GPU where the job used one."""
    record = {"host": platform.node(), "platform": platform.platform(), "cpu": _cpu_model(), "job_device": str(name)}
    if "torch" in sys.modules:
        import torch

        record["threads"] = torch.get_num_threads()
        if str(name).startswith("cuda") and torch.cuda.is_available():
            record["gpu"] = torch.cuda.get_device_name()
    return record


def record(model_source: dict, data_sha256: dict[str, str], device_name: str) -> dict:
    return {"model": model_source, "data": data_sha256, "versions": versions(), "code": code(),
            "device": device(device_name)}


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
