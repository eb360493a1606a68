"""What published result tables call a run's rows (torch- and pandas-free, for the plan): an adapter's published
names and what a training set can have been trained on there. The tables themselves: report/published.py."""
from __future__ import annotations

from pipeline_lib.catalog import methods


def adapter_labels(spec: dict) -> list[str]:
    """The published names an adapter entry can meet: its own `published_as`, else its method's published name,
    alone and with the entry's rank."""
    if spec.get("published_as"):
        return [spec["published_as"]]
    name = methods.get(spec["method"]).published_as
    if not name:
        return []
    return [name] + ([f"{name} r={spec['r']}"] if "r" in spec else [])


def training_keys(name: str, entry: dict | None) -> list[str]:
    """What a training set can have been trained on in published tables: its name, and its hub dataset."""
    return [name] + ([f"hub:{entry['hub']}"] if entry and entry.get("hub") else [])
