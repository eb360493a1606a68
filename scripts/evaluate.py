"""Evaluate a base model, with or without an adapter, on one prepared evaluation set."""
import argparse
import hashlib
import json
from pathlib import Path

import _common
from pipeline_lib import adapters, models
from pipeline_lib.evaluation import evaluate
from pipeline_lib.files import read_jsonl, sha256_file, write_json, write_jsonl

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--adapter-dir", default="", help="adapter directory; empty for the base model")
parser.add_argument("--data", required=True)
parser.add_argument("--predictions", required=True)
parser.add_argument("--score", required=True)
parser.add_argument("--labels", required=True, help="JSON: model, adapter, train_set, dataset")
parser.add_argument("--evaluation", required=True, help="evaluation config as JSON")
_common.add_model_args(parser)
args = parser.parse_args()
_common.set_threads(args.threads)

import torch  # noqa: E402

cfg = json.loads(args.evaluation)
model, tokenizer = models.load(args.model, device=args.device, trust_remote_code=args.trust_remote_code,
                               quantization=args.quantization)
quantized = args.quantization != "none"
if args.adapter_dir:
    model = adapters.load(model, args.adapter_dir)
    if not quantized:  # merging into quantized weights would round the adapter away
        model = adapters.merge_for_inference(model)
if not quantized:
    model = model.to(getattr(torch, cfg["dtype"]))
model.eval()
# a partial file from an interrupted run is reused only if every input is the same
inputs = [args.data] + sorted(str(p) for p in Path(args.adapter_dir).glob("adapter_model*")) if args.adapter_dir \
    else [args.data]
fingerprint = hashlib.sha256(json.dumps([cfg, args.model, [sha256_file(p) for p in inputs]]).encode()).hexdigest()
partial = Path(args.predictions + ".partial")
predictions, summary = evaluate(model, tokenizer, read_jsonl(args.data), cfg, partial=partial, fingerprint=fingerprint)
write_jsonl(args.predictions, predictions)
write_json(args.score, {**json.loads(args.labels), **summary, "evaluation": cfg})
partial.unlink()
print(json.dumps(summary))
