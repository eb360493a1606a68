"""Training checkpoints: everything a fine-tune needs to continue exactly where it stopped (trainable weights,
optimizer, scheduler, RNG states, data order, metrics so far), written atomically; a checkpoint is used only
by a run with the same inputs (fingerprint), and loaded with weights_only=True (no pickle code runs)."""
from __future__ import annotations

import sys
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
    """The last checkpoint of a run with this fingerprint, or None (absent, other inputs, or unreadable). A
    checkpoint that cannot be read, or was written for other inputs, is reported on stderr (and the unreadable one
    set aside as last.pt.unreadable) before training starts from step 0: a restart is never silent."""
    path = Path(directory) / NAME if directory is not None else None
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True)
    except Exception as e:  # a damaged checkpoint costs a restart, never a wrong result
        kept = path.with_name(NAME + ".unreadable")
        path.replace(kept)
        print(f"WARNING: checkpoint {path} cannot be read ({type(e).__name__}: {str(e)[:200]}); kept as {kept}, "
              f"training starts again from step 0", file=sys.stderr)
        return None
    if state.get("fingerprint") != fingerprint:
        print(f"WARNING: checkpoint {path} was written for other inputs or settings (another fingerprint); "
              f"training starts again from step 0", file=sys.stderr)
        return None
    return state
