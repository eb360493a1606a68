"""Facts the config schema must repeat from the code (JSON schema is static) agree with their one source."""
import dataclasses

import yaml
from snakemake_run import ROOT

from pipeline_lib import answers, contamination, models, suites
from pipeline_lib.data.loaders import LOADERS
from pipeline_lib.train_config import TrainConfig

SCHEMA = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())["properties"]


def test_training_keys_and_defaults_are_the_dataclass():
    schema = SCHEMA["training"]["properties"]
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert set(schema) == set(defaults)
    assert {k: v["default"] for k, v in schema.items()} == defaults


def test_enums_are_the_registries():
    dataset = SCHEMA["datasets"]["additionalProperties"]["properties"]
    assert set(dataset["answer_type"]["enum"]) == {*answers.ANSWER_TYPES, answers.AUTO}
    assert set(dataset["suite"]["enum"]) == set(suites.SUITES)
    assert set(dataset["format"]["enum"]) <= set(LOADERS)
    assert tuple(SCHEMA["quantization"]["enum"]) == models.QUANTIZATIONS
    assert tuple(SCHEMA["evaluation"]["properties"]["protocol"]["enum"]) == suites.PROTOCOLS
    assert tuple(SCHEMA["decontaminate"]["enum"]) == contamination.POLICIES
