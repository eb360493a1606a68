"""The paper's experiment matrices as configs: exact job counts of each dry run, and the not-mirrored training
files stopping a real run before any job."""
import pytest

from snakemake_run import job_counts, run

MATH = {"download_hub_model": 4, "fetch_data": 5, "normalize_data": 5, "contamination": 1, "prepare_data": 5,
        "finetune": 4 * 4, "evaluate": 4 * 4 * 4, "report": 1, "all": 1}
COMMONSENSE = {"download_hub_model": 4, "fetch_data": 9, "normalize_data": 9, "contamination": 1,
               "prepare_data": 9, "finetune": 4 * 4, "evaluate": 4 * 4 * 8, "report": 1, "all": 1}
SEED = {"download_hub_model": 1, "fetch_data": 7, "normalize_data": 7, "contamination": 1, "prepare_data": 7,
        "finetune": 4, "evaluate": (1 + 4) * 6, "report": 1, "all": 1}


@pytest.mark.parametrize("name, expected", [("paper-math", MATH), ("paper-commonsense", COMMONSENSE),
                                            ("paper-seed", SEED)])
def test_dry_run_job_counts(tmp_path, name, expected):
    result = run(tmp_path, {}, "--dry-run", configfiles=(f"config/{name}.yaml",))
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr) == expected
    if name != "paper-seed":  # its files are all mirrored
        assert "download-only file" in result.stderr and "data: {pins:" in result.stderr


def test_paper_targets_resolve_for_each_architecture(tmp_path):
    result = run(tmp_path, {}, "--dry-run", "--printshellcmds", configfiles=("config/paper-math.yaml",))
    # the adapter spec each fine-tune gets says `paper`; it resolves per architecture when attached
    assert result.stdout.count('"target_modules": "paper"') >= 12


def test_a_real_run_with_an_unpinned_file_stops_before_any_job(tmp_path):
    result = run(tmp_path, {"models": ["smollm2-135m"], "device": "cpu", "eval_sets": ["gsm8k"]},
                 configfiles=("config/paper-math.yaml",))
    assert result.returncode != 0
    assert "math_10k: download-only file https://raw.githubusercontent.com/AGI-Edgerunners/LLM-Adapters/" \
           in result.stdout + result.stderr
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()




def test_slurm_profile_dry_run_requests_gpus_memory_and_time(tmp_path):
    from snakemake_run import ROOT

    result = run(tmp_path, {}, "--dry-run", "--profile", str(ROOT / "profiles/slurm"),
                 configfiles=("config/paper-math.yaml",))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    finetunes = [block for block in out.split("rule ")[1:] if block.startswith("finetune:")]
    assert len(finetunes) == 16
    for block in finetunes:
        resources = block.split("resources: ", 1)[1].splitlines()[0]
        assert "gpu=1" in resources and "slurm_partition=gpu" in resources and "cpus_per_gpu=8" in resources
        mem = int(resources.split("mem_mb=", 1)[1].split(",")[0])
        gpu_mem = int(resources.split("gpu_mem_mb=", 1)[1].split(",")[0])
        assert 10_000 < mem < 60_000 and 14_000 < gpu_mem < 80_000  # 6-13B in bf16 on one 80 GB GPU
    # the 13B model asks for more than the 7B one
    def gpu_mem(model):
        block = next(b for b in finetunes if f"model={model}, adapter=lora" in b)
        return int(block.split("gpu_mem_mb=", 1)[1].split(",")[0])
    assert gpu_mem("llama-13b") > 1.5 * gpu_mem("llama-7b")
