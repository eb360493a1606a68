"""Aggregate all score files into the accuracy table (CSV, Markdown) and figure."""
import argparse
import json

import _common  # noqa: F401
from pipeline_lib import report
from pipeline_lib.files import read_json

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--scores", nargs="+", required=True)
parser.add_argument("--datasets", nargs="+", required=True, help="column order")
parser.add_argument("--csv", required=True)
parser.add_argument("--md", required=True)
parser.add_argument("--png", required=True)
parser.add_argument("--contamination", required=True, help="results/data/contamination.json")
parser.add_argument("--train-parts", required=True, help="JSON: training set -> its datasets (mixtures expanded)")
parser.add_argument("--contamination-csv", required=True)
parser.add_argument("--contamination-md", required=True)
args = parser.parse_args()
table = report.accuracy_table(report.collect(args.scores), args.datasets)
overlap = read_json(args.contamination)
marks = report.contamination_marks(overlap, json.loads(args.train_parts), args.datasets)
report.write_tables(table, args.csv, args.md, marks)
report.write_contamination(overlap, args.contamination_csv, args.contamination_md)
report.plot_accuracy(table, args.png)
print(table.to_string(index=False))
