"""Fault injection: kills at seeded random points of every stage, damaged caches, a full disk,
an unwritable directory, two runs on one directory. Ends with a summary line:
faults: N bad inputs tried, K kills survived, L artifacts lost (must be 0)."""
import json
import os
import random
import resource
import signal
import subprocess
import threading
import time

import pytest

from helpers import FAULT_SUMMARY, popen, run
from pipeline_lib.runtime.files import CorruptArtifact, verify_manifest, write_manifest

pytestmark = pytest.mark.slow  # Snakemake runs, kills and re-runs
TALLY = {"bad inputs": [], "kills": 0, "lost": 0}


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    """The run's summary line, kept in pytest's stash (conftest.py prints it at the end; nothing is written)."""
    yield
    line = (f"faults: {len(TALLY['bad inputs'])} bad inputs tried, {TALLY['kills']} kills survived, "
            f"{TALLY['lost']} artifacts lost")
    print("\n" + line + "\nbad inputs: " + "; ".join(TALLY["bad inputs"]))
    request.config.stash[FAULT_SUMMARY] = [line, *TALLY["bad inputs"]]


# -- damaged artifacts and failing writes ----------------------------------------------------------------------
def test_truncated_cached_adapter_is_detected_not_used(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"x" * 1000)
    (adapter / "adapter_config.json").write_text("{}")
    write_manifest(adapter)
    verify_manifest(adapter)
    with open(adapter / "adapter_model.safetensors", "r+b") as f:
        f.truncate(500)
    with pytest.raises(CorruptArtifact, match=r"adapter_model.safetensors: sha256 differs .* Delete .* re-run"):
        verify_manifest(adapter)
    (adapter / "adapter_model.safetensors").unlink()
    with pytest.raises(CorruptArtifact, match="missing from a finished artifact"):
        verify_manifest(adapter)
    TALLY["bad inputs"] += ["truncated adapter file", "missing adapter file"]


def test_truncated_adapter_stops_evaluation_under_snakemake(tmp_path, tiny_dir, data_mirror):
    overrides = {"model_defs": {"tiny-llama": {"path": str(tiny_dir)}}, "data": {"mirror": str(data_mirror)},
                 "include_base": False, "eval_sets": ["MultiArith"]}
    target = "results/adapters/tiny-llama/lora/gsm8k_train"
    first = run(tmp_path, overrides, target)
    assert first.returncode == 0, first.stderr[-3000:]
    weights = tmp_path / target / "adapter_model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    again = run(tmp_path, overrides, "results/scores/tiny-llama/lora/gsm8k_train/generate/MultiArith.json")
    assert again.returncode != 0
    log = (tmp_path / "logs/evaluate/tiny-llama/lora/gsm8k_train.log").read_text()
    assert "adapter_model.safetensors: sha256 differs" in log
    assert not (tmp_path / "results/scores/tiny-llama/lora/gsm8k_train/generate/MultiArith.json").exists()
    TALLY["bad inputs"].append("truncated adapter under Snakemake")


