"""Check the adapters on this machine's CUDA device: 4-bit and 8-bit QLoRA, bf16 LoRA, a Series adapter, and the
fine-tune on 2 GPUs against 1 (pipeline_lib/support/cuda.py). Exits 0 when all pass, or when there is no GPU."""
import argparse
import sys

from pipeline_lib.support.cuda import check_all

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("model_dir", help="a base model directory, e.g. resources/models/smollm2-135m")
sys.exit(check_all(parser.parse_args().model_dir))
