"""Fine-tuning speed: upstream's recipe (HF `Trainer` + peft LoRA, float32, each micro-batch padded to its
longest row, as LLM-Adapters' finetune.py) against our training loop as the pipeline runs it (the precision
`--precision` chooses, `auto` as the pipeline does: bf16 autocast with the frozen Linear weights stored in bf16 where
the CPU runs bf16 natively, else float32; length-grouped micro-batches, eager attention on CPU). Same model, same
LoRA, same examples, same number of optimizer steps, one process. Prints real (non-pad) tokens/s of each, the
ratio, both loss curves, and the achieved FLOP/s against this machine's matmul peak at the precision each used.

  .venv/bin/python benchmarks/train_speed.py --model resources/models/smollm2-135m \\
      --data results/data/train/gsm8k_train.jsonl --steps 8
"""
import argparse
from pathlib import Path

import torch
from bench import LORA, flops_per_token, matmul_peak, trainer_baseline

from pipeline_lib import adapters, models
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.models import precision
from pipeline_lib.runtime import allocator
from pipeline_lib.runtime.files import read_jsonl
from pipeline_lib.training.loop import cast_frozen_linears, tokenize, train


def fresh_lora(model_dir, dropout):
    model, tok = models.load(model_dir)
    torch.manual_seed(0)
    return adapters.attach(model, dict(LORA, lora_dropout=dropout)), tok


def run_trainer(model_dir, records, args) -> dict:
    """The upstream recipe: transformers Trainer, float32, DataCollatorForSeq2Seq padding to a multiple of 8."""
    model, tok = fresh_lora(model_dir, args.lora_dropout)
    data = [tokenize(tok, r, args.cutoff, True) for r in records]  # a list is a map-style dataset
    result = trainer_baseline(model, tok, data, micro=args.micro, batch=args.batch, steps=args.steps,
                              scratch=args.scratch / "trainer")
    return {**result, "flops_per_token": flops_per_token(model)}


def run_ours(model_dir, records, args) -> dict:
    model, tok = fresh_lora(model_dir, args.lora_dropout)
    if args.precision == "bfloat16":
        cast_frozen_linears(model)
    cfg = TrainConfig(max_steps=args.steps, batch_size=args.batch, micro_batch_size=args.micro, warmup_steps=0,
                      cutoff_len=args.cutoff, autocast=args.precision, group_by_length=True, checkpoint_every=None)
    metrics = train(model, tok, records, cfg, progress=False)
    return {"tokens_per_s": metrics["tokens_per_s"], "loss": metrics["loss"],
            "flops_per_token": flops_per_token(model), "attention": metrics["attention"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--micro", type=int, default=4)
    parser.add_argument("--cutoff", type=int, default=256)
    parser.add_argument("--lora-dropout", type=float, default=0.05,
                        help="upstream's 0.05; on this CPU the dropout masks alone cost ~25%% of a step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=["auto", "bfloat16", "float32"], default="auto",
                        help="our loop's autocast; auto resolves as the pipeline does (models/precision.py)")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/train_speed"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    records = read_jsonl(args.data)
    args.precision = precision.training_autocast(args.precision, "cpu")[0]
    peaks = {"float32": matmul_peak("cpu", torch.float32, 2048), "bfloat16": matmul_peak("cpu", torch.bfloat16, 2048)}
    print(f"matmul peaks: float32 {peaks['float32'] / 1e9:.0f} GFLOP/s, bfloat16 {peaks['bfloat16'] / 1e9:.0f} GFLOP/s")
    # upstream's recipe as upstream ran it (glibc's default allocator), then ours as a job runs (freed memory kept)
    trainer = run_trainer(args.model, records, args)
    allocator.keep_freed_memory()
    results = {"Trainer (fp32, padded)": (trainer, "float32"),
               f"ours ({args.precision} autocast, grouped)": (run_ours(args.model, records, args), args.precision)}
    for name, (r, used) in results.items():
        achieved = r["tokens_per_s"] * r["flops_per_token"]
        print(f"{name}: {r['tokens_per_s']:.1f} real tokens/s, {achieved / 1e9:.0f} GFLOP/s = "
              f"{100 * achieved / peaks[used]:.0f}% of the {'bf16' if used == 'bfloat16' else 'fp32'} matmul peak")
        print(f"  loss per step: {' '.join(f'{x:.3f}' for x in r['loss'])}")
    (base, _), (ours, _) = results.values()
    print(f"ours / Trainer tokens/s: {ours['tokens_per_s'] / base['tokens_per_s']:.2f}x; mean loss over the last "
          f"half: Trainer {sum(base['loss'][args.steps // 2:]) / (args.steps - args.steps // 2):.3f}, ours "
          f"{sum(ours['loss'][args.steps // 2:]) / (args.steps - args.steps // 2):.3f}")


if __name__ == "__main__":
    main()
