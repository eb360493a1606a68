"""The forgetting rule: how much a fine-tuned adapter changed the model on general text (cross-entropy on the
reference text with the adapter disabled and enabled; config `costs.forgetting`), the disabled pass taken from the
model's forgetting_base record where it was made the same way."""
import argparse
import json

from pipeline_lib.evaluation.jobs import forgetting
from pipeline_lib.planning.commands import add_reference_args, start_job

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out", help="the record (JSON)")
parser.add_argument("--adapter-dir", required=True)
parser.add_argument("--labels", type=json.loads, required=True, help="JSON: model, adapter, train_set, run, seed")
parser.add_argument("--base", help="forgetting_base's record: the disabled pass, where made the same way")
add_reference_args(parser)
args = parser.parse_args()
start_job(args.threads, args.quantization, args.model)
record = forgetting(args.model, args.adapter_dir, args.out, args.labels, args.reference, args.tokens,
                    args.sequence_length, args.batch_size, args.device, args.quantization, args.trust_remote_code,
                    args.scoring, base=args.base)
print(json.dumps({k: record[k] for k in ("cross_entropy_disabled", "cross_entropy_enabled", "forgetting",
                                         "disabled_pass")}))
