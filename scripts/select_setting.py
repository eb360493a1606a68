"""The select_setting rule: choose an adapter's setting from its tuning trials' validation records alone."""
import argparse
import json

from pipeline_lib.evaluation.selection import select_setting

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out", help="the selection (JSON) to write")
parser.add_argument("--records", nargs="+", required=True, help="every trial's validation record")
parser.add_argument("--predictions", nargs="+", required=True,
                    help="every trial's per-item validation outcomes (validation.jsonl), in the order of --records")
parser.add_argument("--adapters", nargs="+", required=True, help="every trial's adapter directory (its cost)")
parser.add_argument("--adapter", required=True, help="the adapter the trials tune")
parser.add_argument("--metric", choices=["accuracy", "loss"], required=True)
parser.add_argument("--trials", type=json.loads, required=True, help="JSON: trial name -> its values")
args = parser.parse_args()
selection = select_setting(args.out, args.records, args.adapters, args.adapter, args.metric, args.trials,
                           args.predictions)
print(json.dumps({"chosen": selection["chosen"], "ties": selection["ties"], "failed": selection["failed"]}))
