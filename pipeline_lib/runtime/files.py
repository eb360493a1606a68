"""Artifact I/O: every write goes to a temporary name in the same directory and is renamed into place,
so an interrupted job never leaves a file (or directory) that looks complete."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterable, Iterator


def fingerprint(*parts) -> str:
    """What a resumed job must share with the one it resumes (its inputs and settings), as one hash."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _owner() -> str:
    """What a temporary name says about its writer: this host and process (the next start on the same host can tell
    a dead writer's leftovers from a live one's)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def remove_stale_temporaries(final: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of `final` (`.<name>.<host>-<pid>.*.tmp`) whose writer, a process on this host, has
    died (a killed job leaves them: a stranded download can be gigabytes); a live writer's, and another host's, stay.
    Returns what was removed."""
    final = Path(final)
    removed = []
    host = socket.gethostname()
    for path in final.parent.glob(f".{final.name}.{host}-*.tmp"):
        pid = path.name[len(f".{final.name}.{host}-"):].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def fsync_tree(path: Path) -> None:
    """Flush a file, or every file of a directory, and the directories themselves, to the disk: a rename then
    publishes content that survives a crash of the machine, not a file of zeros."""
    for item in ([path] if path.is_file() else [*sorted(path.rglob("*")), path]):
        flags = os.O_RDONLY | (os.O_DIRECTORY if item.is_dir() else 0)
        fd = os.open(item, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `final` (named for this host and process); rename it to `final` only if the
    block succeeds, its content flushed to disk first. A dead writer's temporaries of `final` are removed first."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    prefix = f".{final.name}.{_owner()}."
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=final.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        # mkstemp/mkdtemp create private (0600/0700) paths; artifacts get the mode a plain open() would give
        tmp.chmod(_umasked(0o777 if directory else 0o666))
        fsync_tree(tmp)
        if directory and final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_directory(final.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def fsync_directory(directory: Path) -> None:
    """Flush a directory's entries (the rename just made in it)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    with open(path, encoding="utf-8") as f:
        return parse_jsonl(f.read(), path)


def parse_jsonl(text: str, path, error: type[Exception] = ValueError) -> list:
    """One JSON value per non-blank line; a bad line raises `error` naming the file and the line. Lines end at
    "\n" only: str.splitlines() would also split at U+2028, U+0085 and the like, which JSON strings may hold raw."""
    records = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise error(f"{path}:{lineno}: invalid JSON line ({e.msg})") from e
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
