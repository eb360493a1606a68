"""Base models for the jobs: a causal LM and its tokenizer loaded from a local directory (verified against its
manifest), or as a bitsandbytes-quantized base prepared for k-bit training. Conversion and download:
models/convert.py; the precision a job computes in: models/precision.py."""
from __future__ import annotations

from pathlib import Path

from pipeline_lib.runtime.files import verify_manifest


def bnb_config(settings: dict, device: str = "cpu"):
    import torch
    from transformers import BitsAndBytesConfig

    from pipeline_lib.models.precision import resolve

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
    from pipeline_lib.models.precision import resolve

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
    return model, with_pad_token(tokenizer, path)


class TokenizerError(ValueError):
    pass


def with_pad_token(tokenizer, path):
    """The tokenizer with a pad token (its EOS where it has none): batching needs one, and training ends every
    example with EOS. One with neither is refused here, naming the model, rather than failing inside collation."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise TokenizerError(f"{path}: the tokenizer has neither a pad nor an EOS token; batching needs a pad "
                                 f"token and training ends each example with EOS. Set `pad_token` and `eos_token` "
                                 f"in the model's tokenizer_config.json (or special_tokens_map.json)")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
