"""The validate rule: a tuning trial on its training set's validation split (its loss there, and its answers for
metric accuracy)."""
import argparse
import json

from pipeline_lib.evaluation.jobs import validate
from pipeline_lib.planning.commands import add_model_args, start_job

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--adapter-dir", required=True, help="the trial's adapter directory")
parser.add_argument("--data", required=True, help="the validation split (JSONL)")
parser.add_argument("--record", required=True, help="the trial's validation record (JSON) to write")
parser.add_argument("--predictions", required=True, help="its per-item results (JSONL) to write")
parser.add_argument("--labels", type=json.loads, required=True, help="JSON: model, adapter, train_set, run")
parser.add_argument("--settings", type=json.loads, required=True,
                    help="JSON: the metric, and for accuracy the protocol's settings (TuningPlan.validation_settings)")
parser.add_argument("--training", type=json.loads, required=True, help="the trial's training settings as JSON")
add_model_args(parser)
args = parser.parse_args()
start_job(args.threads, args.quantization, args.model)
result = validate(args.model, args.adapter_dir, args.data, args.record, args.predictions, args.labels, args.settings,
                  args.training, args.device, args.quantization, args.trust_remote_code)
print(json.dumps({k: result.get(k) for k in ("run", "failed", "accuracy", "loss", "n")}))
