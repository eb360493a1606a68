"""Obtain an upstream file: copy it from a local mirror or download it, then verify its sha256."""
from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

from pipeline_lib.catalog.datasets import GITHUB_RAW, Source
from pipeline_lib.runtime.files import atomic_path, sha256_file


class FetchError(RuntimeError):
    pass


def fetch(source: Source, dest: str | Path, mirror: str | Path | None = None, base_url: str = GITHUB_RAW,
          timeout: float = 60) -> Path:
    """Place `source` at `dest`, verified; nothing appears at `dest` unless the checksum matches. The file comes
    from the dataset's own path, else the mirror, else a download from `base_url` (raw GitHub's layout)."""
    dest = Path(dest)
    if source.sha256 is None:
        raise FetchError(f"{source.relpath}: download-only upstream file (not in the mirror) with no pinned sha256; "
                         f"the pipeline uses only verified files. Fetch it from {source.url}, check it, and pin its "
                         f"sha256 in the config (data: {{pins: {{<dataset>: <sha256>}}}}) to use it")
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
                                 f"place the file there (upstream: {source.download_url(base_url)}), fix "
                                 f"`data.mirror` in the config, or set it to null to download from upstream")
            shutil.copyfile(origin, tmp)
        else:
            origin = source.download_url(base_url)
            try:
                with urllib.request.urlopen(origin, timeout=timeout) as response, open(tmp, "wb") as out:
                    shutil.copyfileobj(response, out)
            except urllib.error.HTTPError as e:
                raise FetchError(f"{source.relpath}: download from {origin} failed (HTTP {e.code} {e.reason}); the "
                                 f"server has no such file: check `data.base_url`, or set `data.mirror` in the "
                                 f"config to a local copy with the upstream layout") from e
            except OSError as e:
                raise FetchError(f"{source.relpath}: download from {origin} failed ({getattr(e, 'reason', e)}); "
                                 f"check the network and `data.base_url`, or set `data.mirror` in the config to a "
                                 f"local copy with the upstream layout") from e
        actual = sha256_file(tmp)
        if actual != source.sha256:
            pinned = f"commit {source.commit}" if source.commit else "the sha256 in the config's datasets entry"
            raise FetchError(f"{source.relpath}: sha256 mismatch for {origin}: expected {source.sha256}, got {actual}; "
                             f"the file is not the pinned version ({pinned})")
    return dest
