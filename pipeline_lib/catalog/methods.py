"""Every adapter method the pipeline knows, as one table, importable without torch, transformers or peft (a
config check and the DAG of a large run stay fast). Everything else derives from it: which implementation
attaches a method, where a bottleneck goes by default and in upstream's published runs, what can sit on a
quantized base, what the LLM-Adapters README calls it. tests/catalog/test_methods.py checks the table against peft's
PeftType and the bottleneck implementation.

family       "bottleneck" (ours: pipeline_lib.adapters.bottleneck), "peft" (peft's weight adapters), "prompt"
             (peft's prompt learning: virtual tokens, nothing to merge). What a family knows (build, save, load,
             merge, switch off, name its parameters, count them) is one backend in pipeline_lib/adapters/families.py;
             a peft type without an entry here is a plain "peft" method (a prompt-learning one is found as such when
             built), so a new peft version's methods are known without code
peft_type    peft's PeftType value the method is built from (bottleneck: None)
fixed        peft options the method fixes (DoRA is LoRA with use_dora; rsLoRA, PiSSA, OLoRA likewise)
optimizer    the optimizer peft.optimizers builds for it (LoRA+: "loraplus", LoRA-FA: "lorafa"); None: AdamW
extra        options of the method that are not its peft config's, with their defaults (the optimizer's, or the
             data-driven initialisation's)
variant_of   a LoRA variant (an option set or optimizer of peft's LoRA): checked by tests/adapters/test_lora_variants.py
             against peft's documented behaviour rather than in the support matrix, which covers each PeftType
converts     the initialisation changes the base weights (PiSSA, OLoRA, CorDA subtract the adapter's initial
             product): saved as the equivalent plain LoRA on the unchanged base (peft's weight conversion), so the
             saved adapter loads onto the base model like any other
data_init    the initialisation reads the run's training set ("eva", "corda"): the fine-tune runs it on its first
             batches before training
needs_base   the base the method needs ("4bit": LoftQ, whose initialisation offsets the quantization error)
kind         bottlenecks: "series" (on a linear's input or output, by its role) or "parallel" (beside it)
scaling      bottlenecks: the default scale of the added path
roles        bottlenecks: default targets, by module role (upstream's forked peft mapping.py)
paper        targets of upstream's published math runs (math_running_commands), per architecture
on_4bit      on a 4-bit bitsandbytes base: "ok" (passed every check on every kernel path measured) or "checked"
             (failed on some kernel path, or never measured: bitsandbytes' kernels and the compute dtype differ by
             device, so no method is refused by name; each fine-tune checks its own adapter on its own model and
             device when it starts, adapters/quantized_check.py). docs/adapter-support.md has the measurements; a
             test keeps the "ok" entries passing on whatever device it runs on.
published_as the method's name in published tables (published/: the LLM-Adapters README's, DoRA's)

What the support matrix (support/checks.py) reads, so that no check names a method:
check        small options for its tiny models (hidden size 32 or 64), where peft's defaults do not fit them
check_roles  option -> module roles it is given there (default: weight adapters' target_modules on the attention
             inputs and the MLP output; prompt learning: none)
identity     options that make the initialisation an identity (default: the family's), or why it never is one
merges       why the method cannot be folded into the base weights (evaluated unmerged), or None
markers      substrings of its parameters' names where peft's prefix for the type does not cover them
not_applicable  why a single-adapter benchmark run cannot use it (several adapters, task ids, special inputs)
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache

FAMILIES = ("bottleneck", "peft", "prompt")


@dataclass(frozen=True)
class Method:
    name: str
    family: str
    peft_type: str | None = None
    fixed: dict = field(default_factory=dict)
    kind: str | None = None
    scaling: float | None = None
    roles: tuple[str, ...] = ()
    paper: dict[str, tuple[str, ...]] = field(default_factory=dict)
    on_4bit: str = "checked"
    published_as: str | None = None
    optimizer: str | None = None
    extra: dict = field(default_factory=dict)
    converts: bool = False
    variant_of: str | None = None
    data_init: str | None = None
    needs_base: str | None = None
    check: dict = field(default_factory=dict)
    check_roles: dict[str, tuple[str, ...]] | None = None
    identity: dict | str | None = None
    merges: str | None = None
    markers: tuple[str, ...] = ()
    not_applicable: str | None = None


def _bottleneck(name, kind, scaling, roles, paper=None, published_as=None, check=None) -> Method:
    return Method(name, "bottleneck", kind=kind, scaling=scaling, roles=roles, paper=paper or {}, on_4bit="ok",
                  published_as=published_as, check={"bottleneck_size": 8, **(check or {})}, identity={"init": "mam"})


TABLE: dict[str, Method] = {m.name: m for m in [
    # AdapterH in the paper's tables (Houlsby): series bottlenecks on the MLP linears
    _bottleneck("series", "series", 1.0, ("mlp_in", "mlp_out"), published_as="Series",
                paper={"llama": ("up_proj", "gate_proj"), "bloom": ("dense_4h_to_h",), "gptj": ("fc_out",)}),
    _bottleneck("adapterp", "series", 1.0, ("mlp_out",)),  # AdapterP (Pfeiffer): after the MLP output
    _bottleneck("parallel", "parallel", 1.0, ("attention_in",), published_as="Parallel",
                paper={"llama": ("up_proj", "down_proj"), "bloom": ("dense_4h_to_h", "dense_h_to_4h"),
                       "gptj": ("fc_in", "fc_out")}),
    # He et al.'s scaled PA; checked with its learned scale
    _bottleneck("scaled_parallel", "parallel", 4.0, ("attention_in",), check={"scaling": "learned"}),
    Method("lora", "peft", "LORA", on_4bit="ok", published_as="LoRA", check={"r": 4, "lora_alpha": 8},
           paper={"llama": ("q_proj", "k_proj", "v_proj", "up_proj", "down_proj"),
                  "bloom": ("query_key_value", "dense_4h_to_h", "dense_h_to_4h"),
                  "gptj": ("q_proj", "k_proj", "v_proj", "fc_in", "fc_out")}),
    # on 4 bits, identity at initialisation off by 8.2e-2 with bitsandbytes' avx512-bf16 CPU kernel and bf16
    # compute; every check passes on its generic kernel with float32 compute
    Method("dora", "peft", "LORA", fixed={"use_dora": True}, check={"r": 4, "lora_alpha": 8}, published_as="DoRA"),
    # LoRA variants that peft offers as options of LoraConfig or as optimizers (peft.optimizers)
    # rsLoRA: scale alpha / sqrt(r) instead of alpha / r
    Method("rslora", "peft", "LORA", fixed={"use_rslora": True}, variant_of="lora"),
    # PiSSA: A and B from the principal singular vectors; OLoRA: from a QR decomposition of the weight
    Method("pissa", "peft", "LORA", fixed={"init_lora_weights": "pissa"}, converts=True, variant_of="lora"),
    Method("olora", "peft", "LORA", fixed={"init_lora_weights": "olora"}, converts=True, variant_of="lora"),
    # EVA: A from the SVD of the layer inputs on the training set's first batches (B zero); rho lets ranks move
    Method("eva", "peft", "LORA", fixed={"init_lora_weights": "eva"}, data_init="eva", variant_of="lora",
           extra={"eva_rho": 2.0, "eva_batches": 4}),
    # CorDA: A and B from the weight decomposed along the covariance of its inputs on the training set (the
    # knowledge-preserving mode, "kpm", is peft's default), the product subtracted from the base like PiSSA
    Method("corda", "peft", "LORA", fixed={"init_lora_weights": "corda"}, data_init="corda", converts=True,
           variant_of="lora", extra={"corda_method": "kpm", "corda_batches": 4}),
    # LoftQ: on a 4-bit base, A and B fitted so that base + BA approximates the full-precision weight
    Method("loftq", "peft", "LORA", needs_base="4bit", variant_of="lora",
           identity="A and B are fitted to the base's quantization error: it starts near the full-precision model"),
    # LoRA+: B learns loraplus_lr_ratio times faster than A (the paper's default ratio: 16)
    Method("lora_plus", "peft", "LORA", optimizer="loraplus", extra={"loraplus_lr_ratio": 16.0},
           variant_of="lora"),
    # LoRA-FA: A frozen at its initialisation, B trained
    Method("lora_fa", "peft", "LORA", optimizer="lorafa", variant_of="lora"),
    Method("ia3", "peft", "IA3", on_4bit="ok",
           check_roles={"target_modules": ("attention_in", "mlp_out"), "feedforward_modules": ("mlp_out",)}),
    Method("vera", "peft", "VERA", on_4bit="ok", check={"r": 4}),
    # LoHa and LoKr read the base weight as bitsandbytes stores it on the device: shape errors on the CPU kernel
    # paths measured here; LoHa reported passing on an AVX2-only AMD EPYC
    Method("loha", "peft", "LOHA", check={"r": 4, "alpha": 8}),
    Method("lokr", "peft", "LOKR", check={"r": 4, "alpha": 8}),
    Method("oft", "peft", "OFT", on_4bit="ok", check={"r": 0, "oft_block_size": 4}),
    # on 4 bits with bf16 compute, its rank counters (ranknum) train and the saved adapter reloads differently;
    # every check passes with float32 compute
    Method("adalora", "peft", "ADALORA", check={"init_r": 4, "target_r": 2, "total_step": 10}),
    Method("prefix_tuning", "prompt", "PREFIX_TUNING", on_4bit="ok", published_as="Prefix",
           check={"num_virtual_tokens": 4}),
    Method("prompt_tuning", "prompt", "PROMPT_TUNING", on_4bit="ok", check={"num_virtual_tokens": 4}),
    Method("p_tuning", "prompt", "P_TUNING", on_4bit="ok", check={"num_virtual_tokens": 4, "encoder_hidden_size": 16}),
    Method("cartridge", "prompt", "CARTRIDGE", check={"num_virtual_tokens": 4}),
    # the rest of peft's types need entries only where the tiny models need smaller options, an identity needs
    # asking for, or the method cannot merge or run in a single-adapter benchmark
    Method("adaption_prompt", "peft", "ADAPTION_PROMPT", check={"adapter_len": 4, "adapter_layers": 1},
           check_roles={}, markers=("adaption_",),
           merges="it adds gated prompts inside the attention layers, not weight updates"),
    Method("beft", "peft", "BEFT", merges="its bias adapters have no bias to fold into on a base without biases"),
    Method("c3a", "peft", "C3A", check={"block_size": 8}, identity={"init_weights": True}),
    Method("fourierft", "peft", "FOURIERFT", check={"n_frequency": 64}, identity={"init_weights": True}),
    Method("waveft", "peft", "WAVEFT", check={"n_frequency": 64}),
    Method("miss", "peft", "MISS", check={"r": 4}),
    Method("psoft", "peft", "PSOFT", check={"r": 4}),
    Method("shira", "peft", "SHIRA", check={"r": 4}),
    Method("road", "peft", "ROAD", check={"group_size": 4}),
    Method("vblora", "peft", "VBLORA", check={"vector_length": 8, "num_vectors": 16},
           identity="its vectors come from a randomly initialised bank (peft: a zero bank would get no gradient)"),
    Method("unilora", "peft", "UNILORA",
           identity="its vector bank starts uniform in ±init_theta_d_bound (peft: zeros would vanish the gradients)"),
    Method("ln_tuning", "peft", "LN_TUNING", check_roles={}),  # peft's own targets: the layer norms
    Method("trainable_tokens", "peft", "TRAINABLE_TOKENS", check={"token_indices": [1, 2]}, check_roles={}),
    Method("xlora", "peft", "XLORA", not_applicable="it mixes several trained LoRA adapters (`adapters`) by a "
                                                    "learned gate: a run of trained adapters, not one fine-tune"),
    Method("poly", "peft", "POLY", not_applicable="it routes each example by its task id (`task_ids`) over a "
                                                  "multi-task inventory of LoRA modules"),
    Method("multitask_prompt_tuning", "prompt", "MULTITASK_PROMPT_TUNING",
           not_applicable="it needs each example's task id (`task_ids`) at every forward pass"),
    Method("cpt", "prompt", "CPT", not_applicable="it tunes the tokens of given in-context examples (`cpt_token_ids`, "
                                                  "`cpt_mask`, `cpt_tokens_type_mask`), which a benchmark's "
                                                  "training set does not have"),
]}


@lru_cache(maxsize=1)
def peft_types() -> tuple[str, ...]:
    """peft's PeftType values, read from that one module (a plain `enum`): importing the peft package itself
    would import torch and transformers (~2 s)."""
    spec = importlib.util.find_spec("peft")
    path = spec.submodule_search_locations[0] + "/utils/peft_types.py"
    module_spec = importlib.util.spec_from_file_location("_peft_types", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return tuple(sorted(t.value for t in module.PeftType))


def get(name: str) -> Method:
    """The table's entry, or for any other peft method (by its lower-case PeftType name) a plain one."""
    if name in TABLE:
        return TABLE[name]
    if name.upper() in peft_types():
        return Method(name, "peft", name.upper())
    raise ValueError(f"unknown adapter method {name!r}; valid: {', '.join(known())}")


