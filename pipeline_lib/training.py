"""The fine-tuning loop: upstream's tokenization, AdamW with linear warmup and linear (or cosine) decay,
gradient accumulation with the paper's batch_size / micro_batch_size semantics, token-weighted loss,
optional bf16 autocast and gradient checkpointing, and checkpoints every N steps from which a killed run
resumes to the same final weights as an uninterrupted one."""
from __future__ import annotations

import math
import resource
import time

import torch
from tqdm import tqdm

from . import checkpoints, distributed
from .train_config import TrainConfig  # noqa: F401  (re-exported: part of this module's interface)
from .prompts import alpaca_prompt, alpaca_training_text


GROUP_CHUNK_STEPS = 8  # optimizer steps' worth of examples sorted together under group_by_length


class TrainingError(RuntimeError):
    pass


@torch.no_grad()
def cast_frozen_linears(model, dtype=torch.bfloat16) -> int:
    """Store the frozen Linear weights in `dtype`: autocast would cast them on every forward anyway, so this
    only saves that copy and half their memory. Embeddings, norms and the adapter stay float32 (the residual
    stream keeps float32 precision). Returns the number of weights cast."""
    cast = 0
    tied = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    for module in model.modules():
        if type(module) is torch.nn.Linear and not module.weight.requires_grad and id(module.weight) not in tied \
                and module.weight.dtype == torch.float32:
            module.weight.data = module.weight.data.to(dtype)
            if module.bias is not None and not module.bias.requires_grad:
                module.bias.data = module.bias.data.to(dtype)
            cast += 1
    return cast


def tokenize(tokenizer, record: dict, cutoff_len: int, train_on_inputs: bool) -> dict:
    """Upstream's `generate_and_tokenize_prompt`: truncate, append EOS when there is room, mask the prompt
    from the loss unless train_on_inputs."""
    ids = tokenizer(alpaca_training_text(record), truncation=True, max_length=cutoff_len)["input_ids"]
    if ids[-1] != tokenizer.eos_token_id and len(ids) < cutoff_len:
        ids = ids + [tokenizer.eos_token_id]
    labels = list(ids)
    if not train_on_inputs:
        prompt_len = len(tokenizer(alpaca_prompt(record["instruction"], record.get("input", "")),
                                   truncation=True, max_length=cutoff_len)["input_ids"])
        labels[:prompt_len] = [-100] * prompt_len
    return {"input_ids": ids, "labels": labels}


def collate(examples: list[dict], pad_id: int) -> dict:
    width = max(len(e["input_ids"]) for e in examples)
    def pad(seq, value):
        return seq + [value] * (width - len(seq))
    return {
        "input_ids": torch.tensor([pad(e["input_ids"], pad_id) for e in examples]),
        "attention_mask": torch.tensor([pad([1] * len(e["input_ids"]), 0) for e in examples]),
        "labels": torch.tensor([pad(e["labels"], -100) for e in examples]),
    }


def collate_packed(examples: list[dict]) -> dict:
    """The examples concatenated into one row, no padding: positions restart and attention stays inside each
    example (a 4D block-diagonal causal mask; position ids alone do not do that, see FACTS.md)."""
    ids, labels, positions, segment = [], [], [], []
    for i, e in enumerate(examples):
        ids += e["input_ids"]
        # an example's first token is no target: it would be predicted from the previous example
        labels += [-100] + e["labels"][1:]
        positions += list(range(len(e["input_ids"])))
        segment += [i] * len(e["input_ids"])
    seg = torch.tensor(segment)
    n = len(ids)
    allowed = (seg[:, None] == seg[None, :]) & torch.ones(n, n, dtype=torch.bool).tril()
    # additive float: eager attention ignores a boolean 4D mask, sdpa takes either (FACTS.md)
    mask = torch.zeros(n, n).masked_fill(~allowed, torch.finfo(torch.float32).min)
    return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
            "position_ids": torch.tensor([positions]), "attention_mask": mask[None, None]}


