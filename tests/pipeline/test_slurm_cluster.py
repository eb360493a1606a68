"""The pipeline on a real SLURM cluster (tests/cluster/local_slurm.py: slurmctld and slurmd on 127.0.0.1, four
fake GPUs), through profiles/slurm and the executor plugin, every model job and the contamination check an sbatch
submission, the light jobs run where Snakemake runs: the tiny run's tables equal a local run's, each request is
what estimates.py estimated, GPU jobs run side by side on the devices SLURM
gave them, a preempted fine-tune saves its step and resumes there, a drained node holds jobs until it resumes, a job
over its memory request fails with the scheduler's reason, and a 2-GPU job trains as two processes."""
from __future__ import annotations

import copy
import json
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

from cluster.local_slurm import LocalSlurm, problem
from helpers import ROOT, job_counts, popen, run, with_pythonpath
from pipeline_lib.runtime.files import read_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
WHY_NOT = problem()
if WHY_NOT:
    pytestmark.append(pytest.mark.skip(reason=f"no local SLURM cluster: {WHY_NOT}"))

LORA = {"method": "lora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
SERIES = {"method": "series", "bottleneck_size": 8, "target_modules": ["up_proj"]}
ADAPTER_DIR = "results/adapters/tiny-llama/{}/gsm8k_train"
PROFILE = ("--profile", str(ROOT / "profiles/slurm"), "--workflow-profile", str(ROOT / "tests/cluster/profile"))
CAPTURE = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
# tests/cluster/profile's GPU-job requests (a --set-resources on the command line replaces them all)
PREEMPT_STEPS, PREEMPT_EVERY = 100, 50  # the long fine-tune, signalled from step 3 on
TEST_RESOURCES = yaml.safe_load((ROOT / "tests/cluster/profile/config.yaml").read_text())["set-resources"]["finetune"]


def run_config(tiny_dir, data_mirror) -> dict:
    """tests/configs/tiny.yaml with two adapters and one evaluation set: the whole config, no file merged under it."""
    config = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())
    return {**config, "model_defs": {"tiny-llama": {"path": str(tiny_dir)}},
            "data": {**config["data"], "mirror": str(data_mirror)}, "adapters": {"lora": LORA, "series": SERIES},
            "eval_sets": ["MultiArith"]}


def with_adapter(config, name, spec) -> dict:
    return {**config, "adapters": {**config["adapters"], name: spec}}


def set_resources(**per_rule):
    return ["--set-resources", *(f"{rule}:{k}={v}" for rule, res in per_rule.items() for k, v in res.items())]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    slurm = LocalSlurm(tmp_path_factory.mktemp("slurm")).start()
    try:
        yield slurm
    finally:
        slurm.stop()


def submitting_env(cluster) -> dict:
    """The environment of the Snakemake that submits: the cluster's, with status checks at most 2 s apart
    (tests/cluster/quick_status)."""
    return with_pythonpath(ROOT / "tests/cluster/quick_status", cluster.env)


def local(workdir, config, *extra):
    return run(workdir, config, *extra, configfiles=())


