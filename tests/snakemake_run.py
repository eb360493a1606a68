"""Run the real Snakefile in a scratch directory, as a user would: the one place the tests build Snakemake's
command line."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
ONE_LORA = ("tests/configs/one-lora.yaml",)  # the tiny run with one adapter (tests/configs/)


def merged(*configs: dict) -> dict:
    """The configs merged in order as Snakemake merges --configfile's (mappings deep, the rest replaced)."""
    import copy

    from snakemake.utils import update_config

    out: dict = {}
    for config in configs:
        update_config(out, copy.deepcopy(config))
    return out


def command(workdir: Path, overrides: dict, *extra: str, configfiles=("config/tiny.yaml",), cores=2) -> list[str]:
    """Config = the given files (project-relative) + overrides (written to workdir/override.yaml), replacing the
    workflow's config.yaml."""
    workdir.mkdir(parents=True, exist_ok=True)
    override = workdir / "override.yaml"
    override.write_text(yaml.safe_dump(overrides))
    return [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", str(cores),
            "--configfile", *(str(ROOT / c) for c in configfiles), str(override), "--replace-workflow-config", *extra]


def run(workdir: Path, overrides: dict, *extra: str, configfiles=("config/tiny.yaml",), timeout=900, env=None,
        cores=2, **kwargs):
    """Run to completion; `env`: the environment of Snakemake and its jobs (default: this process's)."""
    return subprocess.run(command(workdir, overrides, *extra, configfiles=configfiles, cores=cores),
                          capture_output=True, text=True, timeout=timeout, env=env, **kwargs)


def popen(workdir: Path, overrides: dict, *extra: str, configfiles=("config/tiny.yaml",), env=None, cores=2,
          **kwargs):
    """Start in the background (its own session, so that a test can kill the whole process group)."""
    return subprocess.Popen(command(workdir, overrides, *extra, configfiles=configfiles, cores=cores), env=env,
                            start_new_session=True, **kwargs)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints before running."""
    block = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", block, re.MULTILINE)}
