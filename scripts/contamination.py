"""The contamination rule: how many of each evaluation set's items each training set contains (n-gram overlap)."""
import argparse

from pipeline_lib.data.prepare import contamination_report

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out")
parser.add_argument("--train", nargs="+", default=[], metavar="NAME=PATH")
parser.add_argument("--eval", nargs="+", default=[], metavar="NAME=PATH")
parser.add_argument("--ngram", type=int, required=True)
parser.add_argument("--threshold", type=float, required=True)
parser.add_argument("--level", required=True)
parser.add_argument("--policy", required=True)
args = parser.parse_args()
train, evaluation = (dict(p.split("=", 1) for p in pairs) for pairs in (args.train, args.eval))
result = contamination_report(train, evaluation, args.out, args.ngram, args.threshold, args.level, args.policy)
for name, row in result["pairs"].items():
    print(name, {e: f"{p[args.level]}/{p['eval_items']}" for e, p in row.items()})
