"""Render every table and figure of the run from its score files, predictions, fine-tune metrics and the
contamination report. The `render` rule runs it on the configured rows; `snakemake tables` on whatever
scores exist, without training or evaluating anything."""
import argparse
import json

import _common  # noqa: F401
from pipeline_lib import jobs


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scores", nargs="+", required=True)
    parser.add_argument("--adapters", nargs="*", default=[], help="fine-tune output directories (metrics.json)")
    parser.add_argument("--datasets", nargs="+", required=True, help="column order")
    parser.add_argument("--contamination", required=True, help="results/data/contamination.json")
    parser.add_argument("--train-parts", type=json.loads, required=True,
                        help="JSON: training set -> its datasets (mixtures expanded)")
    parser.add_argument("--published", required=True, help="published/llm_adapters_readme.csv")
    parser.add_argument("--published-names", type=json.loads, default={}, help="JSON: our model name -> the README's")
    parser.add_argument("--methods", type=json.loads, default={}, help="JSON: adapter name -> method")
    parser.add_argument("--sweeps", type=json.loads, default={},
                        help="JSON: sweep member -> its coordinates (family, placement, size)")
    parser.add_argument("--tables", required=True, help="output directory of the tables")
    parser.add_argument("--figures", required=True, help="output directory of the figures")
    args = parser.parse_args()
    jobs.render(args.scores, args.adapters, args.contamination, args.datasets, args.train_parts, args.published,
                args.published_names, args.methods, args.sweeps, args.tables, args.figures)


if __name__ == "__main__":
    main()
