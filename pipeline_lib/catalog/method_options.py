"""The options each method takes, torch-free: peft's read from its config classes' source (their dataclass fields, the
class found by the `peft_type` its `__post_init__` sets) without importing peft, which imports torch; the bottleneck
family's our own (pinned to BottleneckConfig by tests/catalog/test_methods.py). What a tuning space may vary for a
method is checked against this before any job."""
from __future__ import annotations

import ast
import importlib.util
from functools import lru_cache
from pathlib import Path

from pipeline_lib.catalog import methods

BOTTLENECK_OPTIONS = ("bottleneck_size", "non_linearity", "dropout", "scaling", "init", "target_modules")
PEFT_INTERNAL = {"peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping",
                 "peft_version"}  # set by peft or the pipeline, never by a config


def options(method: str) -> set[str]:
    """Every option a config may give the method (its own and those of its optimizer or initialisation)."""
    entry = methods.get(method)
    if entry.family == "bottleneck":
        return set(BOTTLENECK_OPTIONS)
    return (_peft_fields()[entry.peft_type] - PEFT_INTERNAL - set(entry.fixed)) | set(entry.extra)


@lru_cache(maxsize=1)
def _peft_fields() -> dict[str, frozenset[str]]:
    root = Path(importlib.util.find_spec("peft").submodule_search_locations[0])
    classes: dict[str, tuple[list[str], set[str], str | None]] = {}
    for path in [root / "config.py", *sorted(root.glob("tuners/*/config.py"))]:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                fields = {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)
                          and isinstance(n.target, ast.Name)}
                bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
                classes[node.name] = (bases, fields, _peft_type(node))

    def every_field(name: str) -> set[str]:
        bases, fields, _ = classes[name]
        return fields.union(*(every_field(b) for b in bases if b in classes))
    return {peft_type: frozenset(every_field(name)) for name, (_, _, peft_type) in classes.items() if peft_type}


def _peft_type(node: ast.ClassDef) -> str | None:
    """X of `self.peft_type = PeftType.X` in the class's __post_init__."""
    for fn in node.body:
        if isinstance(fn, ast.FunctionDef) and fn.name == "__post_init__":
            for stmt in ast.walk(fn):
                if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "peft_type"
                                                         for t in stmt.targets) \
                        and isinstance(stmt.value, ast.Attribute):
                    return stmt.value.attr
    return None
