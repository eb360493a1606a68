"""Code is an input (pipeline_lib/planning/code.py): a job's code hash covers its script and every module it reaches;
a change to one stage's module changes the hash of exactly the jobs that run it; the rules put it in each command,
so Snakemake's `code` trigger re-makes exactly those jobs (shown on a dry run of a finished tiny run)."""
import shutil
import subprocess

import pytest

from helpers import ROOT, TINY, command
from pipeline_lib.planning import code

RULES = ["fetch_data", "normalize_data", "prepare_data", "contamination", "finetune", "evaluate", "render"]


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """The package and the scripts copied, the module pointed at the copy (its caches emptied before and after)."""
    shutil.copytree(ROOT / "pipeline_lib", tmp_path / "pipeline_lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    monkeypatch.setattr(code, "PACKAGE", tmp_path / "pipeline_lib")
    code.clear_caches()
    yield tmp_path
    code.clear_caches()


def _hashes(root):
    code.clear_caches()
    return {rule: code.stage_hash(root / "scripts" / f"{rule}.py") for rule in RULES}


def test_a_change_reaches_exactly_the_jobs_that_run_the_changed_module(copy):
    before = _hashes(copy)
    assert len(set(before.values())) == len(RULES)  # each job runs its own code
    (copy / "pipeline_lib/report/tables.py").write_text((copy / "pipeline_lib/report/tables.py").read_text() + "\n#")
    after = _hashes(copy)
    assert {r for r in RULES if before[r] != after[r]} == {"render"}
    loop = copy / "pipeline_lib/training/loop.py"  # the training loop: the fine-tune, and evaluation's held-out loss
    loop.write_text(loop.read_text() + "\n#")
    again = _hashes(copy)
    assert {r for r in RULES if after[r] != again[r]} == {"finetune", "evaluate"}
    assert copy / "pipeline_lib/evaluation/loss.py" in code.reached(copy / "scripts/evaluate.py")


def test_every_rule_command_carries_its_code(tmp_path, machine):
    done = subprocess.run(command(tmp_path / "work", machine, "-n", "-p", configfiles=TINY), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for rule in ("finetune", "evaluate", "render"):
        expected = code.stage_hash(ROOT / "scripts" / f"{rule}.py")
        assert f"PEFT_BENCH_CODE={expected} " in done.stdout, rule
