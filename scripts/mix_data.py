"""The mix_data rule: a mixture's training (or, under tuning, validation) split from its parts'."""
import argparse

from pipeline_lib.data.prepare import mix

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out")
parser.add_argument("parts", nargs="+")
args = parser.parse_args()
print(f"{args.out}: {mix(args.parts, args.out)} items from {len(args.parts)} sets")
