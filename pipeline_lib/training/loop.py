"""The fine-tuning loop, trained as upstream's transformers.Trainer trains (tests/training/test_trainer_equivalence.py
checks it step by step): upstream's tokenization, AdamW, transformers' warmup + linear (or cosine) schedule,
gradient accumulation with the paper's batch_size / micro_batch_size semantics, a token-weighted loss over the
whole step, gradient-norm clipping at Trainer's default 1.0; bf16 autocast where the device runs it fast (or as
set), optional gradient checkpointing;
checkpoints every N steps from which a killed run resumes to the same final weights as an uninterrupted one."""
from __future__ import annotations

import contextlib
import math
import resource
import sys
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from tqdm import tqdm

from pipeline_lib.catalog import dtypes
from pipeline_lib.catalog.prompts import ALPACA, training_prompt, training_text
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.models import precision
from pipeline_lib.training import checkpoints, distributed

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


def tokenize(tokenizer, record: dict, cutoff_len: int, train_on_inputs: bool, prompt: str = ALPACA) -> dict:
    """Upstream's `generate_and_tokenize_prompt`: truncate, append EOS when there is room, mask the prompt
    from the loss unless train_on_inputs. `prompt`: the run's template (prompts.py)."""
    ids = tokenizer(training_text(record, prompt), truncation=True, max_length=cutoff_len)["input_ids"]
    if ids[-1] != tokenizer.eos_token_id and len(ids) < cutoff_len:
        ids = ids + [tokenizer.eos_token_id]
    labels = list(ids)
    if not train_on_inputs:
        prompt_len = len(tokenizer(training_prompt(record["instruction"], record.get("input", ""), prompt),
                                   truncation=True, max_length=cutoff_len)["input_ids"])
        labels[:prompt_len] = [-100] * prompt_len
    return {"input_ids": ids, "labels": labels}


def collate(examples: list[dict], pad_id: int, side: str = "right") -> dict:
    """Pad a micro-batch to its longest example (`right`, ours), or as upstream's collator did (`left`: its
    finetune.py sets the tokenizer's padding side to left, and DataCollatorForSeq2Seq pads to a multiple of 8).
    Under left padding each padded example's first token becomes a target, predicted from a padding position,
    and counts in the loss; under right padding it never does."""
    width = max(len(e["input_ids"]) for e in examples)
    if side == "left":
        width = -(-width // 8) * 8

    def pad(seq, value):
        fill = [value] * (width - len(seq))
        return fill + seq if side == "left" else seq + fill
    return {
        "input_ids": torch.tensor([pad(e["input_ids"], pad_id) for e in examples]),
        "attention_mask": torch.tensor([pad([1] * len(e["input_ids"]), 0) for e in examples]),
        "labels": torch.tensor([pad(e["labels"], -100) for e in examples]),
    }


def collate_packed(examples: list[dict]) -> dict:
    """The examples concatenated into one row, no padding: positions restart and attention stays inside each
    example (a 4D block-diagonal causal mask: measured with transformers 5.24's LLaMA, position ids alone leave
    the second sequence's logits off by up to 0.5)."""
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
    # additive float: eager attention ignores a boolean 4D mask, sdpa takes either (measured, same versions)
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


def autocast(cfg: TrainConfig, device: torch.device):
    """The forward's autocast context: bf16 when `cfg.autocast` (resolved by `train`) is bfloat16."""
    if cfg.autocast == dtypes.AUTO:
        raise ValueError("training.autocast 'auto' must be resolved before the forward pass (train() does)")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.autocast == "bfloat16")


