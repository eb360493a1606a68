"""Trainable-parameter counts of the paper's base models under each method's paper hyperparameters,
computed from model configs on the meta device (no weights are downloaded or allocated)."""
from __future__ import annotations

import torch

from pipeline_lib.adapters import attach, parameter_counts
from pipeline_lib.catalog.targets import resolve_targets


def paper_model_configs() -> dict:
    """Architecture hyperparameters of the paper's base models (from their published model cards)."""
    import transformers as t

    return {
        "LLaMA-7B": t.LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                  num_attention_heads=32, vocab_size=32000),
        "LLaMA-13B": t.LlamaConfig(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                                   num_attention_heads=40, vocab_size=32000),
        "BLOOMz-7B": t.BloomConfig(hidden_size=4096, n_layer=30, n_head=32, vocab_size=250880),
        "GPT-J-6B": t.GPTJConfig(n_embd=4096, n_layer=28, n_head=16, rotary_dim=64, vocab_size=50400,
                                 n_positions=2048),
    }


def paper_specs(model_type: str) -> dict[str, dict]:
    """Each method with the hyperparameters of upstream's math runs (math_running_commands)."""
    def targets(method):
        return resolve_targets(method, "paper", model_type)

    return {
        "Prefix (vt=10)": {"method": "prefix_tuning", "num_virtual_tokens": 10},
        "Series (b=256)": {"method": "series", "bottleneck_size": 256, "target_modules": targets("series")},
        "AdapterP (b=256)": {"method": "adapterp", "bottleneck_size": 256, "target_modules": targets("adapterp")},
        "Parallel (b=256)": {"method": "parallel", "bottleneck_size": 256, "target_modules": targets("parallel")},
        "LoRA (r=32)": {"method": "lora", "r": 32, "lora_alpha": 64, "target_modules": targets("lora")},
    }


def count_all() -> list[dict]:
    from transformers import AutoModelForCausalLM

    rows = []
    for name, config in paper_model_configs().items():
        for label, spec in paper_specs(config.model_type).items():
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(config)
            counts = parameter_counts(attach(model, dict(spec)))
            rows.append({"model": name, "method": label, "targets": ", ".join(spec.get("target_modules", [])) or "—",
                         "trainable": counts["trainable_params"],
                         "base": counts["total_params"] - counts["trainable_params"],
                         "percent": counts["trainable_percent"]})
    return rows
