"""Training throughput: padded micro-batches (pad to the longest row) vs packing (one padding-free row per
micro-batch, block-diagonal attention), same model, same examples, same process. Prints real (non-pad)
tokens/s of each and the ratio.

  .venv/bin/python benchmarks/train_throughput.py --model resources/models/smollm2-135m \\
      --data results/data/train/gsm8k_train.jsonl --steps 6
"""
import argparse

import torch
from bench import LORA

from pipeline_lib import adapters, models
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.runtime.files import read_jsonl
from pipeline_lib.training.loop import train


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    records = read_jsonl(args.data)
    rates = {}
    for packing in (False, True, False, True):  # twice each, interleaved: the first run warms up
        model, tok = models.load(args.model)
        torch.manual_seed(0)
        model = adapters.attach(model, dict(LORA))
        cfg = TrainConfig(max_steps=args.steps, batch_size=8, micro_batch_size=4, warmup_steps=0,
                          autocast="bfloat16" if args.bf16 else "float32", packing=packing, checkpoint_every=None)
        metrics = train(model, tok, records, cfg, progress=False)
        rates.setdefault(packing, []).append(metrics["tokens_per_s"])
        print(f"{'packed' if packing else 'padded'}: {metrics['tokens_per_s']} real tokens/s, "
              f"loss {metrics['loss'][0]:.4f} -> {metrics['loss'][-1]:.4f}")
    padded, packed = rates[False][-1], rates[True][-1]
    print(f"packed / padded throughput (second runs): {packed / padded:.2f}x")


if __name__ == "__main__":
    main()
