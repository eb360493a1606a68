"""Adapter method names, known without importing torch, transformers or peft, so that checking a config (and
building the DAG of a large run) stays fast. pipeline_lib.adapters holds the implementations; a test checks
that both agree."""
from __future__ import annotations

import importlib.util
from functools import lru_cache

BOTTLENECK_METHODS = ("series", "adapterp", "parallel", "scaled_parallel")
# methods that are a peft method with some options fixed
PEFT_ALIASES = {"dora": ("lora", {"use_dora": True})}


@lru_cache(maxsize=1)
def peft_methods() -> tuple[str, ...]:
    """peft's method names from its PeftType enum, read from that one module (plain `enum`): importing the
    peft package itself would import torch and transformers (~2 s)."""
    spec = importlib.util.find_spec("peft")
    path = spec.submodule_search_locations[0] + "/utils/peft_types.py"
    module_spec = importlib.util.spec_from_file_location("_peft_types", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return tuple(sorted(t.value.lower() for t in module.PeftType))


def known_methods() -> list[str]:
    return sorted({*BOTTLENECK_METHODS, *PEFT_ALIASES, *peft_methods()})


def check_method(method: str) -> None:
    if method not in known_methods():
        raise ValueError(f"unknown adapter method {method!r}; valid: {', '.join(known_methods())}")
