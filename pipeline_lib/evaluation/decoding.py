"""Batched greedy generation: KV cache, left padding with an attention mask, longest prompts first, a row leaving
the batch as soon as it stops on EOS or on a stop string.

Greedy decoding is a loop of our own (`greedy`), not transformers' generate(): generate() keeps every row of a static
batch decoding until the longest one ends and looks for stop strings over the whole sequence, prompt included,
every step. Prompt-learning adapters (prefix tuning, prompt tuning, p-tuning) needed the loop anyway: peft's
generate() with the KV cache gives different tokens than the model's own forward pass for them (measured with peft
0.21 / transformers 5.24: the prefix is lost after the first step, the failure behind upstream LLM-Adapters issue
#32), so the virtual tokens are put in place once, and the cache carries them on. Beam search (the paper protocol)
stays with generate().
"""
from __future__ import annotations

import functools
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


# Where `auto` stops adding rows to a decoding step. A CPU gains up to 128 rows: the step's matmuls stream every
# weight once for all rows (a 576 x 1536 float32 matmul with its weights out of cache ran at 65% of the peak at 64
# rows, 79% at 128); the default run's 175 prompts took 0.88-0.95x the time at 128 rows as at 64 in float32 (every
# response the same) and 0.96-0.97x in bf16 (docs/measurements/2026-12-07-batch-and-startup.md). A GPU: not measured.
AUTO_ROWS = {"cpu": 128}
AUTO_ROWS_OTHERWISE = 64


def auto_batch_size(model, max_prompt_tokens: int, max_new_tokens: int, n_prompts: int,
                    free_bytes: int | None = None, fraction: float = 0.5, cap: int | None = None) -> int:
    """The largest batch whose KV cache (x2 for activations and beams' slack) fits in `fraction` of free memory,
    at most `cap` (default: AUTO_ROWS for the model's device)."""
    param = next(model.parameters())
    cap = cap or AUTO_ROWS.get(param.device.type, AUTO_ROWS_OTHERWISE)
    free = free_memory_bytes(param.device) if free_bytes is None else free_bytes
    per_sequence = 2 * kv_bytes_per_token(model.config, param.element_size()) * (max_prompt_tokens + max_new_tokens)
    return max(1, min(cap, n_prompts, int(free * fraction) // per_sequence))


@torch.inference_mode()
def new_tokens(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
               eos_token_id: int | None, pad_token_id: int, generation_kwargs: dict | None = None,
               stop_strings: list[str] | None = None, tokenizer=None) -> torch.Tensor:
    """The tokens generated after a left-padded batch (rows x new tokens, pad after a row's end): greedy with the
    KV cache, each row leaving the batch at EOS or once a stop string appears in its new text (`greedy`); with
    `generation_kwargs` (e.g. the paper protocol's beams) transformers' generate(). What every evaluation runs."""
    if generation_kwargs:
        if prompt_learning_config(model) is not None:
            raise ValueError("beam search (the paper protocol) is not available for prompt-learning adapters: "
                             "peft's cached generate() is wrong for them, and ours is greedy")
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                             pad_token_id=pad_token_id, eos_token_id=eos_token_id,
                             stop_strings=stop_strings or None, tokenizer=tokenizer if stop_strings else None,
                             **{"do_sample": False, "num_beams": 1, "use_cache": True, **generation_kwargs})
        return out[:, input_ids.shape[1]:]
    rows = greedy(model, input_ids, attention_mask, max_new_tokens, eos_token_id, stop_strings, tokenizer)
    out = torch.full((len(rows), max(map(len, rows), default=0)), pad_token_id, dtype=input_ids.dtype)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=input_ids.dtype)
    return out.to(input_ids.device)


