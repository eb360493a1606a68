"""The normalize_data rule: parse and validate one upstream data file into the pipeline's JSONL records."""
import argparse
import json

from pipeline_lib.catalog.datasets import DatasetSpec
from pipeline_lib.data.prepare import normalize

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("raw")
parser.add_argument("out")
parser.add_argument("--spec", type=json.loads, required=True, help="dataset spec as JSON: name, loader, split, ...")
args = parser.parse_args()
spec = DatasetSpec(source=None, **args.spec)
print(f"{spec.name}: {normalize(spec, args.raw, args.out)} items valid -> {args.out}")
