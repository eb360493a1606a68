"""Where adapters go, per architecture, as data: module roles, target presets, bottleneck positions.

Words: a method's *kind* of bottleneck (series or parallel, catalog/methods.py); a bottleneck's *position* on a
linear (input, output or parallel); a *target preset* (attention / mlp / both: roles resolved to module names
here); *placement* only for the paper's placement study, whose sweep coordinate is the preset.

Module names are dotted suffixes of module paths ("mlp.c_proj" matches "h.0.mlp.c_proj" but not
"h.0.attn.c_proj"). Each architecture lists its linear layers by role:
  attention_in  the query/key/value projections (or the fused one)
  attention_out the attention output projection
  mlp_in        the MLP's input projection(s)
  mlp_out       the MLP's output projection

Series-type bottlenecks (series, adapterp) take their position from the role, following upstream
LLM-Adapters `peft/src/peft/tuners/bottleneck.py` (TRANSFORMERS_MODELS_TO_ADAPTER_TYPE_MAPPING): its
`mh_adapter` on the MLP input linears is our "input" position (bottleneck + residual applied to the
linear's input), its `output_adapter` on the MLP output linear our "output" position (applied to the
linear's output, plus residual). Upstream mapped MLP linears only; we also place an "output" adapter on the
attention output projection, which is what "a series adapter after the attention" means in the paper's
placement study. Parallel-type bottlenecks (parallel, scaled_parallel) are "parallel" on any linear
(computed from the linear's input, added to its output).
"""
from __future__ import annotations

from pipeline_lib.catalog import methods

_LLAMA_LIKE = {"attention_in": ["q_proj", "k_proj", "v_proj"], "attention_out": ["o_proj"],
               "mlp_in": ["gate_proj", "up_proj"], "mlp_out": ["down_proj"]}

ARCHITECTURES: dict[str, dict[str, list[str]]] = {
    "llama": _LLAMA_LIKE, "mistral": _LLAMA_LIKE, "qwen2": _LLAMA_LIKE, "gemma": _LLAMA_LIKE,
    "bloom": {"attention_in": ["query_key_value"], "attention_out": ["self_attention.dense"],
              "mlp_in": ["dense_h_to_4h"], "mlp_out": ["dense_4h_to_h"]},
    "gptj": {"attention_in": ["q_proj", "k_proj", "v_proj"], "attention_out": ["attn.out_proj"],
             "mlp_in": ["fc_in"], "mlp_out": ["fc_out"]},
    "opt": {"attention_in": ["q_proj", "k_proj", "v_proj"], "attention_out": ["self_attn.out_proj"],
            "mlp_in": ["fc1"], "mlp_out": ["fc2"]},
    "gpt_neo": {"attention_in": ["q_proj", "k_proj", "v_proj"], "attention_out": ["attention.out_proj"],
                "mlp_in": ["mlp.c_fc"], "mlp_out": ["mlp.c_proj"]},
    "gpt2": {"attention_in": ["attn.c_attn"], "attention_out": ["attn.c_proj"],
             "mlp_in": ["mlp.c_fc"], "mlp_out": ["mlp.c_proj"]},
    "gpt_neox": {"attention_in": ["query_key_value"], "attention_out": ["attention.dense"],
                 "mlp_in": ["dense_h_to_4h"], "mlp_out": ["dense_4h_to_h"]},
}
SERIES_POSITION = {"attention_out": "output", "mlp_in": "input", "mlp_out": "output"}

# Target presets, resolved per architecture: the module roles in each part of a transformer block.
PRESETS = {"attention": ["attention_in", "attention_out"], "mlp": ["mlp_in", "mlp_out"],
              "both": ["attention_in", "attention_out", "mlp_in", "mlp_out"]}


def resolve_targets(method: str, targets, model_type: str):
    """`target_modules` as given, or resolved from a target preset: `attention` / `mlp` / `both` (the roles'
    modules, kept to those the method can place on: series-type adapters have no place on q/k/v), or `paper`
    (upstream's published math-run targets for this architecture, else the method's default)."""
    if not isinstance(targets, str) or targets not in (*PRESETS, "paper"):
        return targets
    spec = methods.get(method)
    if targets == "paper":
        paper = spec.paper.get(model_type)
        return list(paper) if paper else (default_targets(method, model_type) if spec.roles else None)
    roles = PRESETS[targets]
    if spec.kind == "series":
        roles = [r for r in roles if r in SERIES_POSITION]
    return modules_for(model_type, roles)


# modules outside the blocks' linears that a method may also target
OTHER_MODULES = ("lm_head", "embed_tokens", "wte", "word_embeddings", "embed_in", "embed_out")


def unknown_targets(model_type: str, targets: list[str]) -> list[str]:
    """The targets that name no module of this architecture (compared by their last dotted component)."""
    known = {name.rsplit(".", 1)[-1] for names in architecture(model_type).values() for name in names}
    known |= set(OTHER_MODULES)
    return [t for t in targets if t.rsplit(".", 1)[-1] not in known]


def known_modules(model_type: str) -> list[str]:
    return [name for names in architecture(model_type).values() for name in names] + list(OTHER_MODULES)


def architecture(model_type: str) -> dict[str, list[str]]:
    if model_type not in ARCHITECTURES:
        raise ValueError(f"no module-role map for architecture {model_type!r}; "
                         f"known: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[model_type]


def modules_for(model_type: str, roles: list[str]) -> list[str]:
    """Module names of the given roles, e.g. ['attention_in', 'mlp_out'] -> ['q_proj', ..., 'down_proj']."""
    arch = architecture(model_type)
    unknown = sorted(set(roles) - set(arch))
    if unknown:
        raise ValueError(f"unknown module role(s) {unknown}; valid: {', '.join(arch)}")
    return [name for role in roles for name in arch[role]]


def default_targets(method: str, model_type: str) -> list[str]:
    """A bottleneck method's default targets on this architecture (upstream's forked peft mapping.py)."""
    return modules_for(model_type, list(methods.get(method).roles))


def role_of(model_type: str, target: str) -> str | None:
    return next((role for role, names in architecture(model_type).items() if target in names), None)


def position_for(kind: str, model_type: str, target: str) -> str:
    """'input', 'output' or 'parallel' for a bottleneck of `kind` ('series' or 'parallel') on `target`."""
    if kind == "parallel":
        return "parallel"
    role = role_of(model_type, target)
    if role not in SERIES_POSITION:
        valid = modules_for(model_type, list(SERIES_POSITION))
        raise ValueError(f"series adapter: module {target!r} has no series position in the {model_type} map; "
                         f"valid: {', '.join(valid)}")
    return SERIES_POSITION[role]


def matches(module_path: str, target: str) -> bool:
    return module_path == target or module_path.endswith("." + target)