def greedy(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
           eos_token_id: int | None, stop_strings: list[str] | None = None, tokenizer=None) -> list[list[int]]:
    """Each row's greedy new tokens (up to and including its EOS). A row leaves the batch, and its KV cache, as
    soon as it ends (EOS, or a stop string in the text of its new tokens alone: the prompt never stops a row), so
    no step computes a finished row; the first forward computes the last position's logits only. Positions count
    each row's real tokens (left padding), as transformers' generate() counts them. Prompt-learning adapters start
    from their virtual tokens (`_start_with_virtual_tokens`)."""
    batch = input_ids.shape[0]
    if prompt_learning_config(model) is not None:
        forward, out, mask, position = _start_with_virtual_tokens(model, input_ids, attention_mask, max_new_tokens)
        logits, cache = out.logits[:, -1], _cache_of(out)
    else:
        accepts = set(inspect.signature(_inner(model).forward).parameters)
        with_positions = "position_ids" in accepts  # not BLOOM's (ALiBi)

        def forward(position_ids, cache, **inputs):
            return model(use_cache=True, **inputs, **{_cache_argument(accepts): cache},
                         **({"position_ids": position_ids} if with_positions else {}))
        keep_last = {"logits_to_keep": 1} if "logits_to_keep" in accepts else {}
        if SHARED_PREFILL and with_positions and _growing_only(model.config):
            logits, cache, mask, position = _prefill(forward, input_ids, attention_mask, model.config,
                                                     max_new_tokens, keep_last)
        else:  # positions from the mask alone (ALiBi), or a cache of other layers: one forward, as padded
            mask = attention_mask
            positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
            out = forward(positions, preallocated_cache(model.config, input_ids.shape[1] + max_new_tokens),
                          input_ids=input_ids, attention_mask=mask, **keep_last)
            logits, cache, position = out.logits[:, -1], _cache_of(out), positions[:, -1:]
    live = list(range(batch))  # live[k]: the input row the batch's row k is
    tokens: list[list[int]] = [[] for _ in range(batch)]
    done = [False] * batch
    stops = [s for s in (stop_strings or []) if s]
    for step in range(max_new_tokens):
        token = logits.argmax(-1)
        for k, t in enumerate(token.tolist()):
            row = live[k]
            if not done[row]:
                tokens[row].append(t)
                done[row] = t == eos_token_id
        if stops:  # one decode per running row: a stop string is looked for in the row's new text only
            running = [r for r in live if not done[r]]
            for r, text in zip(running, tokenizer.batch_decode([tokens[r] for r in running])):
                done[r] = any(s in text for s in stops)
        if all(done) or step == max_new_tokens - 1:
            break
        keep = [k for k, r in enumerate(live) if not done[r]]
        if len(keep) < len(live) and hasattr(cache, "batch_select_indices"):  # a cache that cannot shrink keeps
            index = torch.tensor(keep, device=token.device)                # its rows, their tokens unused
            cache.batch_select_indices(index)
            mask, position, token = mask[index], position[index], token[index]
            live = [live[k] for k in keep]
        mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
        position = position + 1
        logits = forward(position, cache, input_ids=token[:, None], attention_mask=mask).logits[:, -1]
    return tokens


def preallocated_cache(config, capacity: int):
    """transformers' DynamicCache whose full-attention layers write each step into a buffer allocated once for
    `capacity` positions (`_GrowingLayer`), instead of concatenating the whole cache every step: measured on
    SmolLM2-135M, 25 rows in float32 on 2 cores, the concatenations were a quarter of a decoding step's time.
    Attention reads exactly the positions written, so its result is the dynamic cache's."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=config)
    cache.layers = [_growing_layer(capacity) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def _growing_only(config) -> bool:
    """Whether every layer of the model's cache is a `_GrowingLayer` (full attention): what `_prefill` assembles."""
    return all(isinstance(layer, _growing_class()) for layer in preallocated_cache(config, 1).layers)


SHARED_PREFILL = True  # False: the one left-padded forward (benchmarks/generation_loop.py times both)
PREFILL_ROWS = 16  # rows per prefill forward, sorted by length: the default run's 64-row batches padded 26% of
#                    their prompt positions in one forward, 8% in forwards of 16 (benchmarks/generation_loop.py)


