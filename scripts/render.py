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
    parser.add_argument("--predictions", nargs="+", required=True, help="each score's predictions, in its order")
    parser.add_argument("--adapters", nargs="*", default=[], help="fine-tune output directories (metrics.json)")
    parser.add_argument("--contamination", required=True, help="results/data/contamination.json")
    parser.add_argument("--plan", type=json.loads, required=True,
                        help="JSON: what the tables depend on besides these files (rules/render.smk render_plan)")
    args = parser.parse_args()
    jobs.render(args.scores, args.predictions, args.adapters, args.contamination, args.plan)


if __name__ == "__main__":
    main()