def set_attention(model, choice: str, device: torch.device) -> str:
    """Switch the base model's attention kernel for training. On CPU the eager kernel trains faster than
    sdpa's flash kernel at these lengths (its backward dominates: benchmarks/train_speed.py)."""
    from transformers import PreTrainedModel

    kind = ("eager" if device.type == "cpu" else "sdpa") if choice == "auto" else choice
    base = next(m for m in model.modules() if isinstance(m, PreTrainedModel))
    if base.config._attn_implementation != kind:
        try:
            base.set_attn_implementation(kind)
        except ValueError as err:  # an architecture without that kernel keeps its own
            if choice != "auto":
                raise TrainingError(f"attention {kind!r}: {err}") from err
    return base.config._attn_implementation


@torch.no_grad()
def validation_loss(model, examples: list[dict], cfg: TrainConfig, pad_id: int) -> float:
    """Token-weighted loss over the held-out examples, in eval mode (no dropout)."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(examples), cfg.micro_batch_size):
        batch = {k: v.to(device) for k, v in collate(examples[i:i + cfg.micro_batch_size], pad_id).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.autocast_bf16):
            loss_sum, n = token_loss_sum(model, batch)
        total, count = total + loss_sum.item(), count + n
    model.train()
    return total / max(count, 1)


def split_validation(examples: list[dict], size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(training, validation) examples: a seeded held-out set of `size`, as upstream's train_test_split."""
    if size <= 0:
        return examples, []
    if size >= len(examples):
        raise TrainingError(f"val_set_size {size} leaves no training examples (the set has {len(examples)})")
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed + 1)).tolist()
    return [examples[i] for i in sorted(order[size:])], [examples[i] for i in sorted(order[:size])]


