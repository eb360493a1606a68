"""The evaluate rule: a base model, with or without an adapter, on every (protocol, evaluation set) of its row."""
import argparse
import json

from pipeline_lib.evaluation.jobs import evaluate
from pipeline_lib.planning.commands import add_model_args, start_job

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--adapter-dir", default="", help="adapter directory; empty for the base model")
parser.add_argument("--sets", type=json.loads, nargs="+", required=True,
                    help="JSON per set: protocol, dataset, data, predictions, score (the files)")
parser.add_argument("--settings", type=json.loads, nargs="+", required=True,
                    help="JSON per set, in the order of --sets: its evaluation's settings "
                         "(pipeline_lib.catalog.protocols.settings)")
parser.add_argument("--labels", type=json.loads, required=True, help="JSON: model, adapter, train_set")
add_model_args(parser)
args = parser.parse_args()
if len(args.sets) != len(args.settings):
    parser.error(f"--sets has {len(args.sets)} entries, --settings {len(args.settings)}: one settings per set")
start_job(args.threads, args.quantization, args.model)
scores = evaluate(args.model, args.adapter_dir or None, args.sets, args.settings, args.labels, args.device,
                  args.quantization, args.trust_remote_code)
for score in scores:
    print(json.dumps({k: v for k, v in score.items() if k not in ("evaluation", "fingerprint")}))