def _file_size_limit(limit_bytes):
    """A child's pre-exec hook: writes past `limit_bytes` fail (EFBIG, as a full disk fails them with ENOSPC)
    instead of killing the writer with SIGXFSZ."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def test_out_of_space_fails_the_job_clearly_and_leaves_no_artifact(tmp_path, tiny_dir, data_mirror):
    """A real write failure: Snakemake and its jobs under a 1 MB file-size limit, fetching GSM8K's 4.2 MB
    training file. The job fails naming the error, nothing complete-looking is left, and the run without the
    limit then completes."""
    overrides = {"model_defs": {"tiny-llama": {"path": str(tiny_dir)}}, "data": {"mirror": str(data_mirror)}}
    target = "results/data/full/gsm8k_train.jsonl"
    full = run(tmp_path, overrides, target, preexec_fn=_file_size_limit(2 ** 20))
    assert full.returncode != 0
    log = next((tmp_path / "logs/fetch_data").rglob("*train.jsonl.log")).read_text()
    assert "File too large" in log, log[-2000:]
    assert "Error in rule fetch_data" in full.stdout + full.stderr
    assert not (tmp_path / target).exists()
    left = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert left == [], left  # no truncated raw file under its final name, no temporary beside it
    again = run(tmp_path, overrides, target)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sum(1 for _ in open(tmp_path / target)) == 7473
    TALLY["bad inputs"].append("file-size limit (out of space) while fetching")


def test_unwritable_output_directory_is_a_clear_error(tmp_path, tiny_dir, data_mirror):
    # root ignores permission bits, so make `results` a file: nothing can be created under it either way
    (tmp_path / "results").write_text("not a directory")
    overrides = {"model_defs": {"tiny-llama": {"path": str(tiny_dir)}}, "data": {"mirror": str(data_mirror)}}
    result = run(tmp_path, overrides, "results/data/full/gsm8k.jsonl")
    assert result.returncode != 0
    assert "results" in result.stdout + result.stderr and "Error" in result.stdout + result.stderr
    assert (tmp_path / "results").read_text() == "not a directory"
    TALLY["bad inputs"].append("output directory not writable")


def test_second_invocation_is_refused_by_the_lock(tmp_path, tiny_dir, data_mirror):
    overrides = {"model_defs": {"tiny-llama": {"path": str(tiny_dir)}}, "data": {"mirror": str(data_mirror)},
                 "training": {"max_steps": 200}}
    first = popen(tmp_path / "w", overrides, cores=1, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not list((tmp_path / "w/.snakemake/locks").glob("*")) and time.time() < deadline:
            time.sleep(0.1)
        second = run(tmp_path / "w", overrides, cores=1, timeout=120)
        assert second.returncode != 0 and "Directory cannot be locked" in second.stdout + second.stderr
        assert first.poll() is None  # the first run goes on
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    TALLY["bad inputs"].append("second Snakemake run on the same directory")


# -- kills at seeded random points of every stage, then a plain re-run ----------------------------------------
STAGES = ["fetch_data", "normalize_data", "prepare_data", "convert_model", "finetune", "evaluate", "render"]


def _finals(workdir):
    """Every final artifact: scores and adapter weights, by path."""
    out = {}
    for path in sorted((workdir / "results").rglob("*")):
        if path.is_file() and (path.suffix == ".json" and "scores" in path.parts or path.name.endswith(".safetensors")):
            out[str(path.relative_to(workdir))] = path.read_bytes() if path.suffix != ".json" else \
                _untimed(json.loads(path.read_text()))
    return out


def _differing(a, b, prefix="") -> list[str]:
    """The keys (dotted) where two records differ: what a failure names."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [prefix or "(whole)"] if a != b else []
    return [d for k in sorted(set(a) | set(b)) for d in _differing(a.get(k), b.get(k), f"{prefix}{k}.")]


def _untimed(record):
    """A score without what differs between any two runs: its times and speeds, the items it resumed, what this
    process generated, how many sets it decoded together (a re-run keeps the sets it finished) and its efficiency
    (a measurement), and the precision's measured figures (its verdict stays)."""
    if not isinstance(record, dict):
        return record
    timing = ("started", "finished", "resumed_items", "wall_time_s", "new_tokens", "prompt_tokens", "generated_rows",
              "decoded_with_sets", "efficiency")  # the tokens: this process's
    return {k: (_untimed(v) if k != "precision" else {p: v[p] for p in ("requested", "chosen") if p in v})
            for k, v in record.items() if k not in timing and not k.endswith("_per_s")}


