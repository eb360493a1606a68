"""Measure the adapter support matrix on this machine and write its documents: docs/adapter-support.md,
docs/parameter-counts.md and this device's 4-bit matrix, docs/adapter-support-4bit/<kernel path>.md."""
import argparse
from pathlib import Path

from pipeline_lib.support.documents import generate

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--docs", default=str(Path(__file__).resolve().parents[1] / "docs"))
parser.add_argument("--part", choices=["all", "full", "4bit"], default="all",
                    help="full: the full-precision matrix and the parameter counts; 4bit: this device's 4-bit matrix")
args = parser.parse_args()
generate(Path(args.docs), args.part)
