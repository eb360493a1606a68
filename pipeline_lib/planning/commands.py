"""Command lines of the pipeline's jobs, rendered in one place (`cli`) so that no value can turn into shell text or go
missing: every value is quoted, and an option without a value (None, "", an empty list, False) is left out
instead of being rendered as a bare `--flag` that then swallows the next argument or fails argparse; and parsed
in one place too (`add_model_args`, `quantization`, `start_job`: what every script that loads a model shares)."""
from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"  # one per rule; the rules run them (rules/common.smk)


def _text(value) -> str:
    """A mapping as JSON (keys sorted; read-only views too), anything else as its text."""
    return json.dumps(value, sort_keys=True, default=dict) if isinstance(value, Mapping) else str(value)


def cli(*positional, **options) -> str:
    """`positional... --option value ...`, quoted. Option names use `_` for `-`; True renders a bare flag,
    a list its values after the flag, a dict its JSON; None, "", [] and False leave the option out."""
    parts = [shlex.quote(_text(p)) for p in positional]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False or value == "" or (isinstance(value, (list, tuple)) and not value):
            continue
        if value is True:
            parts.append(flag)
        elif isinstance(value, (list, tuple)):
            parts += [flag, *(shlex.quote(_text(v)) for v in value)]
        else:
            parts += [flag, shlex.quote(_text(value))]
    return " ".join(parts)


# --- the other side: what the scripts parse (scripts/*.py)


def add_model_args(parser) -> None:
    """Arguments of every script that loads a base model (the rules render them from `RunPlan.model_options`)."""
    from pipeline_lib.catalog.base_models import QUANTIZATIONS

    parser.add_argument("--model", required=True, help="base model directory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--quantization", type=quantization, default=None,
                        help=f"{' | '.join(QUANTIZATIONS)} | JSON settings (bits, quant_type, double_quant, "
                             f"compute_dtype)")


def add_reference_args(parser) -> None:
    """Arguments of the forgetting scripts (the rules render them from `CostsPlan.forgetting_options`)."""
    parser.add_argument("--reference", type=json.loads, required=True,
                        help="JSON: {builtin|path|hub|datasets: ...} and its options (evaluation/forgetting.py)")
    parser.add_argument("--tokens", type=int, required=True, help="reference tokens scored")
    parser.add_argument("--sequence-length", type=int, required=True, help="tokens per window")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--scoring", choices=["windows", "documents"], default="windows",
                        help="windows across the documents, or each document on its own (PEFT's way)")
    add_model_args(parser)


def quantization(text: str) -> dict | None:
    from pipeline_lib.catalog.base_models import quantization_settings

    return quantization_settings(json.loads(text) if text.startswith("{") else text)


def start_job(threads: int, quantization: dict | None = None, model: str | None = None) -> None:
    """Before a job imports torch's libraries: it stays within the cores its rule declared (`threads:`, Snakemake runs
    jobs side by side), and it does not import bitsandbytes where neither its settings nor its model directory's own
    config quantize the base (runtime/imports.py)."""
    from pipeline_lib.runtime import imports

    if not quantization and not imports.quantized_checkpoint(model):
        imports.hide_bitsandbytes()
    import torch

    torch.set_num_threads(max(1, threads))
