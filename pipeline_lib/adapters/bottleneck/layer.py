"""The bottleneck layer: a frozen linear (nn.Linear, or GPT-2's Conv1D) with a down-projection ->
non-linearity -> up-projection, times a scale, on its input, its output, or beside it."""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers.activations import ACT2FN

from pipeline_lib.adapters.bottleneck.config import BottleneckConfig


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
