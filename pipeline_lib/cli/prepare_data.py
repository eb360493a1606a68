"""Data preparation steps: normalize (parse + validate one upstream file), contamination (overlap of the run's
training and evaluation sets), select (policy, empty responses, subsample), mix (concatenate training sets)."""
import argparse
import json

from pipeline_lib.catalog.datasets import DatasetSpec
from pipeline_lib.data import hf, prepare
from pipeline_lib.runtime.files import read_jsonl


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    steps = parser.add_subparsers(dest="step", required=True)
    p = steps.add_parser("normalize")
    p.add_argument("raw")
    p.add_argument("out")
    p.add_argument("--spec", type=json.loads, required=True, help="dataset spec as JSON: name, loader, split, ...")
    p = steps.add_parser("load", help="read a dataset with the datasets library (config format: hf)")
    p.add_argument("out")
    p.add_argument("source_out")
    p.add_argument("--spec", type=json.loads, required=True, help="dataset spec as JSON: name, loader, split, ...")
    p.add_argument("--entry", type=json.loads, required=True, help="the config's datasets entry as JSON")
    p = steps.add_parser("contamination")
    p.add_argument("out")
    p.add_argument("--train", nargs="+", default=[], metavar="NAME=PATH")
    p.add_argument("--eval", nargs="+", default=[], metavar="NAME=PATH")
    p.add_argument("--ngram", type=int, required=True)
    p.add_argument("--threshold", type=float, required=True)
    p.add_argument("--level", required=True)
    p.add_argument("--policy", required=True)
    p = steps.add_parser("select")
    p.add_argument("name")
    p.add_argument("split", choices=["train", "eval", "val"])
    p.add_argument("full")
    p.add_argument("out")
    p.add_argument("--limit", type=int, default=None)
    # the rule passes every selection option (RunPlan.selection_options; their defaults are the schema's)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--policy", required=True)
    p.add_argument("--level", required=True)
    p.add_argument("--contamination", default=None, help="contamination.json (when the policy drops from this split)")
    p.add_argument("--holdout", default=None, help="tuning: the validation split a training set's fine-tunes leave out")
    p = steps.add_parser("mix")
    p.add_argument("out")
    p.add_argument("parts", nargs="+")
    return parser


def main():
    args = parser().parse_args()
    if args.step == "normalize":
        spec = DatasetSpec(source=None, **args.spec)
        print(f"{spec.name}: {prepare.normalize(spec, args.raw, args.out)} items valid -> {args.out}")
    elif args.step == "load":
        spec = DatasetSpec(source=None, **args.spec, hf=args.entry)
        print(f"{spec.name}: {hf.load(spec, args.entry, args.out, args.source_out)} items valid -> {args.out}")
    elif args.step == "contamination":
        named = [dict(p.split("=", 1) for p in pairs) for pairs in (args.train, args.eval)]
        result = prepare.contamination_report(*named, args.out, args.ngram, args.threshold, args.level, args.policy)
        for train, row in result["pairs"].items():
            print(train, {e: f"{p[args.level]}/{p['eval_items']}" for e, p in row.items()})
    elif args.step == "select":
        drop = prepare.decontamination_drops(args.contamination, args.policy, args.level, args.split, args.name)
        holdout = {r["id"] for r in read_jsonl(args.holdout)} if args.holdout else set()  # tuning's validation
        kept = prepare.select(args.name, args.split, args.full, args.out, args.limit, args.seed, drop, args.policy,
                              holdout)
        print(f"{args.name}: {kept} items after decontaminate={args.policy} ({len(drop)} dropped) -> {args.out}")
    else:
        print(f"{args.out}: {prepare.mix(args.parts, args.out)} items from {len(args.parts)} sets")


if __name__ == "__main__":
    main()
