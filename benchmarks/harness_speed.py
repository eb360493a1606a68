"""The log-likelihood protocols against our generation on the commonsense sets: same model, same items, same
machine, one run. For each set, the first --items items under `generate` (batched greedy with KV cache, the answer
label extracted), `harness` (lm-eval: log-likelihood of each option's text) and `harness_labels` (lm-eval: of each
label word after the paper's prompt). Prints items/s and accuracy per protocol and set, and the ratios.

  .venv/bin/python benchmarks/harness_speed.py --model resources/models/smollm2-135m --mirror ../shared/data \\
      --items 50
"""
import argparse
import time
from pathlib import Path

import torch

from pipeline_lib import models
from pipeline_lib.catalog import protocols
from pipeline_lib.catalog.datasets import DATASETS
from pipeline_lib.catalog.prompts import ALPACA
from pipeline_lib.data.loaders import LOADERS
from pipeline_lib.evaluation import loglikelihood
from pipeline_lib.evaluation.generate import evaluate

SETS = ["boolq", "piqa", "social_i_qa", "winogrande", "ARC-Easy", "ARC-Challenge", "openbookqa"]
PROTOCOLS = ["generate", "harness", "harness_labels"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--mirror", required=True, help="a local copy of the upstream files (../shared/data)")
    parser.add_argument("--items", type=int, default=50, help="items per set")
    parser.add_argument("--batch-size", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = models.load(args.model)
    model.eval()
    evaluation = {"batch_size": args.batch_size, "max_new_tokens": None, "dtype": "float32"}
    totals = {p: [0, 0.0, 0] for p in PROTOCOLS}  # items, seconds, correct
    print(f"model {args.model}; float32; torch threads {args.threads}; {args.items} items per set")
    print("| set | " + " | ".join(f"{p} items/s (acc %)" for p in PROTOCOLS) + " |")
    print("| --- |" + " --- |" * len(PROTOCOLS))
    for name in SETS:
        spec = DATASETS[name]
        records = LOADERS[spec.loader](Path(args.mirror) / spec.source.relpath, spec)[:args.items]
        cells = []
        for protocol in PROTOCOLS:
            settings = protocols.settings(protocol, evaluation, "commonsense", ALPACA)
            start = time.perf_counter()
            if settings["scorer"] == "generate":
                _, summary = evaluate(model, tokenizer, records, settings, progress=False)
            else:
                _, summary = loglikelihood.evaluate(model, tokenizer, records, settings, name)
            wall = time.perf_counter() - start
            totals[protocol][0] += len(records)
            totals[protocol][1] += wall
            totals[protocol][2] += summary["correct"]
            cells.append(f"{len(records) / wall:.2f} ({100 * summary['accuracy']:.0f})")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    rates = {p: n / s for p, (n, s, _) in totals.items()}
    print("| all | " + " | ".join(f"{rates[p]:.2f} ({100 * totals[p][2] / totals[p][0]:.1f})" for p in PROTOCOLS)
          + " |")
    print(f"harness / generate items/s: {rates['harness'] / rates['generate']:.2f}x; "
          f"harness_labels / generate: {rates['harness_labels'] / rates['generate']:.2f}x")


if __name__ == "__main__":
    main()
