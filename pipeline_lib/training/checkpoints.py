"""Training checkpoints: everything a fine-tune needs to continue exactly where it stopped (trainable weights,
optimizer, scheduler, RNG states, data order, metrics so far), written atomically; a checkpoint is used only
by a run with the same inputs (fingerprint), and loaded with weights_only=True (no pickle code runs)."""
from __future__ import annotations

from pathlib import Path

import torch

from pipeline_lib.runtime.files import atomic_path

NAME = "last.pt"


def save(directory: str | Path, state: dict) -> Path:
    path = Path(directory) / NAME
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load(directory: str | Path | None, fingerprint: str) -> dict | None:
    """The last checkpoint of a run with this fingerprint, or None (absent, other inputs, or unreadable)."""
    if directory is None or not (Path(directory) / NAME).is_file():
        return None
    try:
        state = torch.load(Path(directory) / NAME, weights_only=True)
    except Exception:  # a damaged checkpoint costs a restart, never a wrong result
        return None
    return state if state.get("fingerprint") == fingerprint else None
