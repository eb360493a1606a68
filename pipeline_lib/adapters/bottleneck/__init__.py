"""The bottleneck adapter family of LLM-Adapters, which peft lacks.

A bottleneck is down-projection -> non-linearity -> up-projection, times a scale. It wraps a linear layer
(nn.Linear, or GPT-2's Conv1D) in one of three positions (see pipeline_lib/catalog/targets.py). The family's methods
(Series/AdapterH, AdapterP, Parallel, scaled Parallel: their kind, default scale and placement) are entries of
pipeline_lib/catalog/methods.py `TABLE` with family `bottleneck`, listed in docs/adapter-support.md. Saved like a
peft adapter: `adapter_config.json` + `adapter_model.safetensors` with only adapter tensors.
Merging into the base weights is impossible (a non-linearity sits inside the added path): merge() says so.
"""
from pipeline_lib.adapters.bottleneck.config import CONFIG_NAME, FORMAT, WEIGHTS_NAME, BottleneckConfig
from pipeline_lib.adapters.bottleneck.layer import BottleneckLinear, is_linear, linear_dims
from pipeline_lib.adapters.bottleneck.model import adapter_state_dict, inject, load, merge, save, set_enabled

__all__ = ["CONFIG_NAME", "FORMAT", "WEIGHTS_NAME", "BottleneckConfig", "BottleneckLinear", "adapter_state_dict",
           "inject", "is_linear", "linear_dims", "load", "merge", "save", "set_enabled"]
