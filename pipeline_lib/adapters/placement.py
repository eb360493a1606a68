"""Where bottleneck adapters go, per architecture, as data.

PLACEMENT: how a bottleneck sits relative to each named linear layer, from upstream LLM-Adapters
`peft/src/peft/tuners/bottleneck.py` (TRANSFORMERS_MODELS_TO_ADAPTER_TYPE_MAPPING): its `mh_adapter` is our
"input" (bottleneck + residual applied to the linear's input), its `output_adapter` our "output" (applied to
the linear's output, plus residual); a parallel adapter is "parallel" on any linear (computed from the
linear's input, added to its output).

DEFAULT_TARGETS: upstream's default target modules per method (its forked peft `mapping.py`).
PAPER_TARGETS: the overrides of upstream's published math runs (`math_running_commands`).
"""
from __future__ import annotations

PLACEMENT: dict[str, dict[str, str]] = {
    "llama": {"gate_proj": "input", "up_proj": "input", "down_proj": "output"},
    "bloom": {"dense_h_to_4h": "input", "dense_4h_to_h": "output"},
    "gptj": {"fc_in": "input", "fc_out": "output"},
    "opt": {"fc1": "input", "fc2": "output"},
    "gpt_neo": {"c_fc": "input", "c_proj": "output"},
}

DEFAULT_TARGETS: dict[str, dict[str, list[str]]] = {
    "series": {"llama": ["gate_proj", "up_proj", "down_proj"], "bloom": ["dense_h_to_4h", "dense_4h_to_h"],
               "gptj": ["fc_in", "fc_out"], "opt": ["fc1", "fc2"], "gpt_neo": ["c_fc", "c_proj"]},
    "parallel": {"llama": ["q_proj", "k_proj", "v_proj"], "bloom": ["query_key_value"],
                 "gptj": ["q_proj", "k_proj", "v_proj"], "opt": ["q_proj", "k_proj", "v_proj"],
                 "gpt_neo": ["q_proj", "k_proj", "v_proj"]},
}

PAPER_TARGETS: dict[str, dict[str, list[str]]] = {
    "series": {"llama": ["up_proj", "gate_proj"], "bloom": ["dense_4h_to_h"], "gptj": ["fc_out"]},
    "parallel": {"llama": ["up_proj", "down_proj"], "bloom": ["dense_4h_to_h", "dense_h_to_4h"],
                 "gptj": ["fc_in", "fc_out"]},
}


def placement_for(method: str, model_type: str, module_name: str) -> str:
    """The placement of a bottleneck on `module_name`: parallel adapters are always 'parallel'."""
    if method == "parallel":
        return "parallel"
    arch = PLACEMENT.get(model_type)
    if arch is None:
        raise ValueError(f"series adapter: no placement map for architecture {model_type!r}; "
                         f"known: {', '.join(sorted(PLACEMENT))}")
    if module_name not in arch:
        raise ValueError(f"series adapter: module {module_name!r} has no placement in the {model_type} map; "
                         f"valid: {', '.join(arch)}")
    return arch[module_name]


def default_targets(method: str, model_type: str) -> list[str]:
    try:
        return list(DEFAULT_TARGETS[method][model_type])
    except KeyError:
        raise ValueError(f"{method} adapter: no default target modules for architecture {model_type!r}; "
                         f"set target_modules in the adapter's config") from None
