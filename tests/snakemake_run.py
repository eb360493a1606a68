"""Run the real Snakefile in a scratch directory, as a user would."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run(workdir: Path, overrides: dict, *extra: str, configfiles=("config/tiny.yaml",), timeout=900, env=None):
    """Config = the given files (project-relative) + overrides, replacing the workflow's config.yaml; `env`: the
    environment of Snakemake and its jobs (default: this process's)."""
    workdir.mkdir(parents=True, exist_ok=True)
    override = workdir / "override.yaml"
    override.write_text(yaml.safe_dump(overrides))
    cmd = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "2",
           "--configfile", *(str(ROOT / c) for c in configfiles), str(override), "--replace-workflow-config", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints before running."""
    block = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", block, re.MULTILINE)}
