"""Seeds as a dimension of a run under Snakemake: each seed its own cached fine-tune and evaluations, tables
across seeds, and a grown seed list that re-runs only the new seed's jobs."""
import pandas as pd
import pytest

from helpers import ONE_LORA, job_counts, merged, run

pytestmark = pytest.mark.slow


def test_seeds_run_separately_and_a_grown_list_reruns_only_the_new_seed(tmp_path, machine):
    config = merged(machine, {"data": {"eval_limit": 4}, "seeds": [1, 2], "eval_sets": ["gsm8k", "MultiArith"],
                              "training": {"cutoff_len": 96}, "evaluation": {"batch_size": 4, "max_new_tokens": 6}})
    first = run(tmp_path, config, configfiles=ONE_LORA)
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

    grown = run(tmp_path, {**config, "seeds": [1, 2, 3]}, "--dry-run", configfiles=ONE_LORA)
    assert grown.returncode == 0, grown.stderr[-3000:]
    assert job_counts(grown.stdout + grown.stderr) == {"finetune": 1, "evaluate": 1, "render": 1, "all": 1}
