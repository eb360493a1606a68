"""Wall time of `snakemake --dry-run` (DAG construction) for each paper config: the largest must take under 5 s.

  .venv/bin/python benchmarks/dry_run.py
"""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    for name in ["paper-seed", "paper-math", "paper-commonsense", "paper-placement", "paper-sizes"]:
        config = ROOT / "config" / f"{name}.yaml"
        if not config.exists():
            continue
        with tempfile.TemporaryDirectory() as workdir:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", workdir,
                                   "-n", "--configfile", str(config), "--replace-workflow-config"],
                                  capture_output=True, text=True)
            wall = time.perf_counter() - start
        lines = (done.stdout + done.stderr).splitlines()
        jobs = next((line.split()[-1] for line in lines if line.startswith("total")), "?")
        print(f"{name}: {jobs} jobs, dry run {wall:.2f} s (exit {done.returncode})")


if __name__ == "__main__":
    main()
