"""Batched greedy generation: KV cache, left padding with an attention mask, longest prompts first,
stop on EOS or on a stop string."""
from __future__ import annotations

from typing import Callable, Iterator

import torch


def cut_at_stop(text: str, stop_strings: list[str]) -> str:
    cut = min((i for s in stop_strings if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut].strip()


def batches_longest_first(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Index batches, longest prompts first: similar lengths pad little, and memory trouble shows at once."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[str], batch_size: int = 16, max_new_tokens: int = 128,
             stop_strings: list[str] | None = None,
             on_batch: Callable[[list[int], list[str]], None] | None = None) -> list[str]:
    """Greedy responses for `prompts`, in input order. `on_batch(indices, responses)` sees each batch."""
    stop_strings = list(stop_strings or [])
    tokenizer.padding_side = "left"
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    device = next(model.parameters()).device
    responses: list[str | None] = [None] * len(prompts)
    for indices in batches_longest_first(lengths, batch_size):
        enc = tokenizer([prompts[i] for i in indices], return_tensors="pt", padding=True).to(device)
        out = model.generate(**enc, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, use_cache=True,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                             stop_strings=stop_strings or None, tokenizer=tokenizer if stop_strings else None)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        batch = [cut_at_stop(t, stop_strings) for t in texts]
        for i, text in zip(indices, batch):
            responses[i] = text
        if on_batch:
            on_batch(indices, batch)
    return responses
