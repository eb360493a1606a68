"""Did the precision verdict pick the faster precision for the real work? In one process: the verdicts `auto` reaches
for training and for evaluation (pipeline_lib/models/precision.py, measured afresh), then the real steps in both
precisions, as the jobs run them (allocator kept, LoRA's sampled dropout):

  training     one LoRA micro-batch of the embedded model (4 x 256 tokens, r=32 on q,k,v,up,down, dropout 0.05, eager
               attention) in float32 and under bf16 autocast (frozen weights stored in bf16), median of 5
  generation   30 gsm8k prompts x up to 128 new tokens, greedy, as the evaluation runs them (float32 with its static
               KV cache, bf16 with the default one), new tokens/s

and for each, whether the verdict chose the precision that ran faster.

  .venv/bin/python benchmarks/cpu_precision.py --model resources/models/smollm2-135m
  ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=tests/emulate_avx2 \\
      .venv/bin/python benchmarks/cpu_precision.py --model resources/models/smollm2-135m --skip-bf16
"""
import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from bench import LORA

from pipeline_lib import adapters, models
from pipeline_lib.catalog import dtypes
from pipeline_lib.catalog.prompts import evaluation_prompt
from pipeline_lib.evaluation.decoding import generate
from pipeline_lib.models import precision
from pipeline_lib.runtime import allocator
from pipeline_lib.training.loop import cast_frozen_linears, token_loss_sum


def micro_batch_seconds(model, bf16: bool, reps: int = 5) -> float:
    ids = torch.randint(100, 40000, (4, 256), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, n = token_loss_sum(model, batch)
        (loss / n).backward()
        model.zero_grad(set_to_none=True)
    step()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training(model_dir: str, precisions: list[str]) -> dict[str, float]:
    seconds = {}
    for dtype in precisions:
        model, _ = models.load(model_dir)
        model.set_attn_implementation("eager")
        torch.manual_seed(0)
        model = adapters.attach(model, dict(LORA, lora_dropout=0.05)).train()
        if dtype == "bfloat16":
            cast_frozen_linears(model)
        seconds[dtype] = micro_batch_seconds(model, dtype == "bfloat16")
        print(f"training {dtype}: {seconds[dtype]:.2f} s per micro-batch of 1024 tokens "
              f"({1024 / seconds[dtype]:.0f} tokens/s)")
    return seconds


def generation(model_dir: str, precisions: list[str], data: Path) -> dict[str, float]:
    prompts = [evaluation_prompt(r["instruction"]) for r in json.loads(data.read_text())[:30]]
    rates, responses = {}, {}
    for dtype in precisions:
        model, tok = models.load(model_dir)
        model = model.to(getattr(torch, dtype)).eval()
        counts = {}
        start = time.perf_counter()
        responses[dtype] = generate(model, tok, prompts, batch_size=30, max_new_tokens=128,
                                    stop_strings=["### Instruction:"], counts=counts)
        seconds = time.perf_counter() - start
        rates[dtype] = counts["new_tokens"] / seconds
        print(f"generation {dtype}: {seconds:.1f} s, {counts['new_tokens']} new tokens, {rates[dtype]:.0f} new "
              f"tokens/s")
    if len(responses) == 2:
        same = sum(a == b for a, b in zip(*responses.values()))
        print(f"generation: {same}/30 responses identical in both precisions")
    return rates


def faster(measured: dict[str, float], lower_is_faster: bool) -> str:
    pick = min if lower_is_faster else max
    return pick(measured, key=measured.get)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/LLM-Adapters/dataset/gsm8k/test.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-bf16", action="store_true", help="bf16 on a CPU without it takes minutes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    allocator.keep_freed_memory()
    os.environ[precision.REPROBE_VARIABLE] = "1"
    verdicts = {kind: precision.resolve("auto", "cpu", precision.model_workload(kind, tokens, args.model))
                for kind, tokens in (("train", 1024), ("inference", 30))}
    for kind, (_, record) in verdicts.items():
        print(f"verdict {kind}: {dtypes.describe(record)} [{record.get('seconds', 0):.1f} s to measure]")
    precisions = ["float32"] + ([] if args.skip_bf16 else ["bfloat16"])
    steps = training(args.model, precisions)
    rates = generation(args.model, precisions, args.data)
    if len(precisions) == 2:
        for kind, measured, lower in (("train", steps, True), ("inference", rates, False)):
            best, chosen = faster(measured, lower), verdicts[kind][0]
            f32, bf16 = measured["float32"], measured["bfloat16"]
            ratio = f32 / bf16 if lower else bf16 / f32
            print(f"{kind}: bf16 {ratio:.2f}x float32's speed on the real work; faster: {best}; verdict: {chosen}; "
                  f"the verdict picked the faster: {'yes' if best == chosen else 'NO'}")


if __name__ == "__main__":
    main()
