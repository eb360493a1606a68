"""The start-of-job check of a method whose support on a quantized base depends on the device ("checked" in the
method table): bitsandbytes stores and multiplies 4-bit weights with device-specific kernels, so whether e.g. DoRA
starts as the identity or LoHa's shapes fit was measured to differ between two CPUs of the same kind. What one
device measured is never carried to another: each fine-tune checks its own adapter on its own model and device
before the first step (well under a second), and a pass is cached for the same method options, quantization,
model and machine."""
from __future__ import annotations

import hashlib
import json

import torch

from pipeline_lib.adapters import disabled
from pipeline_lib.models import precision
from pipeline_lib.runtime.files import write_json

IDENTITY_TOLERANCE = 1e-4  # max |Δlogits| of an adapter at its default (identity) initialisation
INIT_OPTIONS = ("init_lora_weights", "init_weights", "init")  # options that can make the start not the identity


class QuantizedBaseError(RuntimeError):
    pass


def check(model, spec: dict, quantization: dict, where: str) -> None:
    """Only the adapter's parameters train, forward and backward run on a short input, and a default
    initialisation leaves the base's logits unchanged; else a QuantizedBaseError naming the method, the base and
    device (`where`) and the failure. Leaves no gradients and no RNG draw behind; a pass is cached."""
    path = precision.cache_dir() / "quantized-checks" / f"{_key(model, spec, quantization)}.json"
    if path.is_file():
        return
    was_training = model.training
    model.eval()
    try:
        failure = _failure(model, spec)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    if failure:
        raise QuantizedBaseError(
            f"{spec['method']} on {where}: {failure}. Whether this method works on a quantized base depends on "
            f"bitsandbytes' kernels and the compute dtype of the device (docs/adapter-support.md); train it on an "
            f"unquantized base (quantization: none) or on another device")
    write_json(path, {"spec": spec, "quantization": quantization, "passed": True})


def _failure(model, spec: dict) -> str | None:
    from pipeline_lib.adapters.families import adapter_markers, identity_options

    markers = adapter_markers(spec["method"])
    stray = [n for n, p in model.named_parameters() if p.requires_grad and not any(m in n for m in markers)]
    if stray:
        return f"parameters that are not the adapter's would train: {stray[:2]}"
    ids = (torch.arange(1, 9, device=next(model.parameters()).device) % model.config.vocab_size)[None]
    try:
        with torch.no_grad():
            with disabled(model):
                base = model(input_ids=ids).logits.float()
            drift = (model(input_ids=ids).logits.float() - base).abs().max().item()
        starts_as_identity = not any(k in spec for k in INIT_OPTIONS) and isinstance(identity_options(spec["method"]),
                                                                                       dict)
        if starts_as_identity and not drift <= IDENTITY_TOLERANCE:
            return f"at its default (identity) initialisation the adapter changes the logits by {drift:.2e} " \
                   f"(expected at most {IDENTITY_TOLERANCE:g})"
        model(input_ids=ids, labels=ids).loss.backward()
    except RuntimeError as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return None


def _key(model, spec: dict, quantization: dict) -> str:
    device = next(model.parameters()).device
    machine = precision.choose(device) if device.type == "cuda" else precision.machine_key()
    facts = [spec, quantization, model.config.to_dict().get("_name_or_path"), model.config.model_type,
             str(device.type), machine]
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:20]