def test_kills_at_random_points_lose_nothing(tmp_path, tiny_dir, data_mirror):
    overrides = {"model_defs": {"tiny-llama": {"path": str(tiny_dir)}}, "data": {"mirror": str(data_mirror)},
                 "training": {"max_steps": 20, "checkpoint_every": 3}, "eval_sets": ["gsm8k", "MultiArith"]}
    # the uninterrupted reference run, beside the killed one (its jobs fill the cores the restarts leave idle)
    clean = popen(tmp_path / "clean", overrides, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    look = threading.Thread(target=_tables_beside, args=(clean, tmp_path / "clean", overrides, seen := {}))
    look.start()
    try:
        kills, stages_hit, resumed, first_checkpoint = _kill_repeatedly(tmp_path / "killed", overrides)
        clean_out, _ = clean.communicate(timeout=900)
    finally:
        if clean.poll() is None:
            os.killpg(clean.pid, signal.SIGKILL)
        look.join()
    assert clean.returncode == 0, clean_out[-3000:]
    # `snakemake tables` during the live reference run: it rendered the partial results into results/interim/
    # while the run went on, wrote nothing of the run's own tables, and left nothing stale
    assert seen["tables"].returncode == 0 and seen["live"], seen["tables"].stderr[-3000:]
    assert not seen["run_tables_then"] and seen["interim"]
    assert "Nothing to be done" in run(tmp_path / "clean", overrides, "--dry-run").stdout
    expected = _finals(tmp_path / "clean")
    killed = tmp_path / "killed"
    final = run(killed, overrides)
    assert final.returncode == 0, final.stdout[-3000:]
    got = _finals(killed)
    lost = [k for k in expected if got.get(k) != expected[k]]
    TALLY["kills"] += kills
    TALLY["lost"] += len(lost)
    print(f"kills: {kills}, stages seen running: {sorted(stages_hit)}")
    assert kills >= 5
    assert {"prepare_data", "finetune"} <= stages_hit, stages_hit  # the kills reached the resumable stages
    assert not lost, [(k, _differing(expected[k], got.get(k))) for k in lost[:5]]
    assert got.keys() == expected.keys()
    # the first kill's fine-tune resumed from its checkpoint (then removed), not from scratch
    assert resumed["resumed_from_step"] >= 3 and len(resumed["loss"]) == 20
    assert not first_checkpoint.parent.exists()


def _tables_beside(live, workdir, overrides, seen: dict):
    """Once the live run has its first score, `snakemake tables` in its folder; what it saw, into `seen`."""
    deadline = time.time() + 600
    while live.poll() is None and time.time() < deadline and not list((workdir / "results/scores").rglob("*.json")):
        time.sleep(0.5)
    seen["tables"] = run(workdir, overrides, "tables")
    seen["live"] = live.poll() is None  # the run was still going when the look ended
    seen["run_tables_then"] = (workdir / "results/tables").exists()
    seen["interim"] = (workdir / "results/interim/tables/accuracy_ci.md").is_file()


def _kill_repeatedly(killed, overrides):
    """Start the run and SIGKILL its whole process group, up to 7 times, each restart after `--unlock`: the first
    kill once a fine-tune has checkpointed, the second once that fine-tune has finished resumed, the others at
    seeded random points. Returns (kills, stages seen running, the resumed fine-tune's metrics, its checkpoint)."""
    rng = random.Random(20261128)
    kills, stages_hit = 0, set()
    checkpoints = killed / "results/adapters"
    for trial in range(7):
        proc = popen(killed, overrides, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if trial == 0:
            deadline = time.time() + 300
            while not list(checkpoints.glob("*/*/*.checkpoint/last.pt")) and time.time() < deadline:
                time.sleep(0.05)
            first_checkpoint = next(checkpoints.glob("*/*/*.checkpoint/last.pt"))
        elif trial == 1:  # the first kill's fine-tune finishes, resumed, before the next kill (which may land
            metrics = first_checkpoint.parent.with_suffix("") / "metrics.json"  # after its checkpoint is gone)
            deadline = time.time() + 300
            while not metrics.is_file() and time.time() < deadline and proc.poll() is None:
                time.sleep(0.05)
            resumed = json.loads(metrics.read_text())
        else:
            time.sleep(rng.uniform(2.0, 9.0))
        if proc.poll() is not None:
            proc.communicate()
            break  # the run finished before this kill: nothing left to interrupt
        running = {s for s in STAGES if list((killed / "logs" / s).rglob("*.log"))} if (killed / "logs").exists() else set()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        stages_hit |= running
        if trial == 0:  # nothing half-written under the fine-tune's final name
            assert not first_checkpoint.parent.with_suffix("").exists()
        run(killed, overrides, "--unlock")
        # nothing half-written under a final name: every score file is complete JSON
        for score in (killed / "results/scores").rglob("*.json") if (killed / "results/scores").exists() else []:
            json.loads(score.read_text())
    return kills, stages_hit, resumed, first_checkpoint
