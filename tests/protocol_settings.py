"""An evaluation job's settings as the plan gives them: the schema's `evaluation` defaults, the test's overrides,
resolved by pipeline_lib.protocols (the one place the tests build them)."""
import yaml

from pipeline_lib import protocols
from snakemake_run import ROOT

_SCHEMA = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())["properties"]
DEFAULTS = {k: v["default"] for k, v in _SCHEMA["evaluation"]["properties"].items() if "default" in v}
PROMPT = _SCHEMA["prompt"]["default"]


def settings(overrides: dict, suite: str, protocol: str = "generate", prompt: str = PROMPT) -> dict:
    return protocols.settings(protocol, {**DEFAULTS, **overrides}, suite, prompt)
