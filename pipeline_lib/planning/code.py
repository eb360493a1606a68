"""Code is an input: which code makes a job's result. A job's code is its script (scripts/<rule>.py) and every module of
the package the script reaches through its imports, those inside functions included (read with `ast`, torch-free,
in milliseconds at the Snakefile's parse). Its hash goes into the rule's shell command (`PEFT_BENCH_CODE=<hash>`), so
Snakemake's `code` rerun trigger re-makes exactly the jobs whose code changed (a change to report/ re-renders
tables and re-runs no fine-tune; a change to training/ re-runs the fine-tunes and what reads them), and every job
records it (runtime/provenance.py), so the tables can flag rows made by other code. A run can opt out for a change
it knows to be harmless (a comment, a docstring) with Snakemake's own `--rerun-triggers mtime params input
software-env` (`code` left out); the tables then flag every row whose recorded code differs from the checkout's.

Why a hash of the modules rather than the git commit: a commit changes with every edit of the repository (a README
line, a test), which would re-run every job; the modules a job runs change only with the code that made it."""
from __future__ import annotations

import ast
import hashlib
import os
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # pipeline_lib/
VARIABLE = "PEFT_BENCH_CODE"  # the environment variable a job reads its code hash from


def _module_file(name: str) -> Path | None:
    """The file of a dotted module name (a module, or a package's __init__), or None."""
    path = PACKAGE.parent.joinpath(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return path / "__init__.py" if (path / "__init__.py").is_file() else None


@lru_cache(maxsize=None)
def _imports(path: Path) -> frozenset[str]:
    """Every pipeline_lib module a file imports (a `from package import name` counts the submodule where `name`
    is one, and the package itself)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline_lib"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipeline_lib"))
    # a module's parent packages run first on import
    return frozenset(".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 2))


def reached(script: Path) -> list[Path]:
    """The script and every package file it reaches, sorted."""
    seen, todo = {script}, [script]
    while todo:
        for name in _imports(todo.pop()):
            path = _module_file(name)
            if path and path not in seen:
                seen.add(path)
                todo.append(path)
    return sorted(seen)


@lru_cache(maxsize=None)
def stage_hash(script: Path) -> str:
    """16 hex digits of the sha256 over the files the script reaches (their package-relative names and bytes)."""
    digest = hashlib.sha256()
    for path in reached(script):
        name = path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE.parent) else path.name
        digest.update(f"{name}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def job_code(script: str) -> str:
    """The code hash of the running job, which its checkpoints and partial results are keyed by: PEFT_BENCH_CODE
    as its rule's command set it, else (a direct call) its script's own, scripts/<script>."""
    return os.environ.get(VARIABLE) or stage_hash(PACKAGE.parent / "scripts" / script)


def clear_caches() -> None:
    """Forget every file read and hash computed (the files changed: a test, a long-lived process)."""
    _imports.cache_clear()
    stage_hash.cache_clear()
