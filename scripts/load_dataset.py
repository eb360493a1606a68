"""The load_dataset rule: read a dataset with the datasets library (config `format: hf`: the hub at a pinned
revision, or local files) into the pipeline's JSONL records, and record where it came from."""
import argparse
import json

from pipeline_lib.catalog.datasets import DatasetSpec
from pipeline_lib.data.hf import load

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out")
parser.add_argument("source_out")
parser.add_argument("--spec", type=json.loads, required=True, help="dataset spec as JSON: name, loader, split, ...")
parser.add_argument("--entry", type=json.loads, required=True, help="the config's datasets entry as JSON")
args = parser.parse_args()
spec = DatasetSpec(source=None, **args.spec, hf=args.entry)
print(f"{spec.name}: {load(spec, args.entry, args.out, args.source_out)} items valid -> {args.out}")
