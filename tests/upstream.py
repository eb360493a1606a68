"""Upstream LLM-Adapters' own functions, read from its scripts in the data mirror and executed alone.

The scripts import upstream's vendored peft fork at module level, so they cannot be imported; `function()`
reads one function's source with `ast` and executes just that definition (nested ones too, e.g. `tokenize`
inside finetune.py's `train`) in a namespace the caller provides. None of upstream's code is in the project.
"""
from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

SCRIPTS = ("finetune.py", "evaluate.py", "commonsense_evaluate.py")


def function(mirror: Path, script: str, name: str, namespace: dict | None = None):
    """The function `name` defined anywhere in upstream's `script` (the first definition found)."""
    path = Path(mirror) / "LLM-Adapters" / script
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
    if not found:
        raise LookupError(f"{path}: no function {name!r}")
    namespace = {} if namespace is None else namespace  # shared: later functions see earlier ones
    namespace.setdefault("re", __import__("re"))
    exec(compile(ast.Module(body=[found[0]], type_ignores=[]), str(path), "exec"), namespace)
    return namespace[name]


def args(dataset: str) -> SimpleNamespace:
    """The `args` upstream's extraction functions read (only `dataset`)."""
    return SimpleNamespace(dataset=dataset)
