"""The run's protocol card: what the config decided (planning/render.py `card`: the model sources, training data
with checksums, prompt, training and decoding settings, answer rules, seeds, tuning) and what the jobs recorded
(the model version each loaded, the precision each chose, the package versions and devices, from the provenance
in their metrics and score files: runtime/provenance.py). One table per run (protocol_card.*), and one line of
it under the accuracy tables."""
from __future__ import annotations

import pandas as pd

from pipeline_lib.catalog.dtypes import describe as describe_precision
from pipeline_lib.report.tables import model_identity

VERSIONED = ("python", "peft-bench", "torch", "transformers", "peft", "datasets", "accelerate", "bitsandbytes",
             "lm-eval", "snakemake")  # the versions the card names
SHORT = ("peft-bench", "torch", "transformers", "peft")  # and the line under the tables


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
            "devices": _values(_device(p.get("device") or {}) for p in provenance),
        },
        "software": {
            "peft-bench commit": _values(_code(p.get("code")) for p in provenance) or "not recorded (older jobs)",
            "versions": _values(_versions(p.get("versions") or {}) for p in provenance),
        }}


def sections(card) -> dict[str, dict]:
    """The card as section -> setting -> value, in the run's order (planning/render.py `card`: a list of pairs)."""
    if isinstance(card, dict):
        return card
    return {name: dict(settings) for name, settings in card or []}


def table(card, metrics: dict, runs: pd.DataFrame) -> pd.DataFrame:
    """The card as one table, its sections in the order the run flows, then what the jobs recorded."""
    merged = {**sections(card), **recorded(metrics, runs)}
    return pd.DataFrame([{"section": section, "setting": setting, "value": _text(value)}
                         for section, settings in merged.items() for setting, value in settings.items()
                         if value not in ("", None)], columns=["section", "setting", "value"])


def line(card, metrics: dict, runs: pd.DataFrame) -> str:
    """The card in one line, for under the accuracy tables."""
    card = sections(card)
    t, facts = card["training"], recorded(metrics, runs)
    decoding = "; ".join(f"{p}: {d}" for p, d in card["evaluation"].items() if not p.startswith("answer rule"))
    tuning = card["tuning"].get("budget", "no tuning")
    versions = _values(_versions(v, SHORT) for v in [_first_versions(metrics, runs)])
    return (f"Protocol: {t['length']}; {t['examples']}; {decoding}; precision: training "
            f"{facts['recorded by the jobs']['training precision'] or 'n/a'}, evaluation "
            f"{facts['recorded by the jobs']['evaluation precision'] or 'n/a'}; tuning: {tuning}; {versions}. "
            f"Full card: protocol_card.md.")


def _first_versions(metrics: dict, runs: pd.DataFrame) -> dict:
    records = [m.get("provenance") or {} for m in metrics.values()] + [p for p in runs.get("provenance", []) if p]
    return next((r["versions"] for r in records if r.get("versions")), {})


def _text(value) -> str:
    return value if isinstance(value, str) else str(value)


def _code(code: dict | None) -> str:
    if not code:
        return ""
    return code["commit"][:12] + (" with uncommitted changes" if code.get("dirty") else "")


def _values(values) -> str:
    return " | ".join(sorted({v for v in values if isinstance(v, str) and v}))


def _versions(versions: dict, names=VERSIONED) -> str:
    return ", ".join(f"{k} {versions[k]}" for k in names if versions.get(k))


def _device(device: dict) -> str:
    threads = f", {device['threads']} thread{'s' * (device['threads'] != 1)}" if device.get("threads") else ""
    return " / ".join(str(device[k]) for k in ("cpu", "gpu") if device.get(k)) + threads
