"""Where every artifact lives (pipeline_lib/planning/paths.py): one place, and the layout the rules, jobs and docs
assume; wildcard names give the rules' patterns."""
from pipeline_lib.planning import paths


def test_the_layout_of_a_run():
    row = ("smollm2-135m", "lora-seed2", "gsm8k_train", "generate", "gsm8k")
    assert paths.adapter_dir(*row[:3]) == "results/adapters/smollm2-135m/lora-seed2/gsm8k_train"
    assert paths.predictions(*row) == "results/predictions/smollm2-135m/lora-seed2/gsm8k_train/generate/gsm8k.jsonl"
    assert paths.score(*row) == "results/scores/smollm2-135m/lora-seed2/gsm8k_train/generate/gsm8k.json"
    assert paths.partial(paths.predictions(*row)).endswith(".jsonl.partial")
    assert paths.metrics(paths.adapter_dir(*row[:3])).endswith("gsm8k_train/metrics.json")
    # the checkpoint lives beside the adapter, not inside it: Snakemake removes a failed job's output directory
    checkpoint = paths.checkpoint_dir(paths.adapter_dir(*row[:3]))
    assert not checkpoint.startswith(paths.adapter_dir(*row[:3]) + "/")
    assert paths.prepared_data("eval", "gsm8k") == "results/data/eval/gsm8k.jsonl"
    assert paths.full_data("gsm8k") == "results/data/full/gsm8k.jsonl"
    assert paths.raw_data("LLM-Adapters/dataset/gsm8k/test.json") == "resources/data/LLM-Adapters/dataset/gsm8k/test.json"
    assert paths.log("finetune", "m/r/t") == "logs/finetune/m/r/t.log"
    assert paths.table("accuracy", "csv") == f"{paths.TABLES}/accuracy.csv"


def test_wildcards_give_the_rules_patterns():
    assert paths.score("{model}", "{run}", "{train}", "{protocol}", "{dataset}") == \
        "results/scores/{model}/{run}/{train}/{protocol}/{dataset}.json"
    assert paths.model_dir("{model}") == "resources/models/{model}"
