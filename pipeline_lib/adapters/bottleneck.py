"""The bottleneck adapter family of LLM-Adapters (Series/AdapterH and Parallel), which peft lacks.

A bottleneck is down-projection -> non-linearity -> up-projection, times a scale. It wraps a linear layer
in one of three placements (see placement.py). Saved like a peft adapter: `adapter_config.json` +
`adapter_model.safetensors` holding only the adapter's tensors.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn
from transformers.activations import ACT2FN

from ..files import atomic_path
from .placement import default_targets, placement_for

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
FORMAT = "pipeline_lib.bottleneck"


@dataclass
class BottleneckConfig:
    method: str = "series"              # "series" or "parallel"
    bottleneck_size: int = 256          # paper default
    non_linearity: str = "tanh"         # paper default
    dropout: float = 0.0
    scaling: float | str = 1.0          # a float, or "learned"
    init: str = "bert"                  # "bert": normal(0.02) on both projections; "mam": zero up-projection
    target_modules: list[str] | None = None
    placements: dict[str, str] = field(default_factory=dict)  # filled at injection: module name -> placement

    @classmethod
    def from_dict(cls, options: dict) -> "BottleneckConfig":
        valid = {f.name for f in fields(cls)} - {"placements"}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ValueError(f"bottleneck adapter: unknown option(s) {unknown}; valid: {sorted(valid)}")
        config = cls(**options)
        if config.method not in ("series", "parallel"):
            raise ValueError(f"bottleneck adapter: method must be 'series' or 'parallel', got {config.method!r}")
        if config.non_linearity not in ACT2FN:
            raise ValueError(f"bottleneck adapter: unknown non_linearity {config.non_linearity!r}")
        if config.init not in ("bert", "mam"):
            raise ValueError(f"bottleneck adapter: init must be 'bert' or 'mam', got {config.init!r}")
        if isinstance(config.scaling, str) and config.scaling != "learned":
            raise ValueError(f"bottleneck adapter: scaling must be a number or 'learned', got {config.scaling!r}")
        return config


class BottleneckLinear(nn.Module):
    """A frozen linear layer with a bottleneck adapter in the given placement."""

    def __init__(self, base: nn.Linear, placement: str, config: BottleneckConfig):
        super().__init__()
        self.base = base
        self.placement = placement
        dim_in = base.out_features if placement == "output" else base.in_features
        dim_out = base.in_features if placement == "input" else base.out_features
        weight = base.weight
        dtype = weight.dtype if weight.dtype.is_floating_point else torch.float32
        self.adapter_down = nn.Linear(dim_in, config.bottleneck_size, bias=False, device=weight.device, dtype=dtype)
        self.adapter_up = nn.Linear(config.bottleneck_size, dim_out, bias=False, device=weight.device, dtype=dtype)
        self.act = ACT2FN[config.non_linearity]
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        if config.scaling == "learned":
            self.adapter_scale = nn.Parameter(torch.ones(1, device=weight.device, dtype=dtype))
        else:
            self.register_buffer("adapter_scale", torch.tensor([float(config.scaling)], dtype=dtype), persistent=False)
        self.enabled = True
        self._init(config.init)

    def _init(self, scheme: str) -> None:
        if scheme == "bert":
            nn.init.normal_(self.adapter_down.weight, std=0.02)
            nn.init.normal_(self.adapter_up.weight, std=0.02)
        else:  # mam: the adapter starts as the identity
            nn.init.kaiming_uniform_(self.adapter_down.weight, a=math.sqrt(5))
            nn.init.zeros_(self.adapter_up.weight)

    def bottleneck(self, x: torch.Tensor) -> torch.Tensor:
        h = x.to(self.adapter_down.weight.dtype)
        return (self.adapter_up(self.act(self.adapter_down(self.dropout(h)))) * self.adapter_scale).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return self.base(x)
        if self.placement == "input":
            return self.base(x + self.bottleneck(x))
        y = self.base(x)
        return y + self.bottleneck(y if self.placement == "output" else x)


def _targets(model: nn.Module, names: list[str]) -> list[str]:
    found = [n for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in names and isinstance(m, nn.Linear)]
    missing = sorted(set(names) - {n.rsplit(".", 1)[-1] for n in found})
    if missing:
        linears = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"bottleneck adapter: target module(s) {missing} not found as linear layers in "
                         f"{model.config.model_type}; linear layers: {', '.join(linears)}")
    return found


def inject(model: nn.Module, config: BottleneckConfig) -> nn.Module:
    """Wrap the target linears in place, freeze everything else, and remember the config on the model."""
    model_type = model.config.model_type
    names = config.target_modules or default_targets(config.method, model_type)
    config.target_modules = list(names)
    for p in model.parameters():
        p.requires_grad_(False)
    for full_name in _targets(model, names):
        parent_name, _, child = full_name.rpartition(".")
        parent = model.get_submodule(parent_name)
        placement = placement_for(config.method, model_type, child)
        config.placements[child] = placement
        setattr(parent, child, BottleneckLinear(getattr(parent, child), placement, config))
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

    options = {k: v for k, v in config.items() if k not in ("format", "placements")}
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
