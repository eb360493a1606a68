"""The fetch_data rule: obtain one data file (download, mirror copy, or a config dataset's local path), verified by
its sha256."""
import argparse
import json

from pipeline_lib.catalog.datasets import GITHUB_RAW, Source
from pipeline_lib.data.fetch import fetch

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out")
parser.add_argument("--source", type=json.loads, required=True,
                    help="the file's registry entry as JSON (repo, commit, folder, path, sha256, origin)")
parser.add_argument("--mirror", default=None, help="directory laid out like the upstream repositories")
parser.add_argument("--base-url", default=GITHUB_RAW, help="server with raw GitHub's layout")
args = parser.parse_args()
source = Source(**args.source)
fetch(source, args.out, mirror=args.mirror, base_url=args.base_url)
print(f"{source.relpath}: ok ({source.sha256})")