def known() -> list[str]:
    return sorted({*TABLE, *(t.lower() for t in peft_types())})


def by_peft_type(peft_type: str) -> Method:
    """The entry of a peft type itself (not one of its variants): what a loaded peft adapter is."""
    return get(peft_type.lower())


def matrix_methods() -> list[str]:
    """The support matrix's rows: ours, then every peft type (the table's entries first), DoRA with them; LoRA's
    option variants are checked on their own (tests/adapters/test_lora_variants.py)."""
    entries = [name for name, m in TABLE.items() if not m.variant_of]
    return entries + sorted(t.lower() for t in peft_types() if t.lower() not in TABLE)


def of_family(family: str) -> list[str]:
    return [name for name, m in TABLE.items() if m.family == family]


def on_4bit(name: str) -> str:
    """"ok" or "checked" (a method outside the table: "checked", as nothing was measured)."""
    return get(name).on_4bit


def published_names() -> dict[str, str]:
    """Our method name -> the LLM-Adapters README's."""
    return {name: m.published_as for name, m in TABLE.items() if m.published_as}


def merges(name: str) -> bool:
    """Whether the method's adapter folds into the base weights: peft's weight adapters, unless the entry says why
    not (bottleneck adapters hold a non-linearity; prompt learning adds virtual tokens)."""
    entry = get(name)
    return entry.family == "peft" and entry.merges is None
