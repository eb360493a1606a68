"""A bottleneck adapter's options, checked, and the files it is saved as (the format name stays
`pipeline_lib.bottleneck`: adapters saved before the package re-layout load unchanged)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from transformers.activations import ACT2FN

from pipeline_lib.catalog import methods

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
