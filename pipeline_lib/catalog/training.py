"""The fine-tune's settings (config `training:`), importable without torch."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    epochs: float = 1.0
    max_steps: int | None = None       # optimizer steps; overrides epochs when set
    learning_rate: float = 3e-4
    batch_size: int = 16               # examples per optimizer step (paper)
    micro_batch_size: int = 4          # examples per forward pass (paper)
    warmup_steps: int = 100
    cutoff_len: int = 256
    train_on_inputs: bool = True       # paper default: the loss covers the prompt too
    weight_decay: float = 0.0
    autocast: str = "auto"             # "bfloat16", "float32", or "auto": bf16 where the job's step runs clearly faster
    seed: int = 42
    lr_scheduler: str = "linear"       # "linear" (paper) or "cosine"
    gradient_checkpointing: bool = False
    checkpoint_every: int | None = 50  # optimizer steps between checkpoints; None: none
    packing: bool = False              # each micro-batch as one padding-free row (block-diagonal attention)
    group_by_length: bool = False      # upstream's option: micro-batches of similar lengths, little padding
    attention: str = "auto"            # "eager", "sdpa", or "auto": eager on CPU (measured faster to train), sdpa else
    val_set_size: int = 0              # held-out examples for validation loss (paper: val_set_size)
    eval_every: int | None = None      # steps between validation losses (None: only at the end)
    max_grad_norm: float | None = 1.0  # gradient-norm clipping (transformers.Trainer's default); None: none
    padding_side: str = "right"        # "left": upstream's, which makes padded examples' first token a target
    shuffle: bool = True               # a seeded new order each epoch (upstream); False: the file's order
    max_truncated: float = 0.25        # the share of examples cut at cutoff_len past which the fine-tune stops
    prompt: str = "alpaca"             # the run's prompt template (config `prompt`, not a `training` key)
