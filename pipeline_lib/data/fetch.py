"""Obtain an upstream file: copy it from a local mirror or download it, then verify its sha256."""
from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from ..files import atomic_path, sha256_file
from .registry import Source


class FetchError(RuntimeError):
    pass


def fetch(source: Source, dest: str | Path, mirror: str | Path | None = None, timeout: float = 60) -> Path:
    """Place `source` at `dest`, verified; nothing appears at `dest` unless the checksum matches."""
    dest = Path(dest)
    if source.sha256 is None:
        raise FetchError(f"{source.relpath}: download-only upstream file (not in the mirror) whose sha256 is not "
                         f"pinned in pipeline_lib/data/registry.py; the pipeline uses only verified files. Fetch "
                         f"it from {source.url}, check it, and pin its sha256 in the registry to use it")
    with atomic_path(dest) as tmp:
        if source.local:
            origin = Path(source.origin)
            if not origin.is_file():
                raise FetchError(f"{source.relpath}: the dataset's path {origin} is not a file")
            shutil.copyfile(origin, tmp)
        elif mirror and not source.origin:
            origin = Path(mirror) / source.relpath
            if not origin.is_file():
                raise FetchError(f"{source.relpath}: not found in data mirror {mirror} (expected {origin}); "
                                 f"fix `data.mirror` in the config or set it to null to download from upstream")
            shutil.copyfile(origin, tmp)
        else:
            origin = source.url
            try:
                with urllib.request.urlopen(origin, timeout=timeout) as response, open(tmp, "wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as e:
                raise FetchError(f"{source.relpath}: download from {origin} failed ({e}); check the network, "
                                 f"or set `data.mirror` in the config to a local copy with the same layout") from e
        actual = sha256_file(tmp)
        if actual != source.sha256:
            pinned = f"commit {source.commit}" if source.commit else "the sha256 in the config's datasets entry"
            raise FetchError(f"{source.relpath}: sha256 mismatch for {origin}: expected {source.sha256}, got {actual}; "
                             f"the file is not the pinned version ({pinned})")
    return dest
