"""The prepare_data rule: one split of a normalized set as the run uses it (decontamination policy, tuning's
held-out validation items, the seeded subsample)."""
import argparse

from pipeline_lib.data.prepare import prepare_split

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("name")
parser.add_argument("split", choices=["train", "eval", "val"])
parser.add_argument("full")
parser.add_argument("out")
parser.add_argument("--limit", type=int, default=None)
# the rule passes every selection option (DataPlan.selection_options; their defaults are the schema's)
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--policy", required=True)
parser.add_argument("--level", required=True)
parser.add_argument("--contamination", default=None, help="contamination.json (when the policy drops from this split)")
parser.add_argument("--holdout", default=None, help="tuning: the validation split the fine-tunes leave out")
args = parser.parse_args()
kept, dropped = prepare_split(args.name, args.split, args.full, args.out, args.limit, args.seed, args.policy,
                              args.level, args.contamination, args.holdout)
print(f"{args.name}: {kept} items after decontaminate={args.policy} ({dropped} dropped) -> {args.out}")
