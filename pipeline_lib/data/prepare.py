"""Normalize one upstream file into the pipeline's JSONL, with optional seeded subsampling."""
from __future__ import annotations

import random
from pathlib import Path

from ..files import read_jsonl, write_jsonl
from .loaders import LOADERS
from .registry import get_dataset


def subsample(records: list[dict], limit: int | None, seed: int, name: str) -> list[dict]:
    """A seeded subset in upstream order; the seed is combined with the dataset name so sets differ."""
    if limit is None or limit >= len(records):
        return records
    keep = sorted(random.Random(f"{seed}:{name}").sample(range(len(records)), limit))
    return [records[i] for i in keep]


def prepare(name: str, raw_path: str | Path, out_path: str | Path, limit: int | None = None, seed: int = 0) -> int:
    spec = get_dataset(name)
    records = subsample(LOADERS[spec.loader](Path(raw_path), spec), limit, seed, name)
    write_jsonl(out_path, records)
    return len(records)


def mix(parts: list[str | Path], out_path: str | Path) -> int:
    """Concatenate prepared training sets (ids stay unique: each carries its dataset's name)."""
    records = [r for part in parts for r in read_jsonl(part)]
    write_jsonl(out_path, records)
    return len(records)
