"""Facts the config schema must repeat from the code (JSON schema is static) agree with their one source."""
import dataclasses

import yaml

from pipeline_lib import answers, contamination, models, protocols, suites
from pipeline_lib.data.hf import ANSWER_RULES
from pipeline_lib.data.loaders import LOADERS
from pipeline_lib.train_config import TrainConfig
from snakemake_run import ROOT

SCHEMA = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())["properties"]


def test_training_keys_and_defaults_are_the_dataclass():
    schema = SCHEMA["training"]["properties"]
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    prompt = defaults.pop("prompt")  # the top-level `prompt`, which evaluation reads too
    assert prompt == SCHEMA["prompt"]["default"]
    assert set(schema) == set(defaults)
    assert {k: v["default"] for k, v in schema.items()} == defaults


def test_enums_are_the_registries():
    full = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())
    definitions = full["definitions"]
    assert set(definitions["answer_type"]["enum"]) == {*answers.ANSWER_TYPES, answers.AUTO}
    assert set(definitions["suite"]["enum"]) == set(suites.SUITES)
    file_entry, hf_entry = SCHEMA["datasets"]["additionalProperties"]["oneOf"]
    assert set(file_entry["properties"]["format"]["enum"]) <= set(LOADERS)
    assert set(hf_entry["properties"]["answer_rule"]["enum"]) == set(ANSWER_RULES)
    assert tuple(full["definitions"]["quantization"]["oneOf"][0]["enum"]) == models.QUANTIZATIONS
    assert tuple(SCHEMA["evaluation"]["properties"]["protocols"]["items"]["enum"]) == tuple(protocols.PROTOCOLS)
    assert tuple(SCHEMA["decontaminate"]["enum"]) == contamination.POLICIES
