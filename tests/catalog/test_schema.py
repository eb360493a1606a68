"""Facts the config schema must repeat from the code (JSON schema is static) agree with their one source."""
import dataclasses

import yaml

from helpers import ROOT
from pipeline_lib.catalog import answers, base_models, protocols, suites
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.data import contamination
from pipeline_lib.data.hf import ANSWER_RULES
from pipeline_lib.data.loaders import LOADERS

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
    assert tuple(full["definitions"]["quantization"]["oneOf"][0]["enum"]) == base_models.QUANTIZATIONS
    assert tuple(SCHEMA["evaluation"]["properties"]["protocols"]["items"]["enum"]) == tuple(protocols.PROTOCOLS)
    assert tuple(SCHEMA["decontaminate"]["enum"]) == contamination.POLICIES
    assert tuple(SCHEMA["contamination"]["properties"]["level"]["enum"]) == contamination.LEVELS


def test_defaults_the_code_needs_are_the_schemas():
    """A default the code cannot take from the config where it is used is pinned here to the schema's."""
    from pipeline_lib.catalog.datasets import GITHUB_RAW

    assert SCHEMA["data"]["properties"]["base_url"]["default"] == GITHUB_RAW  # Source.url, in messages
    # contamination.matrix and runtime/gpu.py take no defaults of their own: the rules pass the config's
    import inspect

    from pipeline_lib.runtime import gpu

    assert all(p.default is inspect.Parameter.empty
               for p in inspect.signature(contamination.matrix).parameters.values())
    assert inspect.signature(gpu.hold).parameters["lock_dir"].default is inspect.Parameter.empty


def test_the_configuration_reference_is_current():
    """docs/configuration.md is generated from the schema (every key has a description, or the generator refuses)."""
    from pipeline_lib.planning import schema_docs as config_docs

    assert (ROOT / "docs/configuration.md").read_text() == config_docs.render(), \
        "regenerate: python scripts/config_docs.py > docs/configuration.md"
    assert all(name in SCHEMA["models"]["description"] for name in base_models.known())