def jobs_of(cluster, workdir: Path) -> list[dict]:
    """The SLURM jobs a run in `workdir` submitted, with the rule from the plugin's `rule_<name>...` comment."""
    found = [j for j in cluster.jobs() if Path(j.get("WorkDir", "")).resolve() == workdir.resolve()]
    for j in found:
        j["rule"] = re.match(r"rule_(\w+?)(_wildcards_|$)", j["Comment"]).group(1)
    return sorted(found, key=lambda j: int(j["JobId"]))


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (value := predicate()):
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory, tiny_dir, data_mirror):
    """The tiny run through SLURM, submitted while the node is drained (the jobs wait until it resumes), and
    the same run locally (at the same time: the SLURM run mostly waits on the scheduler)."""
    config = run_config(tiny_dir, data_mirror)
    local_dir, workdir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("on-slurm")
    cluster.set_node("DRAIN", "pipeline test")
    try:
        started = time.monotonic()
        proc = popen(workdir, config, *PROFILE, configfiles=(), env=submitting_env(cluster), **CAPTURE)
        pending = wait_for(lambda: [j for j in jobs_of(cluster, workdir) if j["JobState"] == "PENDING"], 120,
                           "a pending job on the drained node")
        held_ids = {p["JobId"] for p in pending}
        looks = []  # the held jobs' states, looked at several times while the node stays drained
        for _ in range(4):
            time.sleep(0.5)
            looks.append({j["JobId"]: j["JobState"] for j in jobs_of(cluster, workdir) if j["JobId"] in held_ids})
        drained = {"state": cluster.node_state(), "pending": len(held_ids), "looks": looks,
                   "reason": next(j for j in jobs_of(cluster, workdir) if j["JobId"] in held_ids)["Reason"]}
    finally:
        cluster.set_node("RESUME")
        resumed = time.time()
    drained["state_after_resume"] = cluster.node_state()
    local_proc = popen(local_dir, config, configfiles=(), cores=1, **CAPTURE)
    out, _ = proc.communicate(timeout=900)
    wall_s = time.monotonic() - started
    local_out, _ = local_proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-5000:]
    assert local_proc.returncode == 0, local_out[-5000:]
    # the scheduler's record of every job, kept now: a finished job stays known only MinJobAge (300 s)
    slurm_jobs = jobs_of(cluster, workdir)
    drained["held_jobs_after"] = {j["JobId"]: (j["JobState"], _epoch(j["StartTime"]))
                                  for j in slurm_jobs if j["JobId"] in held_ids}
    return {"workdir": workdir, "local": local_dir, "output": out, "wall_s": wall_s, "drained": drained,
            "resumed": resumed, "config": config, "slurm_jobs": slurm_jobs}


def _epoch(stamp: str) -> float | None:
    """A SLURM time stamp (local time, e.g. 2026-12-02T11:40:03) as seconds since the epoch; None for Unknown."""
    try:
        return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


@pytest.fixture(scope="module")
def cluster_run(runs):
    return runs


@pytest.fixture(scope="module")
def local_run(runs):
    return runs["local"]


def test_a_drained_node_holds_the_jobs_until_it_resumes(cluster_run):
    """What the scheduler does, not how it words it (the pending reason differs between Slurm versions and
    configurations: "Nodes_required_for_job_are_DOWN,_DRAINED..." on one machine, "ReqNodeNotAvail..." on
    another): while the node is drained it says so and every held job stays pending at each look; after the
    resume the node takes work again, and each held job ran, no earlier than the resume, to completion."""
    drained = cluster_run["drained"]
    assert drained["state"] in ("drained", "draining") and drained["pending"] >= 1, drained
    assert len(drained["looks"]) == 4 and all(set(look.values()) == {"PENDING"} for look in drained["looks"]), drained
    assert "drain" not in drained["state_after_resume"], drained
    after = drained["held_jobs_after"]
    assert len(after) == drained["pending"], drained
    for job, (state, started) in after.items():
        assert state == "COMPLETED", (job, state)
        assert started is not None and started >= int(cluster_run["resumed"]) - 1, (job, started, cluster_run["resumed"])
    print(f"drained node: {drained['state']}, {drained['pending']} job(s) pending at 4 looks (reason "
          f"{drained['reason']}); after the resume: node {drained['state_after_resume']}, every held job completed, "
          f"none started before the resume; the run finished in {cluster_run['wall_s']:.0f} s")


def rules_run_inside(job: dict) -> set[str]:
    """The rules the Snakemake inside a SLURM job ran, from the job's SLURM log."""
    return set(re.findall(r"^\s*(?:local)?rule (\w+):", Path(job["StdOut"]).read_text(), re.MULTILINE))


ON_THE_CLUSTER = {"contamination", "finetune", "evaluate"}  # of the tiny run's rules; the rest are local rules


