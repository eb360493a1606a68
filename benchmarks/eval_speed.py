"""Evaluation speed: upstream LLM-Adapters protocol vs ours, same model, same items, same machine, one run.

Upstream (evaluate.py): one prompt at a time, 4-beam search, no KV cache, its sampling arguments, up to
--upstream-tokens new tokens (256 upstream). Ours: the pipeline's evaluation (batched greedy, KV cache, left
padding, stop strings), up to --tokens new tokens. Prints items/s of each, the ratio, and both accuracies.

  .venv/bin/python benchmarks/eval_speed.py --model resources/models/smollm2-135m \
      --data results/data/eval/gsm8k.jsonl --items 4 --upstream-tokens 256 --tokens 256
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from pipeline_lib import answers, models  # noqa: E402
from pipeline_lib.evaluation import PAPER_GENERATION, evaluate  # noqa: E402
from pipeline_lib.files import read_jsonl  # noqa: E402
from pipeline_lib.prompts import alpaca_prompt  # noqa: E402


def upstream(model, tokenizer, records, max_new_tokens):
    correct = 0
    for r in records:
        ids = tokenizer(alpaca_prompt(r["instruction"], r.get("input", "")), return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, **PAPER_GENERATION, do_sample=False, use_cache=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        response = tokenizer.decode(out[0]).split("### Response:")[1].strip()
        correct += answers.score(r["answer_type"], response, r["answer"])[1]
    return correct


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--upstream-tokens", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = models.load(args.model)
    model.eval()
    records = read_jsonl(args.data)[:args.items]

    start = time.perf_counter()
    up_correct = upstream(model, tokenizer, records, args.upstream_tokens)
    up_time = time.perf_counter() - start
    start = time.perf_counter()
    _, ours = evaluate(model, tokenizer, records, {"batch_size": len(records), "max_new_tokens": args.tokens},
                       progress=False)
    our_time = time.perf_counter() - start

    n = len(records)
    print(f"items: {n} from {args.data}; model {args.model}; torch threads {args.threads}")
    print(f"upstream protocol (batch 1, 4 beams, no KV cache, {args.upstream_tokens} new tokens): "
          f"{n / up_time:.4f} items/s ({up_time / n:.1f} s/item), accuracy {up_correct}/{n}")
    print(f"ours (batched greedy, KV cache, {args.tokens} new tokens): {n / our_time:.4f} items/s "
          f"({our_time / n:.2f} s/item), accuracy {ours['correct']}/{n}")
    print(f"speed-up: {up_time / our_time:.1f}x")


if __name__ == "__main__":
    main()
