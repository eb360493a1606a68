"""The one adapter-injection library of the pipeline: every method by name, one call path.

An adapter spec is a dict from the config: {"method": name, **options}. peft methods (lora, dora, ia3,
vera, loha, lokr, oft, adalora, prefix_tuning, prompt_tuning, p_tuning, ...: every config class peft has)
are delegated to peft itself, options passed through to the peft config class; the bottleneck family
(series, adapterp, parallel, scaled_parallel), which peft lacks, is ours. Both save `adapter_config.json` +
`adapter_model.safetensors`, and load onto a freshly loaded base model.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from pathlib import Path

from torch import nn

from .. import methods, targets
from ..files import verify_manifest
from . import bottleneck

log = logging.getLogger(__name__)


def peft_config(method: str, options: dict):
    """Build the peft config for `method`; an unknown option fails naming it and listing the valid ones."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
    from peft.utils import PeftType

    spec = methods.get(method)
    cls = PEFT_TYPE_TO_CONFIG_MAPPING[PeftType(spec.peft_type)]
    valid = {f.name for f in dataclasses.fields(cls) if f.init}
    options = {k: v for k, v in options.items() if k not in spec.extra}  # the optimizer's, not the config's
    unknown = sorted(set(options) - valid - set(spec.extra))
    if unknown:
        raise ValueError(f"{method} adapter: unknown option(s) {unknown}; valid: {', '.join(sorted(valid))}")
    return cls(task_type="CAUSAL_LM", **{**options, **spec.fixed})


def attach(model: nn.Module, spec: dict) -> nn.Module:
    """Add a fresh adapter to `model`; afterwards only the adapter's parameters require gradients."""
    options = dict(spec)
    method = options.pop("method")
    family = methods.get(method).family
    if "target_modules" in options:  # a target preset (attention / mlp / both / paper) becomes module names
        modules = targets.resolve_targets(method, options["target_modules"], model.config.model_type)
        options["target_modules"] = modules
        if modules is None:
            del options["target_modules"]
    if family == "bottleneck":
        return bottleneck.inject(model, bottleneck.BottleneckConfig.from_dict({"method": method, **options}))
    from peft import get_peft_model

    model = get_peft_model(model, peft_config(method, options))
    if methods.get(method).converts:  # the initial adapter, which the conversion at save subtracts
        import atexit
        import shutil
        import tempfile

        initial = Path(tempfile.mkdtemp(prefix="initial-adapter-"))
        atexit.register(shutil.rmtree, initial, True)
        model.peft_config["default"].init_lora_weights = True  # as peft's conversion expects it saved
        model.save_pretrained(str(initial), safe_serialization=True)
        model.peft_config["default"].init_lora_weights = methods.get(method).fixed["init_lora_weights"]
        model.initial_adapter_dir = str(initial)
    model.adapter_spec = {"method": method, **options}
    return model


def optimizer(model: nn.Module, lr: float, weight_decay: float):
    """The optimizer of the model's adapter: AdamW over its trainable parameters, or the one its method's
    entry names (peft.optimizers: LoRA+ with its learning-rate ratio, LoRA-FA with A frozen)."""
    import torch

    spec = getattr(model, "adapter_spec", {"method": None})
    entry = methods.get(spec["method"]) if spec["method"] else None
    if entry is None or entry.optimizer is None:
        return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                 weight_decay=weight_decay)
    options = {**entry.extra, **{k: v for k, v in spec.items() if k in entry.extra}}
    if entry.optimizer == "loraplus":
        from peft.optimizers import create_loraplus_optimizer

        return create_loraplus_optimizer(model, torch.optim.AdamW, lr=lr, weight_decay=weight_decay, **options)
    from peft.optimizers import create_lorafa_optimizer

    config = model.peft_config["default"]
    return create_lorafa_optimizer(model, r=config.r, lora_alpha=config.lora_alpha, lr=lr,
                                   weight_decay=weight_decay, use_rslora=config.use_rslora)


def save(model: nn.Module, out_dir: str | Path) -> None:
    if hasattr(model, "bottleneck_config"):
        bottleneck.save(model, out_dir)
    elif hasattr(model, "peft_config"):
        # PiSSA / OLoRA: saved as the plain LoRA that gives the same model on the unchanged base
        model.save_pretrained(str(out_dir), safe_serialization=True,
                              path_initial_model_for_weight_conversion=getattr(model, "initial_adapter_dir", None))
    else:
        raise ValueError("model carries no adapter to save")


def load(model: nn.Module, adapter_dir: str | Path) -> nn.Module:
    """Load a saved adapter (ours or peft's) onto a freshly loaded base model, in inference mode."""
    config_path = Path(adapter_dir) / bottleneck.CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{adapter_dir}: no {bottleneck.CONFIG_NAME}; not an adapter directory")
    verify_manifest(adapter_dir)  # a truncated or altered cached adapter is an error, never silently used
    config = json.loads(config_path.read_text())
    if config.get("format") == bottleneck.FORMAT:
        model = bottleneck.load(model, adapter_dir, config)
    else:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    return model


def prompt_learning_config(model: nn.Module):
    """The active peft config when it is a prompt-learning method (virtual tokens), else None."""
    config = getattr(model, "peft_config", {}).get(getattr(model, "active_adapter", "default"))
    return config if config is not None and config.is_prompt_learning else None


def merge(model: nn.Module) -> nn.Module:
    """Fold the adapter into the base weights and return the plain model; raise where that is impossible."""
    if hasattr(model, "bottleneck_config"):
        return bottleneck.merge(model)
    if prompt_learning_config(model):
        raise NotImplementedError(f"{model.peft_config['default'].peft_type.value.lower()} adapter cannot be "
                                  f"merged: it adds virtual tokens, not weight updates")
    if not hasattr(model, "merge_and_unload"):
        raise ValueError("model carries no adapter to merge")
    return model.merge_and_unload()


def merge_for_inference(model: nn.Module) -> nn.Module:
    """Merge where the method allows it (the LoRA family), so generation costs what the base model costs;
    otherwise keep the adapter modules in place and say why."""
    try:
        return merge(model)
    except NotImplementedError as e:
        log.info("generating unmerged: %s", e)
        return model


@contextlib.contextmanager
def disabled(model: nn.Module):
    """Run the base model alone, adapter switched off, inside the block."""
    if hasattr(model, "bottleneck_config"):
        bottleneck.set_enabled(model, False)
        try:
            yield model
        finally:
            bottleneck.set_enabled(model, True)
    else:
        with model.disable_adapter():
            yield model


def parameter_counts(model: nn.Module) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": trainable, "total_params": total,
            "trainable_percent": 100.0 * trainable / max(total - trainable, 1)}