def test_model_jobs_run_inside_slurm_jobs_and_light_ones_where_snakemake_runs(cluster, cluster_run):
    submitted = {}
    for j in jobs_of(cluster, cluster_run["workdir"]):
        assert j["JobState"] == "COMPLETED", j
        assert rules_run_inside(j) == {j["rule"]}, j  # the job's own rule ran inside it, nothing else
        submitted[j["rule"]] = submitted.get(j["rule"], 0) + 1
    counts = job_counts(cluster_run["output"])
    assert submitted == {rule: n for rule, n in counts.items() if rule in ON_THE_CLUSTER}  # one SLURM job per job
    assert submitted["finetune"] == 2 and submitted["evaluate"] == 3 and submitted["contamination"] == 1
    ran_here = set(re.findall(r"^localrule (\w+):", cluster_run["output"], re.MULTILINE))
    assert ran_here == set(counts) - ON_THE_CLUSTER, ran_here  # downloads, data preparation, render, all
    print(f"SLURM jobs per rule (each ran its rule inside): {submitted}; run where Snakemake ran: {sorted(ran_here)}; "
          f"wall {cluster_run['wall_s']:.0f} s")


def test_tables_equal_the_local_run(cluster_run, local_run):
    remote, here = cluster_run["workdir"], local_run
    for table in ("accuracy.csv", "accuracy_ci.csv", "significance.csv", "contamination.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(remote / "results/tables" / table),
                                      pd.read_csv(here / "results/tables" / table))
    predictions = list((here / "results/predictions").rglob("*.jsonl"))
    assert len(predictions) == 3
    for path in predictions:
        assert read_jsonl(remote / path.relative_to(here)) == read_jsonl(path), path


def _megabytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([MGT])", value).groups()
    return int(number) * {"M": 1, "G": 1024, "T": 1024 ** 2}[unit]


def _minutes(limit: str) -> int:
    days, _, clock = limit.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return (int(days or 0) * 24 + h) * 60 + m + (s > 0)


def test_each_request_is_what_resources_estimated(cluster, cluster_run):
    from snakemake.utils import validate

    from pipeline_lib.planning.estimates import Estimates
    from pipeline_lib.planning.plan import prepare

    config = copy.deepcopy(cluster_run["config"])
    validate(config, str(ROOT / "schemas/config.schema.yaml"))
    estimates = Estimates(prepare(config))
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())["default-resources"]
    checked = {}
    for j in jobs_of(cluster, cluster_run["workdir"]):
        wildcards = dict(zip(("model", "run", "train"), j["Comment"].split("_wildcards_")[-1]
                             .split("_")))
        if j["rule"] == "finetune":
            expected = estimates.finetune("tiny-llama", wildcards["run"], "gsm8k_train")
        elif j["rule"] == "evaluate":
            expected = estimates.evaluate_row("tiny-llama")  # the row's sets (here MultiArith alone)
        else:  # data preparation and render: the profile's defaults
            expected = profile
        gpus = TEST_RESOURCES["gpu"] if j["rule"] in ("finetune", "evaluate") else 0
        assert j["Partition"] == profile["slurm_partition"]
        assert _megabytes(j["MinMemoryNode"]) == expected["mem_mb"], j
        assert _minutes(j["TimeLimit"]) == expected["runtime"], j
        assert j.get("TresPerJob", "") == (f"gres:gpu:{gpus}" if gpus else ""), j
        assert int(j["NumCPUs"]) == (gpus * TEST_RESOURCES["cpus_per_gpu"] if gpus else 1), j
        checked[j["rule"]] = (f"-p {j['Partition']} --mem {j['MinMemoryNode']} -t {j['TimeLimit']} "
                              f"cpus {j['NumCPUs']} {j.get('TresPerJob', '')}")
    print("sbatch requests per rule:\n" + "\n".join(f"  {rule}: {req}" for rule, req in checked.items()))


