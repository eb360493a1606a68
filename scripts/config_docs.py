"""Print docs/configuration.md, the config reference generated from schemas/config.schema.yaml:
python scripts/config_docs.py > docs/configuration.md"""
import sys

from pipeline_lib.planning.schema_docs import render

sys.stdout.write(render())