def _prefill(forward, input_ids, attention_mask, config, max_new_tokens: int, keep_last: dict):
    """The prompts' forward pass without computing what the rows share or their padding: the token prefix every row
    begins with (an evaluation's prompt template) is computed once and its keys and values copied to every row;
    the rest of each prompt in forwards of PREFILL_ROWS rows of similar length. The cache is laid out as
    [shared prefix | padding | the row's own tokens], masked where padded, each position at its place in the
    prompt: the attention every row sees is the left-padded batch's. Returns (each row's last logits, the cache
    with room for `max_new_tokens`, the attention mask, each row's last position)."""
    rows = [ids[m.bool()] for ids, m in zip(input_ids, attention_mask)]
    shared = shared_prefix(rows) if len(rows) > 1 else 0
    own = [len(r) - shared for r in rows]
    width = max(own)
    prefix = None
    if shared:
        prefix_cache = preallocated_cache(config, shared)
        forward(torch.arange(shared, device=input_ids.device)[None], prefix_cache, input_ids=rows[0][None, :shared],
                attention_mask=attention_mask.new_ones(1, shared), **keep_last)
        prefix = [(layer.keys, layer.values) for layer in prefix_cache.layers]
    order = sorted(range(len(rows)), key=lambda i: -own[i])
    logits, parts = [None] * len(rows), []
    for start in range(0, len(order), PREFILL_ROWS):
        chunk = order[start:start + PREFILL_ROWS]
        chunk_width = own[chunk[0]]
        ids = input_ids.new_zeros(len(chunk), chunk_width)  # left padding, masked: any token id
        mask = attention_mask.new_zeros(len(chunk), shared + chunk_width)
        mask[:, :shared] = 1
        for k, i in enumerate(chunk):
            ids[k, chunk_width - own[i]:] = rows[i][shared:]
            mask[k, shared + chunk_width - own[i]:] = 1
        cache = preallocated_cache(config, shared + chunk_width)
        for layer, (keys, values) in zip(cache.layers, prefix or []):
            layer.update(keys.expand(len(chunk), -1, -1, -1), values.expand(len(chunk), -1, -1, -1))
        positions = (mask.cumsum(-1) - 1)[:, shared:].clamp(min=0)
        out = forward(positions, cache, input_ids=ids, attention_mask=mask, **keep_last)
        for k, i in enumerate(chunk):
            logits[i] = out.logits[k, -1]
        parts.append((chunk, chunk_width, cache))
    return (torch.stack(logits), _assembled(config, parts, len(rows), shared, width, max_new_tokens),
            _layout_mask(attention_mask, own, shared, width),
            torch.tensor([[shared + n - 1] for n in own], device=input_ids.device))


def shared_prefix(rows: list[torch.Tensor]) -> int:
    """How many leading tokens every row has in common, leaving each row at least one token of its own."""
    shortest = min(len(r) for r in rows)
    same = torch.stack([r[:shortest] for r in rows]).eq(rows[0][:shortest]).all(0)
    differs = (~same).nonzero()
    return min(int(differs[0]) if len(differs) else shortest, shortest - 1)


def _assembled(config, parts, batch: int, shared: int, width: int, max_new_tokens: int):
    """One cache for the batch from the prefill's chunks: each row's keys and values at [prefix | pad | own]."""
    cache = preallocated_cache(config, shared + width + max_new_tokens)
    for n, layer in enumerate(cache.layers):
        first = parts[0][2].layers[n]
        keys = first.keys.new_zeros(batch, first.keys.shape[1], shared + width, first.keys.shape[-1])
        values = first.values.new_zeros(batch, first.values.shape[1], shared + width, first.values.shape[-1])
        for chunk, chunk_width, part in parts:
            index = torch.tensor(chunk, device=keys.device)
            keys[index, :, shared + width - chunk_width:] = part.layers[n].keys[:, :, shared:]
            values[index, :, shared + width - chunk_width:] = part.layers[n].values[:, :, shared:]
            keys[index, :, :shared] = part.layers[n].keys[:, :, :shared]
            values[index, :, :shared] = part.layers[n].values[:, :, :shared]
        layer.update(keys, values)
    return cache


def _layout_mask(attention_mask, own: list[int], shared: int, width: int):
    mask = attention_mask.new_zeros(len(own), shared + width)
    mask[:, :shared] = 1
    for i, n in enumerate(own):
        mask[i, shared + width - n:] = 1
    return mask


def _growing_layer(capacity: int):
    layer = _growing_class()()
    layer.capacity = capacity
    return layer


@functools.cache
def _growing_class():
    from transformers.cache_utils import DynamicLayer

    class _GrowingLayer(DynamicLayer):
        capacity = 0

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            used, new = self.get_seq_length(), key_states.shape[-2]
            if used == 0:
                shape = (*key_states.shape[:-2], max(self.capacity, new), key_states.shape[-1])
                self._k = key_states.new_empty(shape)
                self._v = value_states.new_empty((*shape[:-1], value_states.shape[-1]))
            elif used + new > self._k.shape[-2]:  # past the capacity (never in `greedy`): grow by concatenation
                self._k = torch.cat([self._k[..., :used, :], key_states.new_empty(key_states.shape)], dim=-2)
                self._v = torch.cat([self._v[..., :used, :], value_states.new_empty(value_states.shape)], dim=-2)
            self._k[..., used:used + new, :] = key_states
            self._v[..., used:used + new, :] = value_states
            self.keys, self.values = self._k[..., :used + new, :], self._v[..., :used + new, :]
            return self.keys, self.values

        def batch_select_indices(self, indices):
            if self.get_seq_length() > 0:
                used = self.get_seq_length()
                self._k, self._v = self._k[indices], self._v[indices]
                self.keys, self.values = self._k[..., :used, :], self._v[..., :used, :]

    return _GrowingLayer


