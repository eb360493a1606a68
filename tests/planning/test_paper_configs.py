"""The paper's experiment matrices as configs: exact job counts of each dry run, and the not-mirrored training
files stopping a real run before any job."""
import pytest

from helpers import ROOT, job_counts, run

# costs (config `costs`): a forgetting job per fine-tune and the base model's pass once per model; a merging job per
# fine-tune whose method merges (LoRA, DoRA: not the bottlenecks, not prefix tuning)
MATH = {"download_hub_model": 4, "fetch_data": 5, "normalize_data": 5, "contamination": 1, "prepare_data": 5,
        "finetune": 4 * 4, "evaluate": 4 * 4, "forgetting": 4 * 4, "forgetting_base": 4, "merging": 4, "render": 1,
        "all": 1}
COMMONSENSE = {"download_hub_model": 4, "fetch_data": 9, "normalize_data": 9, "contamination": 1,
               "prepare_data": 9, "finetune": 4 * 4, "evaluate": 4 * 4, "forgetting": 4 * 4, "forgetting_base": 4,
               "merging": 4, "render": 1, "all": 1}
# 2 rows, each one job over its 7 sets x 3 protocols (generate, harness, harness_labels all apply to commonsense
# sets)
PROTOCOLS = {"download_model_wheel": 1, "convert_model": 1, "fetch_data": 11, "normalize_data": 11, "contamination": 1,
             "prepare_data": 11, "mix_data": 1, "finetune": 1, "evaluate": 2, "forgetting": 1, "forgetting_base": 1,
             "merging": 1, "render": 1, "all": 1}
DORA = {"download_hub_model": 1, "fetch_data": 9, "normalize_data": 9, "contamination": 1, "prepare_data": 9,
        "finetune": 10, "evaluate": 10, "forgetting": 10, "forgetting_base": 1, "merging": 10, "render": 1,
        "all": 1}
SEED = {"download_hub_model": 1, "fetch_data": 7, "normalize_data": 7, "contamination": 1, "prepare_data": 7,
        "finetune": 4, "evaluate": 1 + 4, "forgetting": 4, "forgetting_base": 1, "merging": 1, "render": 1,
        "all": 1}



def tuned(counts: dict) -> dict:
    """A paper matrix (4 models x 4 adapters) with config/paper-*-tuned.yaml over it: per (model, adapter) 6 trials,
    each validated, a selection and the chosen setting trained and tested beside the paper's setting (one
    evaluation job per row, over all its sets); the validation split is prepared once."""
    pairs = 4 * 4
    return {**counts, "prepare_data": counts["prepare_data"] + 1, "finetune": pairs * (1 + 6 + 1),
            "validate": pairs * 6, "select_setting": pairs, "evaluate": 2 * pairs,
            "forgetting": 2 * pairs, "merging": 2 * counts["merging"]}  # the tuned rows too, not the trials


@pytest.mark.parametrize("name, expected", [("paper-math", MATH), ("paper-commonsense", COMMONSENSE),
                                            ("paper-seed", SEED), ("protocols", PROTOCOLS),
                                            ("dora-commonsense", DORA),
                                            ("paper-math+paper-math-tuned", tuned(MATH)),
                                            ("paper-commonsense+paper-commonsense-tuned", tuned(COMMONSENSE))])
def test_dry_run_job_counts(tmp_path, name, expected):
    result = run(tmp_path, {}, "--dry-run", configfiles=tuple(f"config/{n}.yaml" for n in name.split("+")))
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout + result.stderr) == expected
    if name.split("+")[0] in ("paper-math", "paper-commonsense", "dora-commonsense"):  # paper-seed's and protocols' files are all mirrored
        assert "download-only file" in result.stderr and "data: {pins:" in result.stderr


@pytest.mark.parametrize("arch", ["llama", "bloom", "gptj"])
def test_paper_targets_resolve_in_the_saved_adapter(tmp_path, arch):
    """The paper configs' `target_modules: paper` ends up as upstream's modules for the architecture, in the
    adapter_config.json the fine-tune writes (on a tiny model of that architecture)."""
    import json

    import yaml

    from pipeline_lib import adapters
    from pipeline_lib.catalog import methods
    from pipeline_lib.support.checks import tiny_base

    config = yaml.safe_load(open(ROOT / "config/paper-math.yaml"))
    for name, spec in config["adapters"].items():
        if spec.get("target_modules") != "paper":
            continue
        options = {k: v for k, v in spec.items() if k != "training"}
        adapters.save(adapters.attach(tiny_base(arch), options), tmp_path / name)
        saved = json.loads((tmp_path / name / "adapter_config.json").read_text())["target_modules"]
        assert sorted(saved) == sorted(methods.TABLE[spec["method"]].paper[arch]), (arch, name)


def test_a_real_run_with_an_unpinned_file_stops_before_any_job(tmp_path):
    result = run(tmp_path, {"models": ["smollm2-135m"], "device": "cpu", "eval_sets": ["gsm8k"]},
                 configfiles=("config/paper-math.yaml",))
    assert result.returncode != 0
    assert "math_10k: download-only file https://raw.githubusercontent.com/AGI-Edgerunners/LLM-Adapters/" \
           in result.stdout + result.stderr
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()




def test_slurm_profile_dry_run_requests_gpus_memory_and_time(tmp_path):
    from helpers import ROOT

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
        block = next(b for b in finetunes if f"model={model}, run=lora" in b)
        return int(block.split("gpu_mem_mb=", 1)[1].split(",")[0])
    assert gpu_mem("llama-13b") > 1.5 * gpu_mem("llama-7b")
