"""The one adapter-injection library of the pipeline: every method by name, one call path.

An adapter spec is a dict from the config: {"method": name, **options}. Which implementation attaches a method is
its family's (pipeline_lib/catalog/methods.py lists every method and its family): peft's config classes for peft's
methods, options passed through; our bottleneck family (bottleneck/), which peft lacks. Every family saves
`adapter_config.json` + `adapter_model.safetensors` and loads onto a freshly loaded base model.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from torch import nn

from pipeline_lib.adapters import bottleneck, families
from pipeline_lib.catalog import methods, targets
from pipeline_lib.runtime.files import verify_manifest

log = logging.getLogger(__name__)


def attach(model: nn.Module, spec: dict, batches=None) -> nn.Module:
    """Add a fresh adapter to `model`; afterwards only the adapter's parameters require gradients. `batches`:
    model inputs from the training set, read by a data-driven initialisation (EVA, CorDA) and by nothing else."""
    options = dict(spec)
    method = options.pop("method")
    if "target_modules" in options:  # a target preset (attention / mlp / both / paper) becomes module names
        modules = targets.resolve_targets(method, options["target_modules"], model.config.model_type)
        options["target_modules"] = modules
        if modules is None:
            del options["target_modules"]
    entry = methods.get(method)
    if entry.not_applicable:
        raise ValueError(f"{method} adapter: not applicable to a benchmark fine-tune: {entry.not_applicable}")
    model = families.of_method(method).build(model, method, options, batches)
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
    families.of_model(model).save(model, out_dir)


def load(model: nn.Module, adapter_dir: str | Path) -> nn.Module:
    """Load a saved adapter (ours or peft's) onto a freshly loaded base model, in inference mode."""
    config_path = Path(adapter_dir) / bottleneck.CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{adapter_dir}: no {bottleneck.CONFIG_NAME}; not an adapter directory")
    verify_manifest(adapter_dir)  # a truncated or altered cached adapter is an error, never silently used
    config = json.loads(config_path.read_text())
    model = families.of_saved(config).load(model, adapter_dir, config)
    model.eval()
    return model


def prompt_learning_config(model: nn.Module):
    """The active peft config when it is a prompt-learning method (virtual tokens), else None."""
    return model.peft_config[model.active_adapter] if families.BACKENDS["prompt"].owns(model) else None


def merge(model: nn.Module) -> nn.Module:
    """Fold the adapter into the base weights and return the plain model; NotImplementedError, saying why, where
    the method cannot be merged."""
    return families.of_model(model).merge(model)


def carries_adapter(model: nn.Module) -> bool:
    """Whether the model still has an adapter's modules (unmerged, or a method that cannot merge)."""
    try:
        families.of_model(model)
        return True
    except ValueError:
        return False


def unmergeable_reason(model: nn.Module) -> str:
    """Why the model's adapter cannot be merged (its backend's or peft's own words)."""
    try:
        merge(model)
    except (NotImplementedError, ValueError) as e:  # peft refuses some merges with a ValueError
        return str(e)
    return "merged"


def merge_for_inference(model: nn.Module) -> nn.Module:
    """Merge where the method allows it (the LoRA family), so generation costs what the base model costs;
    otherwise keep the adapter modules in place and say why."""
    try:
        return merge(model)
    except NotImplementedError as e:
        log.info("generating unmerged: %s", e)
        return model


def disabled(model: nn.Module):
    """Run the base model alone, adapter switched off, inside the block (a context manager)."""
    return families.of_model(model).disabled(model)


def _weights(p) -> int:
    """A parameter's weights; a bitsandbytes 4-bit one packs two per stored byte, its shape in its quant state."""
    state = getattr(p, "quant_state", None)
    return state.shape.numel() if state is not None and hasattr(state, "shape") else p.numel()


def parameter_counts(model: nn.Module) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(_weights(p) for p in model.parameters())
    return {"trainable_params": trainable, "total_params": total,
            "trainable_percent": 100.0 * trainable / max(total - trainable, 1)}
