"""What a run's rows are called: the base model evaluated without an adapter is the adapter `base` trained on `none`;
a fine-tune of an adapter with seeds is `<adapter>-seed<N>`."""
from __future__ import annotations

BASE = "base"          # the adapter name meaning "no adapter"
NO_TRAIN_SET = "none"  # the training-set slot of the base rows


def run_name(adapter: str, seed: int | None) -> str:
    """The name of one fine-tune of an adapter in paths and rule wildcards: the adapter's own name without seeds,
    `<adapter>-seed<N>` with them (stable when the seed list grows)."""
    return adapter if seed is None else f"{adapter}-seed{seed}"


def is_base(train_set: str) -> bool:
    return train_set in (NO_TRAIN_SET, "")
