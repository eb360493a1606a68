"""The protocol card: every line that defines a run, in the order the run flows, and what the jobs recorded."""
import pandas as pd
import torch

from helpers import filled_config
from pipeline_lib.planning.plan import prepare
from pipeline_lib.planning.render import CARD_ORDER, card
from pipeline_lib.report import card as protocol_card
from pipeline_lib.runtime import provenance


def test_the_card_states_every_line_of_the_default_run_in_run_order():
    plan = prepare(filled_config(data={"mirror": None}))
    made = card(plan)
    assert [name for name, _ in made] == list(CARD_ORDER)
    record = {"provenance": provenance.record({"embedded": "smollm2-135m", "wheel_sha256": "abc"}, {}, "cpu"),
              "precision": {"chosen": "float32", "basis": "set"}, "training": {}}
    runs = pd.DataFrame([{"provenance": record["provenance"], "precision": "float32 (set)"}])
    table = protocol_card.table(made, {("m", "lora", "t", None): record}, runs)
    text = table.to_string()
    for needed in ("Q4_1 GGUF weights dequantized", "evaluation: gsm8k", "sha256", "seed 42", "decontamination",
                   "policy train", "r=32", "lora_alpha=64", "lora_dropout=0.05", "target_modules=", "weight decay 0",
                   "group_by_length True", "packing False", "shuffle True", "attention auto",
                   "gradient checkpointing False", "peft-bench commit", "python", "datasets", "accelerate",
                   "bitsandbytes", "Holm", "chance"):
        assert needed in text, needed
    threads = torch.get_num_threads()  # results depend on it at the last bit: recorded with the device
    assert f"{threads} thread{'s' * (threads != 1)}" in text
    assert list(dict.fromkeys(table.section)) == [*CARD_ORDER, "recorded by the jobs", "software"]
    assert protocol_card.line(made, {("m", "lora", "t", None): record}, runs).startswith("Protocol: 1 epoch(s)")


def test_a_run_with_seeds_lists_each_adapters_options_once():
    """With seeds, an adapter's runs are named apart (lora.seed1, ...): the card reads the options by adapter."""
    plan = prepare(filled_config(data={"mirror": None}, seeds=[1, 2]))
    adapters = dict(dict(card(plan))["adapters"])
    assert set(adapters) == set(plan.config["adapters"])
    assert "r=32" in adapters["lora"] and "seed" not in adapters["lora"]
