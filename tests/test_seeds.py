"""Seeds as a dimension of a run under Snakemake: each seed its own cached fine-tune and evaluations, tables
across seeds, and a grown seed list that re-runs only the new seed's jobs."""
import pandas as pd
import pytest

from snakemake_run import job_counts, run

pytestmark = pytest.mark.slow


def test_seeds_run_separately_and_a_grown_list_reruns_only_the_new_seed(tmp_path, tiny_dir, data_mirror):
    config = {"models": ["tiny-llama"], "model_defs": {"tiny-llama": {"path": str(tiny_dir)}},
              "data": {"mirror": str(data_mirror), "train_limit": 12, "eval_limit": 4},
              "adapters": {"lora": {"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}},
              "seeds": [1, 2], "eval_sets": ["gsm8k", "MultiArith"],
              "training": {"max_steps": 2, "batch_size": 4, "micro_batch_size": 2, "warmup_steps": 1,
                           "cutoff_len": 96},
              "evaluation": {"batch_size": 4, "max_new_tokens": 6, "dtype": "float32"}, "threads": 1}
    first = run(tmp_path, config, configfiles=())
    assert first.returncode == 0, first.stderr[-4000:]
    assert job_counts(first.stdout + first.stderr)["finetune"] == 2
    a, b = (tmp_path / f"results/adapters/tiny-llama/lora-seed{s}/gsm8k_train/adapter_model.safetensors"
            for s in (1, 2))
    assert a.read_bytes() != b.read_bytes()  # another seed, another adapter
    seeds = pd.read_csv(tmp_path / "results/tables/accuracy_seeds.csv")
    assert sorted(seeds[seeds.adapter == "lora"].seed) == [1, 2]
    cells = pd.read_csv(tmp_path / "results/tables/accuracy_ci.csv").set_index("adapter")
    assert cells.loc["lora", "seeds"] == 2 and cells.loc["base", "seeds"] == 1
    significance = pd.read_csv(tmp_path / "results/tables/significance.csv")
    assert set(significance.seeds) == {"1/2"} and "Smallest difference" in \
        (tmp_path / "results/tables/significance.md").read_text()

    grown = run(tmp_path, {**config, "seeds": [1, 2, 3]}, "--dry-run", configfiles=())
    assert grown.returncode == 0, grown.stderr[-3000:]
    assert job_counts(grown.stdout + grown.stderr) == {"finetune": 1, "evaluate": 2, "render": 1, "all": 1}
