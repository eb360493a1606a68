"""Artifact I/O: every write goes to a temporary name in the same directory and is renamed into place,
so an interrupted job never leaves a file (or directory) that looks complete."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator


def fingerprint(*parts) -> str:
    """What a resumed job must share with the one it resumes (its inputs and settings), as one hash."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it to `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        # mkstemp/mkdtemp create private (0600/0700) paths; artifacts get the mode a plain open() would give
        tmp.chmod(_umasked(0o777 if directory else 0o666))
        if directory and final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def _umasked(mode: int) -> int:
    umask = os.umask(0)  # the only way to read it; restored at once
    os.umask(umask)
    return mode & ~umask


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path, records: Iterable[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: invalid JSON line ({e.msg})") from e
    return records


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


MANIFEST = "MANIFEST.sha256.json"


class CorruptArtifact(RuntimeError):
    """A cached artifact no longer matches the checksums written with it."""


def write_manifest(directory) -> Path:
    """Record the sha256 of every file of a finished artifact directory (written last, atomically)."""
    directory = Path(directory)
    sums = {str(p.relative_to(directory)): sha256_file(p) for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != MANIFEST}
    write_json(directory / MANIFEST, sums)
    return directory / MANIFEST


def verify_manifest(directory, required: bool = False) -> None:
    """Check a cached artifact against its manifest before use: a truncated or altered file is an error that
    says what to do, never silently used. Directories written before manifests existed pass unless required."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        if required:
            raise CorruptArtifact(f"{directory}: no {MANIFEST}; the artifact is incomplete. Delete it and re-run")
        return
    for name, expected in read_json(path).items():
        file = directory / name
        if not file.is_file():
            raise CorruptArtifact(f"{file}: missing from a finished artifact. Delete {directory} and re-run to "
                                  f"rebuild it")
        if sha256_file(file) != expected:
            raise CorruptArtifact(f"{file}: sha256 differs from the one written with it (truncated or altered "
                                  f"since). Delete {directory} and re-run to rebuild it")
