"""Batched greedy generation: KV cache, left padding with an attention mask, longest prompts first,
stop on EOS or on a stop string.

Prompt-learning adapters (prefix tuning, prompt tuning, p-tuning) get a decoding loop of our own: peft's
generate() with the KV cache gives different tokens than the model's own forward pass for them (measured
with peft 0.21 / transformers 5.24: the prefix is lost after the first step, the failure behind upstream
LLM-Adapters issue #32), so the virtual tokens are put in place once, and the cache carries them on.
"""
from __future__ import annotations

import inspect
from typing import Callable, Iterator

import torch

from pipeline_lib.adapters import prompt_learning_config


def cut_at_stop(text: str, stop_strings: list[str]) -> str:
    cut = min((i for s in stop_strings if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut].strip()


def batches_longest_first(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Index batches, longest prompts first: similar lengths pad little, and memory trouble shows at once."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def kv_bytes_per_token(config, dtype_bytes: int) -> int:
    """Key + value cache of one token across all layers."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * heads * head_dim * dtype_bytes


def free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    import psutil

    return psutil.virtual_memory().available


def auto_batch_size(model, max_prompt_tokens: int, max_new_tokens: int, n_prompts: int,
                    free_bytes: int | None = None, fraction: float = 0.5, cap: int = 64) -> int:
    """The largest batch whose KV cache (x2 for activations and beams' slack) fits in `fraction` of free memory,
    capped: past a few dozen sequences a CPU gains nothing and a GPU little."""
    param = next(model.parameters())
    free = free_memory_bytes(param.device) if free_bytes is None else free_bytes
    per_sequence = 2 * kv_bytes_per_token(model.config, param.element_size()) * (max_prompt_tokens + max_new_tokens)
    return max(1, min(cap, n_prompts, int(free * fraction) // per_sequence))


@torch.inference_mode()
def new_tokens(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
               eos_token_id: int | None, pad_token_id: int, generation_kwargs: dict | None = None,
               stop_strings: list[str] | None = None, tokenizer=None) -> torch.Tensor:
    """The tokens generated after a left-padded batch: greedy with the KV cache (or `generation_kwargs`, e.g.
    the paper protocol's beams), stopping at EOS or a stop string. What every evaluation runs."""
    if prompt_learning_config(model) is not None:
        if generation_kwargs:
            raise ValueError("beam search (the paper protocol) is not available for prompt-learning adapters: "
                             "peft's cached generate() is wrong for them, and ours is greedy")
        out = _greedy_with_virtual_tokens(model, input_ids, attention_mask, max_new_tokens, eos_token_id,
                                          pad_token_id)  # stop strings are cut afterwards
    else:
        kwargs = {"do_sample": False, "num_beams": 1, "use_cache": True, **(generation_kwargs or _cache(model))}
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                             pad_token_id=pad_token_id, eos_token_id=eos_token_id,
                             stop_strings=stop_strings or None, tokenizer=tokenizer if stop_strings else None,
                             **kwargs)
    return out[:, input_ids.shape[1]:]


def _cache(model) -> dict:
    """Greedy float32 decoding keeps a static (preallocated) KV cache instead of concatenating one per step:
    benchmarks/cpu_precision.py, 30 gsm8k prompts x 128 new tokens on 2 cores, measured 1.09x faster with the same
    30 responses. In bf16 it gained 1.05x but changed 8 of the 30 responses by rounding, so bf16 keeps the default."""
    return {"cache_implementation": "static"} if next(model.parameters()).dtype == torch.float32 else {}


def _greedy_with_virtual_tokens(model, input_ids, attention_mask, max_new_tokens, eos_token_id, pad_token_id):
    config = prompt_learning_config(model)
    base, batch, n_virtual = model.base_model, input_ids.shape[0], config.num_virtual_tokens
    mask = torch.cat([attention_mask.new_ones(batch, n_virtual), attention_mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: positions count real tokens only
    with_positions = "position_ids" in inspect.signature(base.forward).parameters

    def step(positions_now, **inputs):
        extra = {"position_ids": positions_now} if with_positions else {}
        return base(attention_mask=mask, use_cache=True, **inputs, **extra)

    # a key/value prefix (prefix tuning, cartridges: peft returns a cache) or virtual token embeddings
    prompt = model.get_prompt(batch, max_cache_len=mask.shape[1] + max_new_tokens)
    if not isinstance(prompt, torch.Tensor):
        out = step(positions[:, n_virtual:], input_ids=input_ids, past_key_values=prompt)
    else:
        embeds = model.word_embeddings(input_ids)
        out = step(positions, inputs_embeds=torch.cat([prompt.to(embeds.dtype), embeds], dim=1))
    tokens, finished = [], torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        token = out.logits[:, -1].argmax(-1).masked_fill(finished, pad_token_id)
        tokens.append(token)
        if eos_token_id is not None:
            finished |= token == eos_token_id
        if finished.all() or len(tokens) == max_new_tokens:
            break
        mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
        positions = positions[:, -1:] + 1
        out = step(positions, input_ids=token[:, None], past_key_values=out.past_key_values)
    return torch.cat([input_ids, torch.stack(tokens, dim=1)], dim=1)


def generated_tokens(out: torch.Tensor, eos_token_id: int | None, pad_token_id: int) -> int:
    """Tokens a batch generated: each row's up to and including its first EOS (the rest is padding after it)."""
    ends = (out == pad_token_id) | ((out == eos_token_id) if eos_token_id is not None else False)
    first = torch.where(ends.any(1), ends.int().argmax(1) + 1, out.shape[1])
    return int(first.sum())


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[str], batch_size: int | str = 16, max_new_tokens: int = 128,
             stop_strings: list[str] | None = None, cut_strings: list[str] | None = None,
             on_batch: Callable[[list[int], list[str]], None] | None = None,
             generation_kwargs: dict | None = None, counts: dict | None = None) -> list[str]:
    """Greedy responses for `prompts`, in input order. `on_batch(indices, responses)` sees each batch.
    Generation stops at EOS or a stop string; each response is cut before the first of `cut_strings` (default:
    the stop strings). `generation_kwargs` (e.g. the paper protocol's beam search) go to generate() as they are.
    `counts["new_tokens"]`, when given, adds up the tokens generated (up to and including each row's EOS)."""
    if not prompts:  # e.g. a resumed evaluation whose items were all written before the kill
        return []
    stop_strings = list(stop_strings or [])
    cut_strings = stop_strings if cut_strings is None else list(cut_strings)
    tokenizer.padding_side = "left"
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    device = next(model.parameters()).device
    if batch_size == "auto":
        batch_size = auto_batch_size(model, max(lengths, default=1), max_new_tokens, len(prompts))
    responses: list[str | None] = [None] * len(prompts)
    for indices in batches_longest_first(lengths, batch_size):
        enc = tokenizer([prompts[i] for i in indices], return_tensors="pt", padding=True).to(device)
        out = new_tokens(model, enc["input_ids"], enc["attention_mask"], max_new_tokens, tokenizer.eos_token_id,
                         tokenizer.pad_token_id, generation_kwargs, stop_strings, tokenizer)
        if counts is not None:
            counts["new_tokens"] = counts.get("new_tokens", 0) + generated_tokens(out, tokenizer.eos_token_id,
                                                                                   tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(out, skip_special_tokens=True)
        batch = [cut_at_stop(t, cut_strings) for t in texts]
        for i, text in zip(indices, batch):
            responses[i] = text
        if on_batch:
            on_batch(indices, batch)
    return responses
