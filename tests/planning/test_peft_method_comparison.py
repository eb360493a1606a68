"""config/peft-method-comparison.yaml against what PEFT published of its MetaMathQA benchmark
(published/peft_method_comparison.csv): each adapter meets one experiment, has its trainable-parameter count on
Llama-3.2-3B (counted on the meta device: no weights) and its learning rate; the run dry-runs under Snakemake."""
import pandas as pd
import pytest
import torch
import yaml

from helpers import ROOT, job_counts, run
from pipeline_lib import adapters
from pipeline_lib.catalog import base_models, published

CONFIG = yaml.safe_load((ROOT / "config/peft-method-comparison.yaml").read_text())
PUBLISHED = pd.read_csv(ROOT / "published/peft_method_comparison.csv").set_index("experiment")


def llama_3_2_3b():
    """Llama-3.2-3B's architecture (its model card's config.json), on the meta device."""
    import transformers as t

    config = t.LlamaConfig(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
                           num_key_value_heads=8, head_dim=128, vocab_size=128256, tie_word_embeddings=True)
    with torch.device("meta"):
        return t.AutoModelForCausalLM.from_config(config)


def test_every_adapter_meets_one_published_experiment_with_its_learning_rate():
    experiments = [spec["published_as"] for spec in CONFIG["adapters"].values()]
    assert len(set(experiments)) == len(experiments) and set(experiments) <= set(PUBLISHED.index)
    for name, spec in CONFIG["adapters"].items():
        row = PUBLISHED.loc[spec["published_as"]]
        lr = spec.get("training", {}).get("learning_rate", CONFIG["training"]["learning_rate"])
        assert lr == pytest.approx(row.lr), name
        assert published.adapter_labels(spec) == [spec["published_as"]]
    # the shared settings of every published run
    assert set(PUBLISHED.max_steps) == {CONFIG["training"]["max_steps"]}
    assert set(PUBLISHED.model_id) == {base_models.model_source("llama-3.2-3b", None)["published_as"]}
    assert CONFIG["prompt"] == "Question: {instruction} Think step by step.\nAnswer:"


@pytest.mark.parametrize("name", sorted(CONFIG["adapters"]))
def test_trainable_parameters_are_the_published_ones(name):
    spec = {k: v for k, v in CONFIG["adapters"][name].items() if k not in ("training", "published_as")}
    if spec["method"] == "shira":
        pytest.skip("SHiRA's random mask (torch.nonzero) cannot be built on the meta device")
    model = adapters.attach(llama_3_2_3b(), spec)
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    # AdaLoRA's rank counters are buffers-as-parameters that train only on the meta device
    count = sum(v for n, v in trainable.items() if "ranknum" not in n)
    if spec["method"] == "lora_fa":  # LoRA-FA's optimizer freezes A: PEFT counted B alone
        count -= sum(v for n, v in trainable.items() if "lora_A" in n)
    row = PUBLISHED.loc[CONFIG["adapters"][name]["published_as"]]
    assert count == row.trainable_params, (name, count, row.trainable_params)
    assert sum(p.numel() for p in model.parameters()) - sum(trainable.values()) == 3_212_749_824  # the base


@pytest.mark.slow
def test_the_run_dry_runs_with_a_job_per_method(tmp_path):
    result = run(tmp_path, {}, "--dry-run", configfiles=("config/peft-method-comparison.yaml",))
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout + result.stderr)
    methods = len(CONFIG["adapters"])
    assert counts["finetune"] == methods and counts["evaluate"] == methods + 1  # and the base model
    assert counts["load_dataset"] == 1 and counts["render"] == 1
    print(counts)
