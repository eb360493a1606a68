"""The evaluate rule: a base model, with or without an adapter, on one prepared evaluation set under one protocol."""
import argparse
import json

from pipeline_lib.evaluation.jobs import evaluate
from pipeline_lib.planning.commands import add_model_args, set_threads

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--adapter-dir", default="", help="adapter directory; empty for the base model")
parser.add_argument("--data", required=True)
parser.add_argument("--predictions", required=True)
parser.add_argument("--score", required=True)
parser.add_argument("--labels", type=json.loads, required=True, help="JSON: model, adapter, train_set, dataset")
parser.add_argument("--evaluation", type=json.loads, required=True,
                    help="the evaluation's settings as JSON (pipeline_lib.catalog.protocols.settings)")
add_model_args(parser)
args = parser.parse_args()
set_threads(args.threads)
score = evaluate(args.model, args.adapter_dir or None, args.data, args.predictions, args.score, args.labels,
                 args.evaluation, args.device, args.quantization, args.trust_remote_code)
print(json.dumps({k: v for k, v in score.items() if k != "evaluation"}))
