"""Normalize one dataset into the pipeline's JSONL schema, or concatenate prepared sets into a mixture."""
import argparse

import _common  # noqa: F401
from pipeline_lib.data.prepare import mix, prepare

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("args", nargs="+", help="NAME RAW OUT, or with --mix: the prepared parts")
parser.add_argument("--mix", metavar="OUT", help="write the concatenation of the given prepared sets here")
parser.add_argument("--limit", type=int, default=None)
parser.add_argument("--seed", type=int, default=42)
args = parser.parse_args()
if args.mix:
    print(f"{args.mix}: {mix(args.args, args.mix)} items from {len(args.args)} sets")
else:
    name, raw, out = args.args
    n = prepare(name, raw, out, limit=args.limit, seed=args.seed)
    print(f"{name}: {n} items -> {out}")
