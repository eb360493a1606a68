"""The bottleneck adapter family of LLM-Adapters, which peft lacks.

A bottleneck is down-projection -> non-linearity -> up-projection, times a scale. It wraps a linear layer
(nn.Linear, or GPT-2's Conv1D) in one of three positions (see targets.py). The methods:
  series           AdapterH in the paper's tables (Houlsby): series bottlenecks on the MLP linears
  adapterp         AdapterP (Pfeiffer): one series bottleneck, after the MLP output linear
  parallel         a bottleneck beside a linear, added to its output (He et al.)
  scaled_parallel  the same with a scale (He et al.'s scaled PA: fixed 4.0 by default, or "learned")
Saved like a peft adapter: `adapter_config.json` + `adapter_model.safetensors` with only adapter tensors.
Merging into the base weights is impossible (a non-linearity sits inside the added path): merge() says so.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn
from transformers.activations import ACT2FN

from .. import methods
from ..files import atomic_path
from ..targets import default_targets, matches, position_for

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
FORMAT = "pipeline_lib.bottleneck"


@dataclass
class BottleneckConfig:
    method: str = "series"
    bottleneck_size: int = 256          # paper default
    non_linearity: str = "tanh"         # paper default
    dropout: float = 0.0
    scaling: float | str | None = None  # a number, or "learned"; None: the method's default
    init: str = "bert"                  # "bert": normal(0.02) on both projections; "mam": zero up-projection
    target_modules: list[str] | None = None  # None: the method's default targets for the architecture
    positions: dict[str, str] = field(default_factory=dict)  # filled at injection: target -> position

    @classmethod
    def from_dict(cls, options: dict) -> "BottleneckConfig":
        valid = {f.name for f in fields(cls)} - {"positions"}
        unknown = sorted(set(options) - valid)
        method = options.get("method", "series")
        if unknown:
            raise ValueError(f"{method} adapter: unknown option(s) {unknown}; valid: {', '.join(sorted(valid))}")
        config = cls(**options)
        family = methods.of_family("bottleneck")
        if config.method not in family:
            raise ValueError(f"bottleneck adapter: method must be one of {', '.join(family)}, got {config.method!r}")
        if config.scaling is None:
            config.scaling = methods.get(config.method).scaling
        checks = [
            (isinstance(config.bottleneck_size, int) and config.bottleneck_size > 0,
             "bottleneck_size must be a positive integer"),
            (config.non_linearity in ACT2FN, f"unknown non_linearity {config.non_linearity!r}"),
            (config.init in ("bert", "mam"), f"init must be 'bert' or 'mam', got {config.init!r}"),
            (config.scaling == "learned" or isinstance(config.scaling, (int, float)),
             f"scaling must be a number or 'learned', got {config.scaling!r}"),
            (0 <= config.dropout < 1, f"dropout must be in [0, 1), got {config.dropout!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{config.method} adapter: {message}")
        return config

    @property
    def kind(self) -> str:
        return methods.get(self.method).kind


def linear_dims(module: nn.Module) -> tuple[int, int]:
    """(in, out) features of an nn.Linear or a transformers Conv1D (weight stored as in x out)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    return module.weight.shape[0], module.weight.shape[1]


def is_linear(module: nn.Module) -> bool:
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, (nn.Linear, Conv1D))


class BottleneckLinear(nn.Module):
    """A frozen linear layer with a bottleneck adapter in the given position."""

    def __init__(self, base: nn.Module, position: str, config: BottleneckConfig):
        super().__init__()
        self.base = base
        self.position = position
        features_in, features_out = linear_dims(base)
        dim_in = features_out if position == "output" else features_in
        dim_out = features_in if position == "input" else features_out
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
        if self.position == "input":
            return self.base(x + self.bottleneck(x))
        y = self.base(x)
        return y + self.bottleneck(y if self.position == "output" else x)


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
