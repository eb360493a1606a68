"""The render and tables rules: every table and figure of the run from its score files, predictions, fine-tune
metrics, cost records, selections and the contamination report (`snakemake tables`: from whatever exists)."""
import argparse
import json

from pipeline_lib.planning.render import RenderPlan
from pipeline_lib.report.render import render

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--scores", nargs="+", required=True)
parser.add_argument("--predictions", nargs="+", required=True, help="each score's predictions, in its order")
parser.add_argument("--adapters", nargs="*", default=[], help="fine-tune output directories (metrics.json)")
parser.add_argument("--contamination", required=True, help="results/data/contamination.json")
parser.add_argument("--selections", nargs="*", default=[], help="tuning: every selection.json")
parser.add_argument("--forgetting", nargs="*", default=[], help="costs: every forgetting.json")
parser.add_argument("--merging", nargs="*", default=[], help="costs: every merging.json")
parser.add_argument("--plan", type=lambda text: RenderPlan.from_json(json.loads(text)), required=True,
                    help="JSON: what the tables depend on besides these files (pipeline_lib/planning/render.py)")
args = parser.parse_args()
render(args.scores, args.predictions, args.adapters, args.contamination, args.plan, args.selections, args.forgetting,
       args.merging)
