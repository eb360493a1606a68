"""The finetune rule: train one adapter on one prepared training set; write the adapter and its training metrics."""
import argparse
import json

from pipeline_lib.planning.commands import add_model_args, start_job
from pipeline_lib.training.job import finetune

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--data", required=True, help="prepared training JSONL")
parser.add_argument("--out", required=True, help="adapter directory to create")
parser.add_argument("--adapter", type=json.loads, required=True, help="adapter spec as JSON")
parser.add_argument("--training", type=json.loads, required=True, help="training config as JSON")
parser.add_argument("--labels", type=json.loads, default={}, help="JSON: model, adapter, train_set")
parser.add_argument("--selection", help="tuning: the selection whose chosen setting this fine-tune trains")
parser.add_argument("--allow-failure", action="store_true",
                    help="a tuning trial: record a diverged loss or exhausted memory instead of failing")
add_model_args(parser)
args = parser.parse_args()
start_job(args.threads, args.quantization, args.model)
metrics = finetune(args.model, args.data, args.out, args.adapter, args.training, args.labels, args.device,
                   args.quantization, args.trust_remote_code, selection=args.selection,
                   allow_failure=args.allow_failure)
if metrics and not metrics.get("failed"):
    print(f"final loss {metrics['loss'][-1]:.4f}, {metrics['tokens_per_s']} tokens/s, {metrics['wall_time_s']} s")
