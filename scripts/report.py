"""Render every table and figure of the run from its score files, predictions, fine-tune metrics and the
contamination report. The `report` rule runs it on the configured rows; `snakemake tables` on whatever
scores exist, without training or evaluating anything."""
import argparse
import json
import sys
from pathlib import Path

import _common  # noqa: F401
import pandas as pd

from pipeline_lib import figures, report, tables
from pipeline_lib.files import read_json

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--scores", nargs="+", required=True)
parser.add_argument("--adapters", nargs="*", default=[], help="fine-tune output directories (metrics.json)")
parser.add_argument("--datasets", nargs="+", required=True, help="column order")
parser.add_argument("--contamination", required=True, help="results/data/contamination.json")
parser.add_argument("--train-parts", required=True, help="JSON: training set -> its datasets (mixtures expanded)")
parser.add_argument("--published", required=True, help="published/llm_adapters_readme.csv")
parser.add_argument("--published-names", default="{}", help="JSON: our model name -> the README's")
parser.add_argument("--methods", default="{}", help="JSON: adapter name -> method")
parser.add_argument("--sweeps", default="{}", help="JSON: sweep member -> its coordinates (family, placement, size)")
parser.add_argument("--tables", required=True, help="output directory of the tables")
parser.add_argument("--figures", required=True, help="output directory of the figures")
args = parser.parse_args()

missing = [p for p in args.scores if not Path(p).is_file()]
if missing:
    print(f"skipping {len(missing)} score file(s) not computed yet, e.g. {missing[0]}", file=sys.stderr)
score_paths = [p for p in args.scores if Path(p).is_file()]
scores = report.collect(score_paths)
overlap = read_json(args.contamination) if Path(args.contamination).is_file() else \
    {"policy": "report", "level": "near", "pairs": {}, "levels": [], "ngram": 8, "threshold": 0.8}
marks = report.contamination_marks(overlap, json.loads(args.train_parts), args.datasets)
metrics = tables.load_metrics([d for d in args.adapters if (Path(d) / "metrics.json").is_file()])
out, figs = Path(args.tables), Path(args.figures)

numeric = report.accuracy_table(scores, args.datasets)
report.write_tables(numeric, out / "accuracy.csv", out / "accuracy.md", marks)
tables.write(tables.accuracy_cells(scores, args.datasets, marks), out / "accuracy_ci",
             "Accuracy (%) with 95% intervals", tables.accuracy_notes(marks))
tables.write(tables.resources_table(metrics, scores), out / "resources", "Resources per fine-tune")
published = pd.read_csv(args.published, keep_default_na=False)
comparison = tables.published_comparison(scores, published, json.loads(args.published_names), json.loads(args.methods))
tables.write(comparison, out / "published", "Ours beside the LLM-Adapters README",
             [] if len(comparison) else ["This run reproduces no published cell (model, adapter, training set)."])
predictions = {(s.model, s.adapter, s.train_set, s.dataset):
               Path(p.replace("results/scores/", "results/predictions/")).with_suffix(".jsonl")
               for p, s in zip(score_paths, scores.itertuples())}
tables.write(tables.significance_table(predictions), out / "significance",
             "Pairwise comparison of adapters on the same items")
if Path(args.contamination).is_file():
    report.write_contamination(overlap, out / "contamination.csv", out / "contamination.md")

figures.accuracy_by_dataset(scores, args.datasets, figs / "accuracy")
params = {k: m.get("trainable_params") for k, m in metrics.items()}
figures.accuracy_vs_parameters(numeric, params, figs / "tradeoff")
figures.loss_curves(metrics, figs / "loss")
figures.job_times(metrics, scores, figs / "time")
coordinates = json.loads(args.sweeps)
if any(c["placement"] for c in coordinates.values()):
    figures.placement(scores, coordinates, figs / "placement")
if any(c["size"] is not None for c in coordinates.values()):
    figures.size(scores, coordinates, params, figs / "size")
print(numeric.to_string(index=False))
