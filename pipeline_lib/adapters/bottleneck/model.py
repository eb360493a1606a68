"""A model with bottleneck adapters: injected at their targets, saved like a peft adapter (`adapter_config.json` +
`adapter_model.safetensors`, adapter tensors only), loaded onto a fresh base, switched off; never merged."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from pipeline_lib.adapters.bottleneck.config import CONFIG_NAME, FORMAT, WEIGHTS_NAME, BottleneckConfig
from pipeline_lib.adapters.bottleneck.layer import BottleneckLinear, is_linear
from pipeline_lib.catalog.targets import default_targets, matches, position_for
from pipeline_lib.runtime.files import atomic_path


def _targets(model: nn.Module, targets: list[str]) -> list[tuple[str, str]]:
    """(module path, target name) of every linear layer a target names; every target must match one."""
    found = [(path, t) for path, m in model.named_modules() if is_linear(m) for t in targets if matches(path, t)]
    missing = sorted(set(targets) - {t for _, t in found})
    if missing:
        linears = sorted({path.rsplit(".", 1)[-1] for path, m in model.named_modules() if is_linear(m)})
        raise ValueError(f"bottleneck adapter: target module(s) {missing} not found as linear layers in "
                         f"{model.config.model_type}; linear layers: {', '.join(linears)}")
    return found


def inject(model: nn.Module, config: BottleneckConfig) -> nn.Module:
    """Wrap the target linears in place, freeze everything else, and remember the config on the model."""
    model_type = model.config.model_type
    config.target_modules = list(config.target_modules or default_targets(config.method, model_type))
    for p in model.parameters():
        p.requires_grad_(False)
    for path, target in _targets(model, config.target_modules):
        parent_name, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_name)
        position = position_for(config.kind, model_type, target)
        config.positions[target] = position
        setattr(parent, child, BottleneckLinear(getattr(parent, child), position, config))
    model.bottleneck_config = config
    return model


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if ".adapter_" in k}


def save(model: nn.Module, out_dir: str | Path) -> None:
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / WEIGHTS_NAME) as tmp:
        save_file(adapter_state_dict(model), str(tmp), metadata={"format": "pt"})
    with atomic_path(out_dir / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps({"format": FORMAT, **asdict(model.bottleneck_config)}, indent=2) + "\n")


def load(model: nn.Module, adapter_dir: str | Path, config: dict) -> nn.Module:
    from safetensors.torch import load_file

    options = {k: v for k, v in config.items() if k not in ("format", "positions", "placements")}
    inject(model, BottleneckConfig.from_dict(options))
    weights = load_file(str(Path(adapter_dir) / WEIGHTS_NAME))
    expected = set(adapter_state_dict(model))
    if set(weights) != expected:
        raise ValueError(f"{adapter_dir}: adapter weights do not match the model: missing "
                         f"{sorted(expected - set(weights))[:3]}, unexpected {sorted(set(weights) - expected)[:3]}")
    model.load_state_dict(weights, strict=False)
    return model


def set_enabled(model: nn.Module, enabled: bool) -> None:
    for m in model.modules():
        if isinstance(m, BottleneckLinear):
            m.enabled = enabled


def merge(model: nn.Module) -> nn.Module:
    raise NotImplementedError(
        f"{model.bottleneck_config.method} adapter cannot be merged into the base weights: its added path "
        f"contains the non-linearity {model.bottleneck_config.non_linearity!r}, so it is no linear map; "
        f"generate with the adapter modules in place (adapters.merge_for_inference does so)")
