"""Families of adapters declared as a grid (config `sweeps:`), expanded into ordinary named adapters before the
DAG is built. A name depends only on the family and the values of its grid point (never on a value's position
in a list), so a grown grid keeps the names, and therefore the cached results, of its existing points.

    sweeps:
      lora:                                   # family name, the prefix of every member's name
        method: lora
        lora_alpha: 64                        # options shared by every member
        grid: {target_modules: [attention, mlp, both], r: [4, 8]}
        training: {learning_rate: 3.0e-4}     # optional, as for any adapter

expands to lora-attention-r4, lora-attention-r8, lora-mlp-r4, ... (placements first, then the other keys in
the order given)."""
from __future__ import annotations

import itertools
import re

from pipeline_lib.catalog.targets import PRESETS

PLACEMENT_NAMES = tuple(PRESETS)  # the placement study's coordinate: a target preset, resolved per architecture

# short forms of the usual size keys in member names
ABBREVIATIONS = {"r": "r", "bottleneck_size": "b", "num_virtual_tokens": "vt", "lora_alpha": "a"}
SIZE_KEYS = ("r", "bottleneck_size", "num_virtual_tokens")


class SweepError(ValueError):
    pass


def name_part(key: str, value) -> str:
    if key == "target_modules":
        if isinstance(value, str):
            return value
        return "+".join(value)
    text = f"{ABBREVIATIONS.get(key, key)}{value}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def expand(family: str, spec: dict) -> dict[str, dict]:
    """Member name -> adapter spec for one family."""
    spec = dict(spec)
    grid = spec.pop("grid", None)
    if not grid:
        raise SweepError(f"sweeps.{family}: no `grid` (key -> list of values) to expand")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"sweeps.{family}.grid.{key}: expected a non-empty list of values, got {values!r}")
        if key in spec:
            raise SweepError(f"sweeps.{family}: {key!r} is both a fixed option and a grid key")
    keys = sorted(grid, key=lambda k: k != "target_modules")  # placement first, then the given order
    members = {}
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        name = "-".join([family, *(name_part(k, v) for k, v in point.items())])
        if name in members:
            raise SweepError(f"sweeps.{family}: two grid points are both named {name!r}")
        members[name] = {**spec, **point}
    return members


def expand_all(sweeps: dict[str, dict], adapters: dict[str, dict]) -> tuple[dict[str, dict], dict[str, dict]]:
    """(every adapter: the config's own plus the expanded members; member name -> its sweep coordinates:
    family, method, placement, size key and size) — the coordinates are what the sweep figures plot."""
    expanded, coordinates = dict(adapters), {}
    for family, spec in sweeps.items():
        for name, member in expand(family, spec).items():
            if name in expanded:
                raise SweepError(f"sweeps.{family}: member {name!r} clashes with an adapter of the same name")
            expanded[name] = member
            targets = member.get("target_modules")
            size_key = next((k for k in SIZE_KEYS if k in spec.get("grid", {})), None)
            coordinates[name] = {
                "family": family, "method": member["method"],
                # a placement coordinate only where the family sweeps placements (not a fixed `both`)
                "placement": targets if "target_modules" in spec.get("grid", {}) and isinstance(targets, str)
                and targets in PLACEMENT_NAMES else None,
                "size_key": size_key, "size": member.get(size_key) if size_key else None,
            }
    return expanded, coordinates
