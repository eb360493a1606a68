"""The download_hub_model rule: a snapshot of a hub model at its revision, with the commit it got (SOURCE.json)."""
import argparse

from pipeline_lib.models.convert import download_hub

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("model")
parser.add_argument("out")
parser.add_argument("--hub-id", required=True)
parser.add_argument("--revision", required=True)
parser.add_argument("--lock", default=None, help="the lock file of the hub models' sha256 (config model_lock)")
args = parser.parse_args()
download_hub(args.hub_id, args.out, revision=args.revision, lock=args.lock)
print(f"{args.model}: {args.hub_id}@{args.revision} -> {args.out}")
