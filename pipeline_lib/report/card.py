"""The run's protocol card: what the config decided (planning/render.py `card`: the model sources, training data
with checksums, prompt, training and decoding settings, answer rules, seeds, tuning) and what the jobs recorded
(the model version each loaded, the precision each chose, the package versions and devices, from the provenance
in their metrics and score files: runtime/provenance.py). One table per run (protocol_card.*), and one line of
it under the accuracy tables."""
from __future__ import annotations

import pandas as pd

from pipeline_lib.catalog.dtypes import describe as describe_precision
from pipeline_lib.report.tables import model_identity

VERSIONED = ("peft-bench", "torch", "transformers", "peft")  # the versions the card and the line under tables name


def recorded(metrics: dict, runs: pd.DataFrame) -> dict[str, dict[str, str]]:
    """What the jobs recorded, section -> setting -> value; a setting the jobs disagree on lists every value."""
    trained = list(metrics.values())
    provenance = [m.get("provenance") or {} for m in trained] + [p for p in runs.get("provenance", []) if p]
    models = {}
    for record in provenance:
        source = record.get("model") or {}
        name = source.get("hub") or source.get("embedded") or source.get("path")
        if name:
            models.setdefault(name, set()).add(model_identity(source))
    return {
        "recorded by the jobs": {
            **{f"model {name}": ", ".join(sorted(v)) for name, v in models.items()},
            "training precision": _values(describe_precision(m.get("precision")) for m in trained),
            "evaluation precision": _values(runs["precision"]) if "precision" in runs else "",
            "versions": _values(_versions(p.get("versions") or {}) for p in provenance),
            "devices": _values(_device(p.get("device") or {}) for p in provenance),
        }}


def table(card: dict, metrics: dict, runs: pd.DataFrame) -> pd.DataFrame:
    sections = {**card, **recorded(metrics, runs)}
    return pd.DataFrame([{"section": section, "setting": setting, "value": value}
                         for section, settings in sections.items() for setting, value in settings.items()
                         if value not in ("", None)], columns=["section", "setting", "value"])


def line(card: dict, metrics: dict, runs: pd.DataFrame) -> str:
    """The card in one line, for under the accuracy tables."""
    t, facts = card["training"], recorded(metrics, runs)["recorded by the jobs"]
    decoding = "; ".join(f"{p}: {d}" for p, d in card["evaluation"].items())
    tuning = card["tuning"].get("budget", "no tuning")
    return (f"Protocol: {t['length']}; train_on_inputs {t['train_on_inputs']}, cutoff {t['cutoff_len']}; "
            f"{decoding}; precision: training {facts['training precision'] or 'n/a'}, evaluation "
            f"{facts['evaluation precision'] or 'n/a'}; tuning: {tuning}; {facts['versions']}. "
            f"Full card: protocol_card.md.")


def _values(values) -> str:
    return " | ".join(sorted({v for v in values if isinstance(v, str) and v}))


def _versions(versions: dict) -> str:
    return ", ".join(f"{k} {versions[k]}" for k in VERSIONED if versions.get(k))


def _device(device: dict) -> str:
    return " / ".join(str(device[k]) for k in ("cpu", "gpu") if device.get(k))
