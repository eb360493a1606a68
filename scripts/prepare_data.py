"""Normalize one dataset into the pipeline's JSONL schema."""
import argparse

import _common  # noqa: F401
from pipeline_lib.data.prepare import prepare

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("name")
parser.add_argument("raw")
parser.add_argument("out")
parser.add_argument("--limit", type=int, default=None)
parser.add_argument("--seed", type=int, default=42)
args = parser.parse_args()
n = prepare(args.name, args.raw, args.out, limit=args.limit, seed=args.seed)
print(f"{args.name}: {n} items -> {args.out}")
