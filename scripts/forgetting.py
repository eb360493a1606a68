"""The forgetting rule: how much a fine-tuned adapter changed the model on general text (cross-entropy on the
reference text with the adapter disabled and enabled; config `costs.forgetting`)."""
import argparse
import json

from pipeline_lib.evaluation.jobs import forgetting
from pipeline_lib.planning.commands import add_model_args, set_threads

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out", help="the record (JSON)")
parser.add_argument("--adapter-dir", required=True)
parser.add_argument("--labels", type=json.loads, required=True, help="JSON: model, adapter, train_set, run, seed")
parser.add_argument("--reference", type=json.loads, required=True,
                    help="JSON: {builtin|path|hub|datasets: ...} and its options (evaluation/forgetting.py)")
parser.add_argument("--tokens", type=int, required=True, help="reference tokens scored")
parser.add_argument("--sequence-length", type=int, required=True, help="tokens per window")
parser.add_argument("--batch-size", type=int, required=True)
parser.add_argument("--scoring", choices=["windows", "documents"], default="windows",
                    help="windows across the documents, or each document on its own (PEFT's way)")
add_model_args(parser)
args = parser.parse_args()
set_threads(args.threads)
record = forgetting(args.model, args.adapter_dir, args.out, args.labels, args.reference, args.tokens,
                    args.sequence_length, args.batch_size, args.device, args.quantization, args.trust_remote_code,
                    args.scoring)
print(json.dumps({k: record[k] for k in ("cross_entropy_disabled", "cross_entropy_enabled", "forgetting")}))