def test_gpu_jobs_run_side_by_side_on_the_devices_slurm_gave_them(cluster_run):
    """Each GPU job ran on the GPU SLURM allocated it (CUDA_VISIBLE_DEVICES in its record = SLURM's GPU), and GPU
    jobs whose allocations overlapped in time (SLURM's own start and end, not the jobs' compute spans: those are
    a few seconds of a tiny model, so whether they overlap depends on how long each process took to import)
    held different GPUs."""
    workdir = cluster_run["workdir"]
    records = [json.loads(p.read_text()) for p in [*(workdir / "results/adapters").rglob("metrics.json"),
                                                   *(workdir / "results/scores").rglob("*.json")]]
    gpu_of = {}
    for r in records:
        a = r["allocation"]
        assert a["by"] == "slurm" and a["slurm_job_id"] and a["cuda_visible_devices"] == a["slurm_gpus"], a
        gpu_of[str(a["slurm_job_id"])] = a["slurm_gpus"]
    spans = [(_epoch(j["StartTime"]), _epoch(j["EndTime"]), j["JobId"], gpu_of[j["JobId"]], j["rule"])
             for j in cluster_run["slurm_jobs"] if j["JobId"] in gpu_of and j["JobState"] == "COMPLETED"]
    assert len(spans) == len(gpu_of), (gpu_of, cluster_run["slurm_jobs"])
    overlapping = [(x, y) for i, x in enumerate(spans) for y in spans[i + 1:] if max(x[0], y[0]) < min(x[1], y[1])]
    assert overlapping, f"no two GPU jobs were allocated at the same time: {sorted(spans)}"
    for x, y in overlapping:
        assert x[3] != y[3], f"SLURM jobs {x[2]} and {y[2]} held the same GPU {x[3]} at once"
    x, y = overlapping[0]
    print(f"GPU jobs allocated side by side: SLURM job {x[2]} ({x[4]}) on GPU {x[3]} and job {y[2]} ({y[4]}) on "
          f"GPU {y[3]}; {len(overlapping)} overlapping pair(s) of {len(spans)} GPU jobs")


@pytest.fixture(scope="module")
def single_jobs(cluster, cluster_run, tmp_path_factory):
    """Three fine-tunes submitted at once, each from its own copy of the run's folder (so each test reads its own
    SLURM jobs): a long one sent SIGTERM between two checkpoints (as `--signal=TERM@120` does before a time limit, and
    a preempting partition before its kill), one over its memory request, one on two GPUs. Side by side, their queue
    and status-check waits overlap."""
    import shutil

    base = cluster_run["config"]
    long = {**LORA, "lora_dropout": 0.1, "training": {"max_steps": PREEMPT_STEPS, "checkpoint_every": PREEMPT_EVERY}}
    plans = {
        "preempted": (with_adapter(base, "long", long), ADAPTER_DIR.format("long"), []),
        "over_memory": (with_adapter(base, "greedy", LORA), ADAPTER_DIR.format("greedy"),
                        ["--retries", "0", *set_resources(finetune={**TEST_RESOURCES, "mem_mb": 100})]),
        "two_gpus": (with_adapter(base, "lora2", LORA), ADAPTER_DIR.format("lora2"),
                     set_resources(finetune={"gpu": 2, "cpus_per_gpu": 1})),
    }
    runs = {}
    for name, (config, target, extra) in plans.items():
        workdir = tmp_path_factory.mktemp(name)
        shutil.copytree(cluster_run["workdir"], workdir, symlinks=True, dirs_exist_ok=True)
        proc = popen(workdir, config, *PROFILE, target, *extra, configfiles=(), env=submitting_env(cluster),
                     **CAPTURE)
        runs[name] = {"workdir": workdir, "config": config, "target": target, "proc": proc}
    preempted = runs["preempted"]
    log = preempted["workdir"] / "logs/finetune/tiny-llama/long/gsm8k_train.log"
    wait_for(lambda: log.exists() and re.search(r"fine-tune:.*\b([3-9]|\d\d+)/" + str(PREEMPT_STEPS),
                                                 log.read_text(errors="replace")), 300,
             "the long fine-tune's third step")
    job = next(j for j in jobs_of(cluster, preempted["workdir"]) if j["rule"] == "finetune"
               and j["JobState"] == "RUNNING")
    cluster.run("scancel", "--signal=TERM", job["JobId"])  # the signal alone: the job ends only if it stops itself
    preempted["signalled"] = job["JobId"]
    for run_ in runs.values():
        proc = run_.pop("proc")
        run_["output"], _ = proc.communicate(timeout=600)
        run_["returncode"] = proc.returncode
    return runs


