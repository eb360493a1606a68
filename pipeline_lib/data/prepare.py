"""From upstream file to the records a job uses, in four steps:

1. normalize: parse and validate every item of one file into the pipeline's schema (all of them);
2. contamination: overlap of every (training, evaluation) pair of the run, on the full sets;
3. select: apply the run's decontamination policy, drop training items with no response, subsample;
4. mix: concatenate selected training sets into a mixture (config `mixtures`).
"""
from __future__ import annotations

import logging
import random
from pathlib import Path

from pipeline_lib.catalog.datasets import DatasetSpec
from pipeline_lib.data import contamination
from pipeline_lib.data.loaders import LOADERS, DataError
from pipeline_lib.runtime.files import read_json, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)


def subsample(records: list[dict], limit: int | None, seed: int, name: str) -> list[dict]:
    """A seeded subset in upstream order; the seed is combined with the dataset name so sets differ."""
    if limit is None or limit >= len(records):
        return records
    keep = sorted(random.Random(f"{seed}:{name}").sample(range(len(records)), limit))
    return [records[i] for i in keep]


def normalize(spec: DatasetSpec, raw_path: str | Path, out_path: str | Path) -> int:
    records = LOADERS[spec.loader](Path(raw_path), spec)
    if not records:
        raise DataError(f"{raw_path}: no items")
    write_jsonl(out_path, records)
    return len(records)


def decontamination_drops(report_path: str | Path | None, policy: str, level: str, split: str,
                          name: str) -> set[str]:
    """Ids the policy removes from this set: training items under `train`, evaluation items under `eval`; from a
    validation split (tuning), every training item that overlaps a test set, whatever the policy."""
    if report_path is None or (policy != split and split != "val"):
        return set()
    return contamination.flagged(read_json(report_path), level, "train" if split == "val" else split, name)


def select(name: str, split: str, full_path: str | Path, out_path: str | Path, limit: int | None = None,
           seed: int = 0, drop: set[str] = frozenset(), policy: str = "report",
           holdout: set[str] = frozenset()) -> int:
    """The records a job uses: without the policy's drops (and, for training and validation, items with no
    response; for training under tuning, its validation split: `holdout`), then subsampled. A set the policy empties
    fails, saying why."""
    records = [r for r in read_jsonl(full_path) if r["id"] not in holdout]
    if holdout:
        log.warning("%s: %d items held out for tuning's validation split", name, len(holdout))
    if split in ("train", "val"):
        empty = [r["id"] for r in records if not r["output"].strip()]
        if empty:
            log.warning("%s: skipped %d training item(s) with an empty 'output': %s", name, len(empty), empty[:20])
        records = [r for r in records if r["output"].strip()]
    kept = [r for r in records if r["id"] not in drop]
    if drop:
        log.warning("%s: decontaminate=%s dropped %d of %d items that overlap the run's %s sets", name, policy,
                    len(records) - len(kept), len(records), "evaluation" if split == "train" else "training")
    if not kept:
        raise DataError(f"{name}: decontaminate={policy} removes all {len(records)} items: every one overlaps "
                        f"the run's {'evaluation' if split == 'train' else 'training'} sets (see "
                        f"results/data/contamination.json). Use other sets, or decontaminate: report to keep "
                        f"them with every affected score marked")
    write_jsonl(out_path, subsample(kept, limit, seed, f"{name}:val" if split == "val" else name))
    return len(kept)


def prepare_split(name: str, split: str, full_path: str | Path, out_path: str | Path, limit: int | None, seed: int,
                  policy: str, level: str, contamination_path: str | None = None,
                  holdout_path: str | None = None) -> tuple[int, int]:
    """The prepare_data job: a normalized set's split as the run uses it (the policy's drops, tuning's held-out
    validation items, the subsample); returns (items kept before subsampling, items the policy dropped)."""
    drop = decontamination_drops(contamination_path, policy, level, split, name)
    holdout = {r["id"] for r in read_jsonl(holdout_path)} if holdout_path else set()  # tuning's validation split
    return select(name, split, full_path, out_path, limit, seed, drop, policy, holdout), len(drop)


def contamination_report(train: dict[str, str | Path], evaluation: dict[str, str | Path], out_path: str | Path,
                         ngram: int, threshold: float, level: str, policy: str) -> dict:
    """contamination.json for the run's full sets; under `fail`, an error listing the overlapping pairs."""
    result = contamination.matrix({n: read_jsonl(p) for n, p in train.items()},
                                  {n: read_jsonl(p) for n, p in evaluation.items()}, ngram, threshold)
    result.update(policy=policy, level=level)
    hits = [f"{t} x {e}: {p[level]}/{p['eval_items']}" for t, row in result["pairs"].items()
            for e, p in row.items() if p[level]]
    if policy == "fail" and hits:
        raise DataError("decontaminate: fail, and training sets contain evaluation questions "
                        f"({level} overlap): " + "; ".join(hits))
    write_json(out_path, result)
    return result


def mix(parts: list[str | Path], out_path: str | Path) -> int:
    """Concatenate prepared training sets (ids stay unique: each carries its dataset's name)."""
    records = [r for part in parts for r in read_jsonl(part)]
    write_jsonl(out_path, records)
    return len(records)
