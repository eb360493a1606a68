"""Aggregate all score files into the accuracy table (CSV, Markdown) and figure."""
import argparse

import _common  # noqa: F401
from pipeline_lib import report

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--scores", nargs="+", required=True)
parser.add_argument("--datasets", nargs="+", required=True, help="column order")
parser.add_argument("--csv", required=True)
parser.add_argument("--md", required=True)
parser.add_argument("--png", required=True)
args = parser.parse_args()
table = report.accuracy_table(report.collect(args.scores), args.datasets)
report.write_tables(table, args.csv, args.md)
report.plot_accuracy(table, args.png)
print(table.to_string(index=False))
