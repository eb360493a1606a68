"""Measure this CPU's precision verdicts afresh (float32 or bf16 for training and decoding at a model's shapes) and
replace the cached ones (docs/precision.md)."""
import argparse
import json

from pipeline_lib.models.precision import reprobe

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("model_dir", nargs="?", help="a model directory (config.json); default: the default run's")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--train-tokens", type=int, default=1024, help="micro_batch_size x cutoff_len")
parser.add_argument("--decode-batch", type=int, default=30, help="evaluation.batch_size")
args = parser.parse_args()
for record in reprobe(args.model_dir, args.threads, args.train_tokens, args.decode_batch):
    print(json.dumps({k: record.get(k) for k in ("chosen", "workload", "basis", "ratios", "spread", "cached",
                                                 "seconds", "screen")}))
