"""The merging rule: the same evaluation items generated with a fine-tuned adapter unmerged and merged: the
throughput of each, and how many greedy outputs agree (config `costs.merging`)."""
import argparse
import json

from pipeline_lib.evaluation.jobs import merging
from pipeline_lib.planning.commands import add_model_args, start_job

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out", help="the record (JSON)")
parser.add_argument("--adapter-dir", required=True)
parser.add_argument("--data", required=True, help="a prepared evaluation set; its first --items items are used")
parser.add_argument("--items", type=int, required=True)
parser.add_argument("--labels", type=json.loads, required=True, help="JSON: model, adapter, train_set, run, seed")
parser.add_argument("--evaluation", type=json.loads, required=True, help="the generate protocol's settings (JSON)")
add_model_args(parser)
args = parser.parse_args()
start_job(args.threads, args.quantization, args.model)
record = merging(args.model, args.adapter_dir, args.data, args.items, args.out, args.labels, args.evaluation,
                 args.device, args.quantization, args.trust_remote_code)
print(json.dumps({k: record.get(k) for k in ("mergeable", "speedup", "agreement")}))
