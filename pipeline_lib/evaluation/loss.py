"""A model's training loss on held-out items, as the fine-tune computes it (the same tokenization, prompt masking and
token-weighted cross-entropy), in eval mode: tuning's validation metric `loss`, and the tie-break of `accuracy`."""
from __future__ import annotations

import torch

from pipeline_lib.training.loop import collate, token_loss_sum, tokenize


@torch.inference_mode()
def token_loss(model, tokenizer, records: list[dict], cutoff_len: int, train_on_inputs: bool, prompt: str) -> dict:
    """{"loss": the token-weighted mean over every item, "tokens": how many, "items": per-item mean losses}; one
    item per forward pass, so no padding enters and every item has its own loss."""
    model.eval()
    device = next(model.parameters()).device
    total, count, per_item = 0.0, 0, []
    for record in records:
        example = tokenize(tokenizer, record, cutoff_len, train_on_inputs, prompt)
        batch = {k: v.to(device) for k, v in collate([example], tokenizer.pad_token_id).items()}
        loss_sum, n = token_loss_sum(model, batch)
        total, count = total + float(loss_sum), count + n
        per_item.append(float(loss_sum) / max(n, 1))
    return {"loss": total / max(count, 1), "tokens": count, "items": per_item}