def _cache_argument(accepts: set[str]) -> str:
    """The KV cache's keyword: `cache` from transformers 5.2x, `past_key_values` before (and still accepted)."""
    return "cache" if "cache" in accepts else "past_key_values"


def _cache_of(out):
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def _inner(model):
    """The transformers model under a peft wrapper (whose forward takes **kwargs): what the arguments go to."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _start_with_virtual_tokens(model, input_ids, attention_mask, max_new_tokens):
    """The first forward of a prompt-learning adapter, on its base model with the virtual tokens in place once
    (a key/value prefix in the cache, or virtual token embeddings before the prompt's): peft's generate() with the
    cache loses them after the first step. Returns (forward, its output, the mask, the last positions)."""
    config = prompt_learning_config(model)
    base, batch, n_virtual = model.base_model, input_ids.shape[0], config.num_virtual_tokens
    mask = torch.cat([attention_mask.new_ones(batch, n_virtual), attention_mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: positions count real tokens only
    accepts = set(inspect.signature(base.forward).parameters)

    def forward(position_ids, cache, **inputs):
        extra = {"position_ids": position_ids} if "position_ids" in accepts else {}
        return base(use_cache=True, **inputs, **extra, **({_cache_argument(accepts): cache} if cache else {}))

    prompt = model.get_prompt(batch, max_cache_len=mask.shape[1] + max_new_tokens)
    if not isinstance(prompt, torch.Tensor):
        out = forward(positions[:, n_virtual:], prompt, input_ids=input_ids, attention_mask=mask)
    else:
        embeds = model.word_embeddings(input_ids)
        out = forward(positions, None, inputs_embeds=torch.cat([prompt.to(embeds.dtype), embeds], dim=1),
                      attention_mask=mask)
    return forward, out, mask, positions[:, -1:]


def generated_tokens(out: torch.Tensor, eos_token_id: int | None, pad_token_id: int) -> int:
    """Tokens a batch generated: each row's up to and including its first EOS (the rest is padding after it)."""
    return sum(row_tokens(out, eos_token_id, pad_token_id))


def row_tokens(out: torch.Tensor, eos_token_id: int | None, pad_token_id: int) -> list[int]:
    """Each row's generated tokens, up to and including its first EOS."""
    ends = (out == pad_token_id) | ((out == eos_token_id) if eos_token_id is not None else False)
    return torch.where(ends.any(1), ends.int().argmax(1) + 1, out.shape[1]).tolist()


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[str], batch_size: int | str = 16, max_new_tokens: int = 128,
             stop_strings: list[str] | None = None, cut_strings: list[str] | None = None,
             on_batch: Callable[[list[int], list[str]], None] | None = None,
             generation_kwargs: dict | None = None, counts: dict | None = None) -> list[str]:
    """Greedy responses for `prompts`, in input order. `on_batch(indices, responses)` sees each batch.
    Generation stops at EOS or a stop string; each response is cut before the first of `cut_strings` (default:
    the stop strings). `generation_kwargs` (e.g. the paper protocol's beam search) go to generate() as they are.
    `counts`, when given, adds up the tokens generated ("new_tokens", up to and including each row's EOS), the
    prompts' tokens ("prompt_tokens") and the rows generated ("rows"), and keeps each prompt's (prompt tokens, new
    tokens) under "per_prompt" by its index (set before `on_batch` sees the batch)."""
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
        if counts is not None:  # what the generation computed: its efficiency's model FLOPs
            new = row_tokens(out, tokenizer.eos_token_id, tokenizer.pad_token_id)
            prompt = enc["attention_mask"].sum(1).tolist()
            counts["new_tokens"] = counts.get("new_tokens", 0) + sum(new)
            counts["prompt_tokens"] = counts.get("prompt_tokens", 0) + sum(prompt)
            counts["rows"] = counts.get("rows", 0) + len(indices)
            counts.setdefault("per_prompt", {}).update(zip(indices, zip(prompt, new)))
        texts = tokenizer.batch_decode(out, skip_special_tokens=True)
        batch = [cut_at_stop(t, cut_strings) for t in texts]
        for i, text in zip(indices, batch):
            responses[i] = text
        if on_batch:
            on_batch(indices, batch)
    return responses
