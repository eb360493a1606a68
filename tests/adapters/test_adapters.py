import json

import pytest
import torch

from pipeline_lib import adapters
from pipeline_lib.adapters.bottleneck import BottleneckLinear
from pipeline_lib.catalog import base_models
from pipeline_lib.catalog.methods import TABLE
from pipeline_lib.catalog.targets import ARCHITECTURES, default_targets, position_for

INPUT = torch.tensor([[1, 5, 9, 13, 17, 21, 25, 29]])


def logits(model):
    with torch.no_grad():
        return model(input_ids=INPUT).logits


def test_bottleneck_positions_match_hand_computation():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 10)
    x = torch.randn(3, 6)
    for position, config in [("input", dict(method="series")), ("output", dict(method="series")),
                              ("parallel", dict(method="parallel"))]:
        cfg = adapters.bottleneck.BottleneckConfig.from_dict({**config, "bottleneck_size": 4, "scaling": 0.5})
        layer = BottleneckLinear(base, position, cfg)
        down, up = layer.adapter_down.weight, layer.adapter_up.weight
        f = lambda h: torch.tanh(h @ down.T) @ up.T * 0.5  # noqa: E731
        W, b = base.weight, base.bias
        expected = {"input": lambda: (x + f(x)) @ W.T + b,
                    "output": lambda: (x @ W.T + b) + f(x @ W.T + b),
                    "parallel": lambda: (x @ W.T + b) + f(x)}[position]()
        torch.testing.assert_close(layer(x), expected)


def test_position_map_is_data():
    assert position_for("series", "llama", "down_proj") == "output"
    assert position_for("series", "llama", "gate_proj") == "input"
    assert position_for("series", "bloom", "dense_h_to_4h") == "input"
    assert position_for("series", "gptj", "fc_out") == "output"
    assert position_for("series", "opt", "fc1") == "input"
    assert position_for("series", "gpt_neo", "mlp.c_proj") == "output"
    assert position_for("parallel", "llama", "q_proj") == "parallel"
    assert set(ARCHITECTURES) >= {"llama", "bloom", "gptj", "opt", "gpt_neo", "gpt2", "gpt_neox", "mistral"}
    with pytest.raises(ValueError, match="'q_proj' has no series position in the llama map"):
        position_for("series", "llama", "q_proj")


def test_upstream_default_targets_and_paper_overrides():
    assert default_targets("series", "llama") == ["gate_proj", "up_proj", "down_proj"]
    assert default_targets("adapterp", "llama") == ["down_proj"]
    assert default_targets("adapterp", "gptj") == ["fc_out"]
    assert default_targets("parallel", "llama") == ["q_proj", "k_proj", "v_proj"]
    assert default_targets("parallel", "bloom") == ["query_key_value"]
    assert TABLE["series"].paper["llama"] == ("up_proj", "gate_proj")
    assert TABLE["parallel"].paper["gptj"] == ("fc_in", "fc_out")


def test_scaled_parallel_scale_and_adapterp_position(tiny):
    model, _ = tiny
    model = adapters.attach(model, {"method": "scaled_parallel", "bottleneck_size": 8})
    layer = model.model.layers[0].self_attn.q_proj
    assert layer.position == "parallel" and float(layer.adapter_scale) == 4.0
    from pipeline_lib import models  # noqa: F401

    cfg = adapters.bottleneck.BottleneckConfig.from_dict({"method": "adapterp", "bottleneck_size": 8})
    assert cfg.scaling == 1.0 and cfg.kind == "series"
    with pytest.raises(ValueError, match="bottleneck_size must be a positive integer"):
        adapters.bottleneck.BottleneckConfig.from_dict({"method": "series", "bottleneck_size": 0})
    with pytest.raises(ValueError, match="scaling must be a number or 'learned'"):
        adapters.bottleneck.BottleneckConfig.from_dict({"method": "series", "scaling": "big"})


@pytest.mark.parametrize("spec, expected", [
    # series on up+gate (input adapters on the 32-wide input), bottleneck 8: 2 layers x 2 modules x (32*8 + 8*32)
    ({"method": "series", "bottleneck_size": 8, "target_modules": ["up_proj", "gate_proj"]}, 2 * 2 * (32 * 8 * 2)),
    # parallel on up (32->64) and down (64->32)
    ({"method": "parallel", "bottleneck_size": 8, "target_modules": ["up_proj", "down_proj"]},
     2 * ((32 * 8 + 8 * 64) + (64 * 8 + 8 * 32))),
    # LoRA r=4 on q (32->32) and v (32->16): r*(in+out)
    ({"method": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]}, 2 * (4 * 64 + 4 * 48)),
])
def test_only_adapter_parameters_train(tiny, spec, expected):
    model, _ = tiny
    model = adapters.attach(model, spec)
    counts = adapters.parameter_counts(model)
    assert counts["trainable_params"] == expected
    loss = model(input_ids=INPUT, labels=INPUT).loss
    loss.backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name  # (LoRA A's first gradient is 0: B starts at 0)


