"""The method table (pipeline_lib/catalog/methods.py) against what implements each method: peft's PeftType and config
classes, our bottleneck implementation, peft's quantized layers, and the published README's adapter names."""
import pandas as pd
import pytest
import torch
from peft import PromptLearningConfig
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
from peft.utils import PeftType

from helpers import ROOT
from pipeline_lib import adapters
from pipeline_lib.adapters.bottleneck import BottleneckConfig, BottleneckLinear
from pipeline_lib.catalog import methods


def test_every_peft_method_is_known_and_every_table_entry_is_a_peft_type_or_ours():
    assert set(methods.peft_types()) == {t.value for t in PeftType}
    assert {t.value.lower() for t in PeftType} <= set(methods.known())
    for name, spec in methods.TABLE.items():
        assert spec.family in methods.FAMILIES
        if spec.family == "bottleneck":
            assert spec.peft_type is None and spec.kind in ("series", "parallel") and spec.roles
        else:
            config = PEFT_TYPE_TO_CONFIG_MAPPING[PeftType(spec.peft_type)]
            prompt_learning = issubclass(config, PromptLearningConfig)
            assert prompt_learning == (spec.family == "prompt"), name
            assert set(spec.fixed) <= set(config.__dataclass_fields__), name


def test_the_bottleneck_family_is_what_the_implementation_accepts(tiny_dir):
    from pipeline_lib import models

    for name in methods.of_family("bottleneck"):
        spec = methods.get(name)
        model, _ = models.load(tiny_dir)
        model = adapters.attach(model, {"method": name, "bottleneck_size": 4})
        layers = [m for m in model.modules() if isinstance(m, BottleneckLinear)]
        assert layers, name
        positions = {"parallel"} if spec.kind == "parallel" else {"input", "output"}
        assert {m.position for m in layers} <= positions, name
        assert all(torch.equal(m.adapter_scale, torch.tensor([spec.scaling])) for m in layers), name
    with pytest.raises(ValueError, match="method must be one of series, adapterp, parallel, scaled_parallel"):
        BottleneckConfig.from_dict({"method": "lora"})


def test_4bit_rules_agree_with_the_checks_on_this_device(support_4bit):
    """On this device's kernels every `ok` method passes every check on a 4-bit base; `checked` ones may do either
    (docs/adapter-support-4bit/ has what each kernel path measured)."""
    for r in support_4bit:
        rule = methods.on_4bit(r.method)
        assert rule in ("ok", "checked"), (r.method, rule)
        assert r.ok or rule == "checked", (r.method, r.reason)


def test_published_names_are_the_readme_tables_adapters():
    published = set(pd.read_csv(ROOT / "published/llm_adapters_readme.csv", keep_default_na=False).adapter) - {""}
    published |= set(pd.read_csv(ROOT / "published/dora_commonsense.csv").adapter)
    assert set(methods.published_names().values()) == published
    assert methods.published_names()["series"] == "Series"


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown adapter method 'lorax'; valid: .*adapterp.*lora.*vera"):
        methods.get("lorax")
    assert methods.get("fourierft").family == "peft"  # a peft method without an entry of its own