@torch.no_grad()
def held_out_loss(model, examples: list[dict], batch_size: int, pad_id: int, padding_side: str = "right",
                  precision=contextlib.nullcontext) -> tuple[float, int, list[float]]:
    """The training loss on held-out examples as the fine-tune computes it (token-weighted cross-entropy over the
    labelled tokens), in eval mode (no dropout): (summed loss, tokens, each batch's mean). The one held-out loss
    loop: training's validation (batches of a micro-batch) and tuning's validation metric (evaluation/loss.py, one
    item per batch) both run it."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count, means = 0.0, 0, []
    for i in range(0, len(examples), batch_size):
        chunk = collate(examples[i:i + batch_size], pad_id, padding_side)
        batch = {k: v.to(device) for k, v in chunk.items()}
        with precision():
            loss_sum, n = token_loss_sum(model, batch)
        total, count = total + loss_sum.item(), count + n
        means.append(loss_sum.item() / max(n, 1))
    model.train(was_training)
    return total, count, means


def validation_loss(model, examples: list[dict], cfg: TrainConfig, pad_id: int) -> float:
    """Token-weighted loss over the held-out examples (training's `val_set_size`)."""
    device = next(model.parameters()).device
    total, count, _ = held_out_loss(model, examples, cfg.micro_batch_size, pad_id, cfg.padding_side,
                                    lambda: autocast(cfg, device))
    return total / max(count, 1)


def split_validation(examples: list[dict], size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(training, validation) examples: a seeded held-out set of `size`, as upstream's train_test_split."""
    if size <= 0:
        return examples, []
    if size >= len(examples):
        raise TrainingError(f"val_set_size {size} leaves no training examples (the set has {len(examples)})")
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed + 1)).tolist()
    return [examples[i] for i in sorted(order[size:])], [examples[i] for i in sorted(order[:size])]


def initialisation_batches(tokenizer, records: list[dict], cfg, device):
    """Micro-batches of the run's training examples in file order (its held-out validation part left out),
    tokenized as it trains on them, on `device`: what a data-driven adapter initialisation (EVA, CorDA) reads.
    Tokenized lazily, as such an initialisation reads only its first few batches."""
    held_out = set()
    if cfg.val_set_size > 0:
        indices = [{"i": i} for i in range(len(records))]
        held_out = {e["i"] for e in split_validation(indices, cfg.val_set_size, cfg.seed)[1]}
    chosen = (r for i, r in enumerate(records) if i not in held_out)
    while chunk := [tokenize(tokenizer, r, cfg.cutoff_len, cfg.train_on_inputs, cfg.prompt)
                    for _, r in zip(range(cfg.micro_batch_size), chosen)]:
        yield {k: v.to(device) for k, v in collate(chunk, tokenizer.pad_token_id, "right").items()}


def epoch_order(lengths: list[int], generator: torch.Generator, group_by_length: bool, chunk: int,
                shuffle: bool = True) -> list[int]:
    """A seeded permutation of the examples (or, without `shuffle`, the file's order), consumed from the end.
    With `group_by_length`, each run of `chunk` consecutive examples is sorted by length, so the micro-batches
    cut from it need little padding while which examples share a step stays random (as transformers'
    LengthGroupedSampler, with megabatches)."""
    order = torch.randperm(len(lengths), generator=generator).tolist() if shuffle else \
        list(reversed(range(len(lengths))))
    if not group_by_length:
        return order
    return [i for start in range(0, len(order), chunk)
            for i in sorted(order[start:start + chunk], key=lambda j: lengths[j])]


def make_scheduler(optimizer, cfg: TrainConfig, total_steps: int):
    """transformers' own schedule (what upstream's Trainer used): linear warmup from 0 over `warmup_steps`, then
    linear (upstream) or cosine decay to 0 at the last step."""
    from transformers import get_scheduler

    return get_scheduler(cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.warmup_steps,
                         num_training_steps=total_steps)


def token_loss_sum(model, batch: dict) -> tuple[torch.Tensor, int]:
    """Sum of next-token cross-entropies over labelled tokens, and their count."""
    # position t predicts token t + 1, the last position nothing: the labels are shifted, not the logits, whose
    # slice would be copied (batch x length x vocabulary floats) on the way in and again for the gradient
    targets = torch.nn.functional.pad(batch["labels"][:, 1:], (0, 1), value=-100)
    # prompt-learning adapters prepend virtual tokens to the logits: keep the input's positions only
    extra = {"position_ids": batch["position_ids"]} if "position_ids" in batch else {}
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra).logits
    logits = logits[:, -batch["input_ids"].shape[1]:]
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100,
                                             reduction="sum")
    return loss, int((targets != -100).sum())


