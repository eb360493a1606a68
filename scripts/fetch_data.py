"""Obtain one upstream data file (download or mirror copy), verified by sha256."""
import argparse

import _common  # noqa: F401
from pipeline_lib.data import SOURCES
from pipeline_lib.data.fetch import fetch

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("relpath", help="mirror-relative path, e.g. LLM-Adapters/dataset/gsm8k/test.json")
parser.add_argument("out")
parser.add_argument("--mirror", default=None)
args = parser.parse_args()
source = next((s for s in SOURCES.values() if s.relpath == args.relpath), None)
if source is None:
    raise SystemExit(f"unknown data file {args.relpath!r}")
fetch(source, args.out, mirror=args.mirror or None)
print(f"{args.relpath}: ok ({source.sha256})")