def epoch_order(lengths: list[int], generator: torch.Generator, group_by_length: bool, chunk: int) -> list[int]:
    """A seeded permutation of the examples, consumed from the end. With `group_by_length`, each run of
    `chunk` consecutive examples is sorted by length, so the micro-batches cut from it need little padding while
    which examples share a step stays random (as transformers' LengthGroupedSampler, with megabatches)."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if not group_by_length:
        return order
    return [i for start in range(0, len(order), chunk)
            for i in sorted(order[start:start + chunk], key=lambda j: lengths[j])]


def lr_factor(step: int, warmup: int, total: int, kind: str = "linear") -> float:
    """Linear warmup to 1, then linear (upstream's transformers default) or cosine decay to 0."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if kind == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return max(0.0, (total - step) / max(1, total - warmup))


def token_loss_sum(model, batch: dict) -> tuple[torch.Tensor, int]:
    """Sum of next-token cross-entropies over labelled tokens, and their count."""
    labels = batch["labels"][:, 1:]
    # prompt-learning adapters prepend virtual tokens to the logits: keep the input's positions only
    extra = {"position_ids": batch["position_ids"]} if "position_ids" in batch else {}
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra).logits
    logits = logits[:, -batch["input_ids"].shape[1]:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels.flatten(),
                                             ignore_index=-100, reduction="sum")
    return loss, int((labels != -100).sum())


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def _load_trainable(model, state: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.copy_(state[name])


def _capture(model, optimizer, scheduler, generator, order, losses, tokens, step, fingerprint, validation) -> dict:
    return {"fingerprint": fingerprint, "step": step, "order": list(order), "losses": list(losses),
            "validation": validation,
            "tokens": tokens, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "params": _trainable_state(model)}


def _restore(state, model, optimizer, scheduler, generator) -> None:
    _load_trainable(model, state["params"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"]:
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def train(model, tokenizer, records: list[dict], cfg: TrainConfig, progress: bool = True,
          checkpoint_dir=None, fingerprint: str = "", on_checkpoint=None) -> dict:
    """Train the model's trainable parameters in place; return metrics (loss per step, time, tokens/s).

    With `checkpoint_dir`, state is saved every `cfg.checkpoint_every` steps and a run with the same
    `fingerprint` resumes from the last checkpoint. `on_checkpoint(step)` is called after each save."""
    if not records:
        raise TrainingError("training set is empty")
    if cfg.batch_size % cfg.micro_batch_size:
        raise TrainingError(f"batch_size {cfg.batch_size} is not a multiple of micro_batch_size {cfg.micro_batch_size}")
    torch.manual_seed(cfg.seed)
    examples, held_out = split_validation(
        [tokenize(tokenizer, r, cfg.cutoff_len, cfg.train_on_inputs) for r in records], cfg.val_set_size, cfg.seed)
    accum = cfg.batch_size // cfg.micro_batch_size
    lengths = [len(e["input_ids"]) for e in examples]
    steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    total = cfg.max_steps or max(1, math.ceil(steps_per_epoch * cfg.epochs))
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TrainingError("the model has no trainable parameters")
    rank, procs = distributed.world()
    if accum < procs:
        raise TrainingError(f"batch_size / micro_batch_size = {accum} micro-batches per step cannot feed "
                            f"{procs} data-parallel processes; raise batch_size or lower micro_batch_size")
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, cfg.warmup_steps, total, cfg.lr_scheduler))
    generator = torch.Generator().manual_seed(cfg.seed)
    device = next(model.parameters()).device
    attention = set_attention(model, cfg.attention, device)
    order: list[int] = []
    losses, tokens_seen, first_step = [], 0, 0
    # validation history, and the trainable weights at the best validation loss (upstream: load_best_model_at_end)
    validation = {"steps": [], "loss": [], "best_step": None, "best": None}
    state = checkpoints.load(checkpoint_dir, fingerprint)
    if state is not None:
        _restore(state, model, optimizer, scheduler, generator)
        order, losses, tokens_seen, first_step = state["order"], state["losses"], state["tokens"], state["step"]
        validation = state["validation"]
    model.train()
    start = time.perf_counter()
    for step in tqdm(range(first_step, total), desc="fine-tune", unit="step", disable=not progress or rank > 0,
                     initial=first_step, total=total):
        micro, step_loss, step_tokens = [], 0.0, 0
        for _ in range(accum):
            if not order:
                order = epoch_order(lengths, generator, cfg.group_by_length, GROUP_CHUNK_STEPS * cfg.batch_size)
            chosen = [examples[order.pop()] for _ in range(min(cfg.micro_batch_size, len(order)))]
            micro.append(collate_packed(chosen) if cfg.packing else collate(chosen, tokenizer.pad_token_id))
        n_labels = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro)
        for batch in distributed.share(micro, rank, procs):
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.autocast_bf16):
                loss_sum, _ = token_loss_sum(model, batch)
            (loss_sum / max(n_labels, 1)).backward()
            step_loss += loss_sum.item()
            step_tokens += int(batch["input_ids"].numel() if cfg.packing else batch["attention_mask"].sum())
        step_loss, step_tokens = distributed.sum_gradients(params, step_loss, step_tokens)
        step_tokens = int(step_tokens)
        loss = step_loss / max(n_labels, 1)
        if not math.isfinite(loss):
            raise TrainingError(f"loss is {loss} at step {step + 1}; stopping (nothing is saved)")
        optimizer.step()
        scheduler.step()
        if hasattr(getattr(model, "base_model", None), "update_and_allocate"):
            model.base_model.update_and_allocate(step)  # AdaLoRA's rank budget, between step and zero_grad
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss, 6))
        tokens_seen += step_tokens
        if held_out and ((cfg.eval_every and (step + 1) % cfg.eval_every == 0) or step + 1 == total):
            val = validation_loss(model, held_out, cfg, tokenizer.pad_token_id)
            validation["steps"].append(step + 1)
            validation["loss"].append(round(val, 6))
            if validation["best"] is None or val < min(validation["loss"][:-1], default=float("inf")):
                validation["best_step"] = step + 1
                validation["best"] = _trainable_state(model)
        if checkpoint_dir and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < total:
            if rank == 0:  # every process holds the same state after the summed step
                checkpoints.save(checkpoint_dir, _capture(model, optimizer, scheduler, generator, order, losses,
                                                          tokens_seen, step + 1, fingerprint, validation))
            distributed.barrier()
            if on_checkpoint:
                on_checkpoint(step + 1)
    wall = time.perf_counter() - start
    if validation["best"] is not None:
        _load_trainable(model, validation["best"])
    model.eval()
    trained_tokens = tokens_seen - (state["tokens"] if state else 0)
    return {
        "steps": total, "examples": len(examples), "loss": losses, "tokens": tokens_seen,
        "resumed_from_step": first_step, "wall_time_s": round(wall, 2), "attention": attention,
        "validation": {k: validation[k] for k in ("steps", "loss", "best_step")} if held_out else None,
        "tokens_per_s": round(trained_tokens / wall, 1) if wall > 0 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None,
    }
