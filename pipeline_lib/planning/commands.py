"""Command lines of the pipeline's jobs, rendered in one place so that no value can turn into shell text or go
missing: every value is quoted, and an option without a value (None, "", an empty list, False) is left out
instead of being rendered as a bare `--flag` that then swallows the next argument or fails argparse."""
from __future__ import annotations

import json
import shlex
from collections.abc import Mapping


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
