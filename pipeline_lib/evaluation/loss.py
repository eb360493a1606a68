"""A model's training loss on held-out items, as the fine-tune computes it (the same tokenization, prompt masking and
token-weighted cross-entropy, training.loop.held_out_loss), in eval mode: tuning's validation metric `loss`, and the
tie-break of `accuracy`."""
from __future__ import annotations

import torch

from pipeline_lib.training.loop import held_out_loss, tokenize


@torch.inference_mode()
def token_loss(model, tokenizer, records: list[dict], cutoff_len: int, train_on_inputs: bool, prompt: str) -> dict:
    """{"loss": the token-weighted mean over every item, "tokens": how many, "items": per-item mean losses}; one
    item per forward pass, so no padding enters and every item has its own loss."""
    examples = [tokenize(tokenizer, r, cutoff_len, train_on_inputs, prompt) for r in records]
    total, count, per_item = held_out_loss(model, examples, 1, tokenizer.pad_token_id)
    return {"loss": total / max(count, 1), "tokens": count, "items": per_item}