@pytest.mark.parametrize("spec", [
    {"method": "series", "bottleneck_size": 8, "init": "mam"},
    {"method": "parallel", "bottleneck_size": 8, "init": "mam", "target_modules": ["up_proj", "down_proj"]},
    {"method": "lora", "r": 4, "target_modules": ["q_proj", "v_proj", "down_proj"]},
])
def test_identity_initialisation_leaves_logits_unchanged(tiny, spec):
    model, _ = tiny
    before = logits(model)
    after = logits(adapters.attach(model, spec))
    assert (after - before).abs().max() < 1e-6


def _perturb(model):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))


@pytest.mark.parametrize("spec", [
    {"method": "series", "bottleneck_size": 8, "scaling": "learned"},
    {"method": "parallel", "bottleneck_size": 8, "target_modules": ["up_proj", "down_proj"]},
    {"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
])
def test_save_then_load_reproduces_logits(tiny_dir, tmp_path, spec):
    from pipeline_lib import models

    model, _ = models.load(tiny_dir)
    model = adapters.attach(model, spec)
    _perturb(model)
    model.eval()
    expected = logits(model)
    adapters.save(model, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    fresh, _ = models.load(tiny_dir)
    assert (logits(fresh) - expected).abs().max() > 1e-4  # the adapter matters
    reloaded = adapters.load(fresh, tmp_path)
    assert torch.equal(logits(reloaded), expected)


def test_merged_lora_matches_unmerged(tiny):
    model, _ = tiny
    model = adapters.attach(model, {"method": "lora", "r": 4, "target_modules": ["q_proj", "up_proj"]})
    _perturb(model)
    model.eval()
    expected = logits(model)
    merged = adapters.merge_for_inference(model)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged), expected, atol=1e-5, rtol=1e-5)


def test_bottleneck_is_not_merged_and_can_be_disabled(tiny):
    model, _ = tiny
    before = logits(model)
    model = adapters.attach(model, {"method": "series", "bottleneck_size": 8})
    with pytest.raises(NotImplementedError, match="cannot be merged .* non-linearity 'tanh'"):
        adapters.merge(model)
    assert adapters.merge_for_inference(model) is model
    assert (logits(model) - before).abs().max() > 1e-6  # bert init is not the identity
    with adapters.disabled(model):
        assert torch.equal(logits(model), before)
    assert (logits(model) - before).abs().max() > 1e-6


def test_bad_adapter_options_fail_clearly(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match=r"unknown adapter method 'loraa'; valid: .*lora"):
        adapters.attach(model, {"method": "loraa"})
    with pytest.raises(ValueError, match=r"lora adapter: unknown option\(s\) \['rank'\]; valid: .*lora_alpha"):
        adapters.attach(model, {"method": "lora", "rank": 4})
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['size'\]"):
        adapters.attach(model, {"method": "series", "size": 4})
    with pytest.raises(ValueError, match=r"target module\(s\) \['fc_in'\] not found .* linear layers: .*down_proj"):
        adapters.attach(model, {"method": "parallel", "target_modules": ["fc_in"]})


def test_saved_bottleneck_config_records_positions(tiny, tmp_path):
    model, _ = tiny
    adapters.save(adapters.attach(model, {"method": "series", "bottleneck_size": 8}), tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["positions"] == {"gate_proj": "input", "up_proj": "input", "down_proj": "output"}


def test_target_presets_resolve_per_architecture():
    from pipeline_lib.catalog.targets import resolve_targets

    assert resolve_targets("lora", "attention", "llama") == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert resolve_targets("lora", "mlp", "llama") == ["gate_proj", "up_proj", "down_proj"]
    assert len(resolve_targets("parallel", "both", "llama")) == 7
    assert resolve_targets("series", "attention", "llama") == ["o_proj"]  # no series place on q/k/v
    assert resolve_targets("series", "mlp", "gpt2") == ["mlp.c_fc", "mlp.c_proj"]
    assert resolve_targets("lora", "paper", "bloom") == ["query_key_value", "dense_4h_to_h", "dense_h_to_4h"]
    assert resolve_targets("series", "paper", "opt") == ["fc1", "fc2"]  # no paper run: upstream's default
    assert resolve_targets("lora", ["q_proj"], "llama") == ["q_proj"]


def test_a_target_preset_in_a_spec_attaches_to_those_modules(tiny):
    from pipeline_lib import adapters

    model, _ = tiny
    model = adapters.attach(model, {"method": "lora", "r": 2, "target_modules": "mlp"})
    names = {n.split(".")[-4] for n, p in model.named_parameters() if p.requires_grad}
    assert names == {"gate_proj", "up_proj", "down_proj"}


def test_parameter_counts_are_the_same_on_a_4bit_base(tiny64_dir):
    """bitsandbytes stores two 4-bit weights per byte: the count reads the weights' shape, not the storage."""
    from pipeline_lib import models

    spec = {"method": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]}
    full = adapters.parameter_counts(adapters.attach(models.load(tiny64_dir)[0], dict(spec)))
    packed = adapters.parameter_counts(adapters.attach(models.load(tiny64_dir, quantization=base_models.FOUR_BIT)[0],
                                                       dict(spec)))
    assert packed == full and full["trainable_params"] == 2 * 4 * (64 + 64) + 2 * 4 * (64 + 32)
