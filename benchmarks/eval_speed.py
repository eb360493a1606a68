"""Evaluation speed: upstream LLM-Adapters protocol vs ours, same model, same machine, one run.

Upstream (evaluate.py): the pipeline's `paper` protocol (one prompt at a time, 4-beam search, its sampling arguments,
its response split and answer rule) without the KV cache, as upstream ran it, up to --upstream-tokens new tokens (256
upstream), timed on the first --items items (it is slow). Ours: the
pipeline's evaluation (batched greedy, KV cache, left padding, stop strings), up to --tokens new tokens, on
the first --our-items items (which include upstream's: batching is the point). Prints items/s of each, the
ratio, and both accuracies on the items both ran.

  .venv/bin/python benchmarks/eval_speed.py --model resources/models/smollm2-135m \
      --data results/data/eval/gsm8k.jsonl --items 2 --our-items 64 --upstream-tokens 256 --tokens 256
"""
import argparse
import time

import torch

from pipeline_lib import models
from pipeline_lib.catalog import answers, protocols
from pipeline_lib.catalog.prompts import ALPACA
from pipeline_lib.evaluation.generate import evaluate
from pipeline_lib.runtime.files import read_jsonl


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--items", type=int, default=2, help="items timed under the upstream protocol")
    parser.add_argument("--our-items", type=int, default=64, help="items timed under ours (a superset)")
    parser.add_argument("--upstream-tokens", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = models.load(args.model)
    model.eval()
    records = read_jsonl(args.data)
    shared, ours_only = records[:args.items], records[:max(args.our_items, args.items)]

    # upstream's protocol: the pipeline's `paper` settings, generated without the KV cache as upstream did
    paper = protocols.settings("paper", {"batch_size": 1, "max_new_tokens": None, "dtype": "float32"}, "math", ALPACA)
    paper = {**paper, "max_new_tokens": args.upstream_tokens,
             "generation": {**paper["generation"], **protocols.UPSTREAM_UNCACHED}}
    start = time.perf_counter()
    up_predictions, _ = evaluate(model, tokenizer, shared, paper, progress=False)
    up_rate = len(shared) / (time.perf_counter() - start)
    up_correct = sum(p["rules"][answers.get_type(shared[0]["answer_type"]).paper] for p in up_predictions)
    start = time.perf_counter()
    ours = protocols.settings("generate", {"batch_size": "auto", "max_new_tokens": args.tokens, "dtype": "float32"},
                              "math", ALPACA)
    predictions, summary = evaluate(model, tokenizer, ours_only, ours, progress=False)
    our_rate = len(ours_only) / (time.perf_counter() - start)
    our_shared = sum(p["correct"] for p in predictions[:len(shared)])

    print(f"{args.data}; model {args.model}; torch threads {args.threads}; float32 both")
    print(f"upstream protocol (batch 1, 4 beams, no KV cache, {args.upstream_tokens} new tokens) on {len(shared)} "
          f"items: {up_rate:.4f} items/s ({1 / up_rate:.1f} s/item), accuracy {up_correct}/{len(shared)}")
    print(f"ours (batched greedy, KV cache, {args.tokens} new tokens) on {len(ours_only)} items: {our_rate:.4f} "
          f"items/s ({1 / our_rate:.2f} s/item), accuracy {our_shared}/{len(shared)} on upstream's items, "
          f"{summary['correct']}/{summary['n']} on all")
    print(f"speed-up (items/s): {our_rate / up_rate:.1f}x")


if __name__ == "__main__":
    main()