def test_a_preempted_finetune_saves_its_step_and_resumes_there(cluster, single_jobs, local_run):
    """SIGTERM to the running fine-tune between two checkpoints: it ends the step in flight, saves it and exits 143
    (SLURM: FAILED); the profile's retries resubmit it with twice the time and memory, it resumes from that step, and
    the adapter equals an uninterrupted (local) run's bit for bit."""
    done = single_jobs["preempted"]
    workdir, target = done["workdir"], done["target"]
    assert done["returncode"] == 0, done["output"][-5000:]
    finetunes = [j for j in jobs_of(cluster, workdir) if j["rule"] == "finetune" and "long" in j["Comment"]]
    assert [j["JobState"] for j in finetunes] == ["FAILED", "COMPLETED"], finetunes
    assert finetunes[0]["JobId"] == done["signalled"]
    # the retry asks for twice the time and memory (rules/common.smk model_job): an estimate too low is not met twice
    assert _minutes(finetunes[1]["TimeLimit"]) == 2 * _minutes(finetunes[0]["TimeLimit"]), finetunes
    assert _megabytes(finetunes[1]["MinMemoryNode"]) == 2 * _megabytes(finetunes[0]["MinMemoryNode"]), finetunes
    # the signalled job's rule log (shown by the profile's show-failed-logs, in its SLURM log or Snakemake's output)
    # names the step it saved; the retry resumed exactly there
    shown = Path(finetunes[0]["StdOut"]).read_text() + done["output"]
    saved = re.search(rf"SIGTERM at step (\d+) of {PREEMPT_STEPS}: checkpoint saved", shown)
    assert saved, shown[-5000:]
    metrics = json.loads((workdir / target / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == int(saved.group(1)) >= 3 and len(metrics["loss"]) == PREEMPT_STEPS

    clean = local(local_run, done["config"], target)
    assert clean.returncode == 0, clean.stderr[-3000:]
    a, b = load_file(workdir / target / "adapter_model.safetensors"), load_file(local_run / target /
                                                                                 "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    print(f"SIGTERM to SLURM job {done['signalled']} at step {saved.group(1)} (checkpoints every {PREEMPT_EVERY}): "
          f"it saved that step and exited 143; resubmitted as job {finetunes[1]['JobId']} with -t "
          f"{finetunes[1]['TimeLimit']} (was {finetunes[0]['TimeLimit']}), resumed from step "
          f"{metrics['resumed_from_step']}: adapter identical to the uninterrupted run's")


def test_a_job_over_its_memory_request_fails_with_the_schedulers_reason(cluster, single_jobs):
    done = single_jobs["over_memory"]
    assert done["returncode"] != 0
    out = done["output"]
    job = next(j for j in jobs_of(cluster, done["workdir"]) if "greedy" in j["Comment"])
    # Snakemake's error names the rule, the SLURM job and its state; the job's SLURM log has the reason
    assert "Error in rule finetune" in out and f"SLURM-job '{job['JobId']}' failed" in out, out[-4000:]
    assert job["JobState"] in ("FAILED", "OUT_OF_MEMORY"), job
    slurm_log = Path(job["StdOut"]).read_text()
    assert "exceeded memory limit" in slurm_log, slurm_log[-2000:]
    assert not (done["workdir"] / done["target"]).exists()
    print(f"over memory: SLURM job {job['JobId']} {job['JobState']}, its log: "
          f"{[ln for ln in slurm_log.splitlines() if 'memory' in ln][0]}")


def test_a_two_gpu_finetune_trains_as_two_processes_like_one(cluster, single_jobs, local_run):
    done = single_jobs["two_gpus"]
    workdir, target = done["workdir"], done["target"]
    assert done["returncode"] == 0, done["output"][-4000:]
    metrics = json.loads((workdir / target / "metrics.json").read_text())
    assert metrics["processes"] == 2 and len(metrics["allocation"]["slurm_gpus"].split(",")) == 2
    job = next(j for j in jobs_of(cluster, workdir) if "lora2" in j["Comment"])
    assert job["TresPerJob"] == "gres:gpu:2" and int(job["NumCPUs"]) == 2
    one = json.loads((local_run / ADAPTER_DIR.format("lora") / "metrics.json").read_text())
    assert metrics["loss"] == pytest.approx(one["loss"], rel=1e-4) and one["processes"] == 1
    a = load_file(local_run / ADAPTER_DIR.format("lora") / "adapter_model.safetensors")
    b = load_file(workdir / target / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)
    print(f"2-GPU job {job['JobId']} (GPUs {metrics['allocation']['slurm_gpus']}): 2 gloo processes, adapter "
          f"within 1e-4 of the single-process run's")


