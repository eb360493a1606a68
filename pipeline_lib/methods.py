"""Every adapter method the pipeline knows, as one table, importable without torch, transformers or peft (a
config check and the DAG of a large run stay fast). Everything else derives from it: which implementation
attaches a method, where a bottleneck goes by default and in upstream's published runs, what can sit on a
quantized base, what the LLM-Adapters README calls it. tests/test_methods.py checks the table against peft's
PeftType and the bottleneck implementation.

family       "bottleneck" (ours: pipeline_lib.adapters.bottleneck), "peft" (peft's weight adapters), "prompt"
             (peft's prompt learning: virtual tokens, nothing to merge)
peft_type    peft's PeftType value the method is built from (bottleneck: None)
fixed        peft options the method fixes (DoRA is LoRA with use_dora; rsLoRA, PiSSA, OLoRA likewise)
optimizer    the optimizer peft.optimizers builds for it (LoRA+: "loraplus", LoRA-FA: "lorafa"); None: AdamW
extra        options of the method that are not its peft config's, with their defaults (the optimizer's)
variant_of   a LoRA variant (an option set or optimizer of peft's LoRA): checked by tests/test_lora_variants.py
             against peft's documented behaviour rather than in the support matrix, which covers each PeftType
converts     the initialisation changes the base weights (PiSSA, OLoRA subtract the adapter's initial product):
             saved as the equivalent plain LoRA on the unchanged base (peft's weight conversion), so the saved
             adapter loads onto the base model like any other
kind         bottlenecks: "series" (on a linear's input or output, by its role) or "parallel" (beside it)
scaling      bottlenecks: the default scale of the added path
roles        bottlenecks: default targets, by module role (upstream's forked peft mapping.py)
paper        targets of upstream's published math runs (math_running_commands), per architecture
on_4bit      on a 4-bit bitsandbytes base: "ok" (passed every check on every kernel path measured) or "checked"
             (failed on some kernel path: bitsandbytes' kernels and the compute dtype differ by device, so no
             method is refused by name; each fine-tune checks its own adapter on its own model and device when it
             starts, adapters/quantized_check.py). docs/adapter-support.md has the measurements; a test keeps the
             "ok" entries passing on whatever device it runs on.
published_as the method's name in the LLM-Adapters README tables (published/llm_adapters_readme.csv)
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


def _bottleneck(name, kind, scaling, roles, paper=None, published_as=None) -> Method:
    return Method(name, "bottleneck", kind=kind, scaling=scaling, roles=roles, paper=paper or {},
                  on_4bit="ok", published_as=published_as)


TABLE: dict[str, Method] = {m.name: m for m in [
    # AdapterH in the paper's tables (Houlsby): series bottlenecks on the MLP linears
    _bottleneck("series", "series", 1.0, ("mlp_in", "mlp_out"), published_as="Series",
                paper={"llama": ("up_proj", "gate_proj"), "bloom": ("dense_4h_to_h",), "gptj": ("fc_out",)}),
    _bottleneck("adapterp", "series", 1.0, ("mlp_out",)),  # AdapterP (Pfeiffer): after the MLP output
    _bottleneck("parallel", "parallel", 1.0, ("attention_in",), published_as="Parallel",
                paper={"llama": ("up_proj", "down_proj"), "bloom": ("dense_4h_to_h", "dense_h_to_4h"),
                       "gptj": ("fc_in", "fc_out")}),
    _bottleneck("scaled_parallel", "parallel", 4.0, ("attention_in",)),  # He et al.'s scaled PA
    Method("lora", "peft", "LORA", on_4bit="ok", published_as="LoRA",
           paper={"llama": ("q_proj", "k_proj", "v_proj", "up_proj", "down_proj"),
                  "bloom": ("query_key_value", "dense_4h_to_h", "dense_h_to_4h"),
                  "gptj": ("q_proj", "k_proj", "v_proj", "fc_in", "fc_out")}),
    # on 4 bits, identity at initialisation off by 8.2e-2 with bitsandbytes' avx512-bf16 CPU kernel and bf16
    # compute; every check passes on its generic kernel with float32 compute
    Method("dora", "peft", "LORA", fixed={"use_dora": True}),
    # LoRA variants that peft offers as options of LoraConfig or as optimizers (peft.optimizers)
    # rsLoRA: scale alpha / sqrt(r) instead of alpha / r
    Method("rslora", "peft", "LORA", fixed={"use_rslora": True}, variant_of="lora"),
    # PiSSA: A and B from the principal singular vectors; OLoRA: from a QR decomposition of the weight
    Method("pissa", "peft", "LORA", fixed={"init_lora_weights": "pissa"}, converts=True, variant_of="lora"),
    Method("olora", "peft", "LORA", fixed={"init_lora_weights": "olora"}, converts=True, variant_of="lora"),
    # LoRA+: B learns loraplus_lr_ratio times faster than A (the paper's default ratio: 16)
    Method("lora_plus", "peft", "LORA", optimizer="loraplus", extra={"loraplus_lr_ratio": 16.0},
           variant_of="lora"),
    # LoRA-FA: A frozen at its initialisation, B trained
    Method("lora_fa", "peft", "LORA", optimizer="lorafa", variant_of="lora"),
    Method("ia3", "peft", "IA3", on_4bit="ok"),
    Method("vera", "peft", "VERA", on_4bit="ok"),
    # LoHa and LoKr read the base weight as bitsandbytes stores it on the device: shape errors on the CPU kernel
    # paths measured here; LoHa reported passing on an AVX2-only AMD EPYC
    Method("loha", "peft", "LOHA"),
    Method("lokr", "peft", "LOKR"),
    Method("oft", "peft", "OFT", on_4bit="ok"),
    # on 4 bits with bf16 compute, its rank counters (ranknum) train and the saved adapter reloads differently;
    # every check passes with float32 compute
    Method("adalora", "peft", "ADALORA"),
    Method("prefix_tuning", "prompt", "PREFIX_TUNING", on_4bit="ok", published_as="Prefix"),
    Method("prompt_tuning", "prompt", "PROMPT_TUNING", on_4bit="ok"),
    Method("p_tuning", "prompt", "P_TUNING", on_4bit="ok"),
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


def of_family(family: str) -> list[str]:
    return [name for name, m in TABLE.items() if m.family == family]


def on_4bit(name: str) -> str:
    """"ok" or "checked" (a method outside the table: "checked", as nothing was measured)."""
    return get(name).on_4bit


def published_names() -> dict[str, str]:
    """Our method name -> the LLM-Adapters README's."""
    return {name: m.published_as for name, m in TABLE.items() if m.published_as}