@dataclass
class TrainState:
    """Where a fine-tune stands: everything a resumed run needs besides weights, optimizer, scheduler and RNGs."""
    step: int = 0
    order: list[int] = field(default_factory=list)  # the rest of the epoch's example order, consumed from the end
    loss: list[float] = field(default_factory=list)           # per optimizer step
    learning_rate: list[float] = field(default_factory=list)  # the rate each step used
    grad_norm: list[float] = field(default_factory=list)      # before clipping, as Trainer logs it
    tokens: int = 0                 # real (non-padding) tokens trained on
    wall_time_s: float = 0.0        # of the segments before this process's
    segments: int = 0               # processes that trained (1 + resumptions)
    validation: dict = field(default_factory=lambda: {"steps": [], "loss": [], "best_step": None})
    best: dict | None = None        # trainable weights at the best validation loss (upstream: load_best_model_at_end)


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def _load_trainable(model, state: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.copy_(state[name])


def _save_checkpoint(directory, fingerprint, state: TrainState, model, optimizer, scheduler, generator,
                     rank_rng: list) -> None:
    checkpoints.save(directory, {
        "fingerprint": fingerprint, **asdict(state), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "generator": generator.get_state(), "rank_rng": rank_rng,
        "params": _trainable_state(model), "allocator": _allocator_state(model)})


def _rng_state() -> dict:
    """This process's random state (dropout draws from it; under torchrun each rank's differs)."""
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _checkpoint(saving: tuple, state: TrainState, start: float, rank: int) -> None:
    """Save the state after `state.step`: the trainable weights, optimizer and schedule are the same on every
    process after the summed step (rank 0 writes them); the random state is each rank's own."""
    directory, fingerprint, model, optimizer, scheduler, generator = saving
    rank_rng = distributed.gather(_rng_state())
    if rank == 0:
        _save_checkpoint(directory, fingerprint,
                         TrainState(**{**asdict(state), "wall_time_s": state.wall_time_s + time.perf_counter() - start,
                                       "segments": state.segments + 1}),
                         model, optimizer, scheduler, generator, rank_rng)
    distributed.barrier()


def _resume(saved: dict, model, optimizer, scheduler, generator) -> TrainState:
    _load_trainable(model, saved["params"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    generator.set_state(saved["generator"])
    rank, size = distributed.world()
    if len(saved["rank_rng"]) != size:
        print(f"warning: the checkpoint was written by {len(saved['rank_rng'])} process(es) and is resumed by {size}: "
              f"dropout draws from here on differ from an uninterrupted run's", file=sys.stderr)
    rng = saved["rank_rng"][rank % len(saved["rank_rng"])]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    _restore_allocator(model, saved["allocator"])
    return TrainState(**{k: saved[k] for k in TrainState.__dataclass_fields__})


def _allocator_state(model) -> dict | None:
    """AdaLoRA's rank allocator: its importance averages and the rank pattern it has masked to so far (None for
    every other method): a resumed run allocates the budget as an uninterrupted one does."""
    base = getattr(model, "base_model", None)
    allocator = getattr(base, "rankallocator", None)
    if allocator is None:
        return None
    return {"ipt": allocator.ipt, "exp_avg_ipt": allocator.exp_avg_ipt, "exp_avg_unc": allocator.exp_avg_unc,
            "rank_pattern": base.peft_config[base.trainable_adapter_name].rank_pattern}


def _restore_allocator(model, saved: dict | None) -> None:
    if saved is None:
        return
    base = model.base_model
    allocator = base.rankallocator
    for name in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
        setattr(allocator, name, saved[name])
    base.peft_config[base.trainable_adapter_name].rank_pattern = saved["rank_pattern"]


def _step_batches(state: TrainState, examples, lengths, generator, cfg: TrainConfig, pad_id: int) -> list[dict]:
    """The micro-batches of the next optimizer step (a new epoch's order drawn when the last one runs out)."""
    micro = []
    for _ in range(cfg.batch_size // cfg.micro_batch_size):
        if not state.order:
            state.order = epoch_order(lengths, generator, cfg.group_by_length, GROUP_CHUNK_STEPS * cfg.batch_size,
                                      cfg.shuffle)
        chosen = [examples[state.order.pop()] for _ in range(min(cfg.micro_batch_size, len(state.order)))]
        micro.append(collate_packed(chosen) if cfg.packing else collate(chosen, pad_id, cfg.padding_side))
    return micro


def _forward_backward(model, micro: list[dict], cfg: TrainConfig, params) -> tuple[float, int]:
    """Accumulate the gradient of the step's token-weighted mean loss over this process's share of the
    micro-batches, summed over processes; return (mean loss, real tokens)."""
    rank, procs = distributed.world()
    device = next(model.parameters()).device
    n_labels = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro)
    loss_total, tokens = 0.0, 0
    for batch in distributed.share(micro, rank, procs):
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(cfg, device):
            loss_sum, _ = token_loss_sum(model, batch)
        (loss_sum / max(n_labels, 1)).backward()
        loss_total += loss_sum.item()
        tokens += int(batch["input_ids"].numel() if cfg.packing else batch["attention_mask"].sum())
    loss_total, tokens = distributed.sum_gradients(params, loss_total, tokens)
    return loss_total / max(n_labels, 1), int(tokens)


def truncation(examples: list[dict], cfg: TrainConfig) -> dict:
    """How many examples reached cutoff_len (their text cut: the answer's end, or its EOS, lost) and how many kept
    no label at all (every target masked: they train nothing); past `max_truncated` of the set, the fine-tune
    stops, naming the counts and the settings to change."""
    reached = [len(e["input_ids"]) >= cfg.cutoff_len for e in examples]
    unlabelled = [all(t == -100 for t in e["labels"]) for e in examples]
    cut, empty = sum(reached), sum(unlabelled)
    found = {"examples": len(examples), "cut_at_cutoff": cut, "no_label": empty}
    if examples and sum(a or b for a, b in zip(reached, unlabelled)) / len(examples) > cfg.max_truncated:
        raise TrainingError(f"{cut} of {len(examples)} training examples reach cutoff_len {cfg.cutoff_len} (their "
                            f"answers cut) and {empty} keep no label at all: more than max_truncated "
                            f"{cfg.max_truncated:g} of the set. Raise training.cutoff_len, or training.max_truncated "
                            f"to train on them as they are")
    return found


def _check(records: list[dict], cfg: TrainConfig) -> None:
    if not records:
        raise TrainingError("training set is empty")
    if cfg.batch_size % cfg.micro_batch_size:
        raise TrainingError(f"batch_size {cfg.batch_size} is not a multiple of micro_batch_size {cfg.micro_batch_size}")
    accum, procs = cfg.batch_size // cfg.micro_batch_size, distributed.world()[1]
    if accum < procs:
        raise TrainingError(f"batch_size / micro_batch_size = {accum} micro-batches per step cannot feed "
                            f"{procs} data-parallel processes; raise batch_size or lower micro_batch_size")


def train(model, tokenizer, records: list[dict], cfg: TrainConfig, progress: bool = True,
          checkpoint_dir=None, fingerprint: str = "", on_checkpoint=None) -> dict:
    """Train the model's trainable parameters in place; return metrics (loss, learning rate and gradient norm
    per step, time, tokens/s, memory). With `checkpoint_dir`, state is saved every `cfg.checkpoint_every` steps
    and a run with the same `fingerprint` resumes from the last checkpoint; `on_checkpoint(step)` is called
    after each save."""
    _check(records, cfg)
    work = precision.workload("train", cfg.micro_batch_size * cfg.cutoff_len, model.config.to_dict())
    # the job resolved `auto` before loading the model (it decides how the frozen weights are stored); a direct
    # caller's `auto` is resolved here, by the same rule
    autocast, precision_record = precision.training_autocast(cfg.autocast, next(model.parameters()).device, work)
    cfg = replace(cfg, autocast=autocast)
    # each data-parallel rank draws its own dropout masks (rank 0 a single process's); otherwise every rank would
    # draw the same masks, on CPU, where a dropout call takes one seed from the generator whatever its size
    torch.manual_seed(cfg.seed + distributed.world()[0])
    tokenized = [tokenize(tokenizer, r, cfg.cutoff_len, cfg.train_on_inputs, cfg.prompt) for r in records]
    cut = truncation(tokenized, cfg)
    examples, held_out = split_validation(tokenized, cfg.val_set_size, cfg.seed)
    lengths = [len(e["input_ids"]) for e in examples]
    total = cfg.max_steps or max(1, math.ceil(math.ceil(len(examples) / cfg.batch_size) * cfg.epochs))
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TrainingError("the model has no trainable parameters")
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    from pipeline_lib.adapters import optimizer as adapter_optimizer

    optimizer = adapter_optimizer(model, cfg.learning_rate, cfg.weight_decay)
    scheduler = make_scheduler(optimizer, cfg, total)
    generator = torch.Generator().manual_seed(cfg.seed)
    attention = set_attention(model, cfg.attention, next(model.parameters()).device)
    saved = checkpoints.load(checkpoint_dir, fingerprint)
    state = _resume(saved, model, optimizer, scheduler, generator) if saved else TrainState()
    first_step = state.step
    rank = distributed.world()[0]
    model.train()
    on_cuda = next(model.parameters()).device.type == "cuda"
    reserved = []  # CUDA memory reserved after each optimizer step (as PEFT's benchmark samples it)
    start = time.perf_counter()
    saving = (checkpoint_dir, fingerprint, model, optimizer, scheduler, generator)
    # on SIGTERM (a scheduler's preemption or time limit, sent ahead of the kill: profiles/slurm) the step in
    # flight ends, a checkpoint is saved and the job stops, so its retry resumes there instead of losing up to
    # checkpoint_every steps
    with stop_on_sigterm() as stop:
        for step in tqdm(range(first_step, total), desc="fine-tune", unit="step", disable=not progress or rank > 0,
                         initial=first_step, total=total):
            micro = _step_batches(state, examples, lengths, generator, cfg, tokenizer.pad_token_id)
            loss, tokens = _forward_backward(model, micro, cfg, params)
            if not math.isfinite(loss):
                raise TrainingError(f"loss is {loss} at step {step + 1}; stopping (nothing is saved)")
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm or math.inf)
            state.learning_rate.append(scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
            if hasattr(getattr(model, "base_model", None), "update_and_allocate"):
                model.base_model.update_and_allocate(step)  # AdaLoRA's rank budget, between step and zero_grad
            optimizer.zero_grad(set_to_none=True)
            if on_cuda:
                reserved.append(torch.cuda.memory_reserved())
            state.step, state.tokens = step + 1, state.tokens + tokens
            state.loss.append(round(loss, 6))
            state.grad_norm.append(round(float(grad_norm), 6))
            if held_out and ((cfg.eval_every and state.step % cfg.eval_every == 0) or state.step == total):
                _validate(model, held_out, cfg, tokenizer.pad_token_id, state)
            due = cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0
            if checkpoint_dir and due and state.step < total:
                _checkpoint(saving, state, start, rank)
                if on_checkpoint:
                    on_checkpoint(state.step)
            if distributed.any_flag(stop.is_set()):
                if checkpoint_dir and state.step < total and not due:
                    _checkpoint(saving, state, start, rank)
                raise Preempted(f"SIGTERM at step {state.step} of {total}: " + (
                    "checkpoint saved; the job's retry resumes from it" if checkpoint_dir
                    else "no checkpoint directory, nothing saved"))
    wall = state.wall_time_s + time.perf_counter() - start
    if state.best is not None:
        _load_trainable(model, state.best)
    model.eval()
    return {
        "steps": total, "examples": len(examples), "loss": state.loss, "learning_rate": state.learning_rate,
        "grad_norm": state.grad_norm, "tokens": state.tokens, "resumed_from_step": first_step,
        "segments": state.segments + 1, "attention": attention, "precision": precision_record,
        "validation": state.validation if held_out else None, "truncation": cut,
        # over every segment of a resumed run (the time between a kill and the resumption not counted)
        "wall_time_s": round(wall, 2), "tokens_per_s": round(state.tokens / wall, 1) if wall > 0 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None,
        "cuda_memory": _reserved_summary(reserved),
    }


class Preempted(SystemExit):
    """A fine-tune stopped by SIGTERM after saving a checkpoint (exit status 143, as a process killed by it)."""

    def __init__(self, message: str):
        print(message, file=sys.stderr)
        super().__init__(143)


@contextlib.contextmanager
def stop_on_sigterm():
    """An event set by SIGTERM while training (the handler only records it: the step in flight ends cleanly); the
    previous handler back afterwards. Outside the main thread (no signal handling there) the event never sets."""
    import signal
    import threading

    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def _reserved_summary(reserved: list[int]) -> dict | None:
    """The reserved CUDA memory's average and 99th percentile over the optimizer steps (of this segment, for a
    resumed run); None off CUDA."""
    if not reserved:
        return None
    mb = np.asarray(reserved, dtype=float) / 2 ** 20
    return {"reserved_avg_mb": round(float(mb.mean()), 1), "reserved_p99_mb": round(float(np.percentile(mb, 99)), 1),
            "reserved_max_mb": round(float(mb.max()), 1), "steps_sampled": len(reserved)}


def _validate(model, held_out, cfg: TrainConfig, pad_id: int, state: TrainState) -> None:
    """Record the validation loss; keep the trainable weights when it is the best so far."""
    val = validation_loss(model, held_out, cfg, pad_id)
    history = state.validation
    if not history["loss"] or val < min(history["loss"]):
        history["best_step"] = state.step
        state.best = _trainable_state(model)
    history["steps"].append(state.step)
    history["loss"].append(round(val, 6))
