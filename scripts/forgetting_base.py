"""The forgetting_base rule: the base model's cross-entropy on the reference text, window by window, once per
model (config `costs.forgetting`): every fine-tune's forgetting job takes it as its adapter-disabled pass."""
import argparse
import json

from pipeline_lib.evaluation.jobs import forgetting_base
from pipeline_lib.planning.commands import add_reference_args, start_job

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out", help="the record (JSON)")
add_reference_args(parser)
args = parser.parse_args()
start_job(args.threads, args.quantization, args.model)
record = forgetting_base(args.model, args.out, args.reference, args.tokens, args.sequence_length, args.batch_size,
                         args.device, args.quantization, args.trust_remote_code, args.scoring)
print(json.dumps({"windows": record["windows"], "dtype": record["dtype"]}))
