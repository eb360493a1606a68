"""The LoRA variants peft offers as options or optimizers, as named methods, each checked against peft's documented
behaviour numerically on the tiny model; each saves as an ordinary peft adapter that reloads onto the base."""
import math

import pytest
import torch

from pipeline_lib import adapters, methods, models
from pipeline_lib.training import TrainConfig, train

LORA = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj"]}
RECORDS = [{"instruction": f"What is {i} + {i}?", "input": "", "output": f"{2 * i}", "answer": str(2 * i)}
           for i in range(8)]


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits.float()


def lora_layers(model):
    return [m for m in model.modules() if hasattr(m, "lora_A") and "default" in m.lora_A]


@pytest.fixture()
def ids():
    torch.manual_seed(0)
    return torch.randint(4, 300, (2, 12))


def step(model, tokenizer, steps=2, lr=1e-2):
    cfg = TrainConfig(max_steps=steps, batch_size=4, micro_batch_size=2, warmup_steps=0, learning_rate=lr,
                      cutoff_len=64, autocast="none", checkpoint_every=None)
    return train(model, tokenizer, RECORDS, cfg, progress=False)


@pytest.mark.parametrize("method", ["pissa", "olora"])
def test_pissa_and_olora_leave_the_output_unchanged_and_reload_onto_the_plain_base(tiny_dir, tmp_path, ids, method):
    base, tokenizer = models.load(tiny_dir)
    before = logits(base.eval(), ids)
    model = adapters.attach(base, {"method": method, **LORA})
    after = logits(model.eval(), ids)
    # the adapter's initial product is subtracted from the base weight: the same model
    assert torch.allclose(after, before, atol=1e-4), (after - before).abs().max()
    layer = lora_layers(model)[0]
    assert layer.lora_B["default"].weight.abs().sum() > 0  # unlike plain LoRA, B starts non-zero
    step(model, tokenizer)
    trained = logits(model.eval(), ids)
    adapters.save(model, tmp_path / "a")
    fresh, _ = models.load(tiny_dir)
    reloaded = logits(adapters.load(fresh, tmp_path / "a"), ids)
    # saved as the equivalent LoRA (rank 2r) on the unchanged base
    assert torch.allclose(reloaded, trained, atol=1e-4), (reloaded - trained).abs().max()
    assert not torch.allclose(trained, before, atol=1e-3)


def test_rslora_scales_by_the_square_root_of_the_rank(tiny_dir):
    model, _ = models.load(tiny_dir)
    plain = adapters.attach(model, {"method": "lora", **LORA})
    assert lora_layers(plain)[0].scaling["default"] == pytest.approx(8 / 4)
    model, _ = models.load(tiny_dir)
    rs = adapters.attach(model, {"method": "rslora", **LORA})
    assert lora_layers(rs)[0].scaling["default"] == pytest.approx(8 / math.sqrt(4))


def test_lora_plus_gives_b_the_configured_multiple_of_as_learning_rate(tiny):
    model, _ = tiny
    model = adapters.attach(model, {"method": "lora_plus", **LORA, "loraplus_lr_ratio": 8.0})
    optimizer = adapters.optimizer(model, lr=1e-3, weight_decay=0.0)
    rates = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            rates[id(p)] = group["lr"]
    layer = lora_layers(model)[0]
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    assert rates[id(a)] == pytest.approx(1e-3) and rates[id(b)] == pytest.approx(8e-3)
    assert "loraplus_lr_ratio" not in model.peft_config["default"].to_dict()  # an optimizer setting, not saved


def test_lora_fa_trains_b_with_a_frozen(tiny):
    model, tokenizer = tiny
    model = adapters.attach(model, {"method": "lora_fa", **LORA})
    layer = lora_layers(model)[0]
    a0, b0 = layer.lora_A["default"].weight.detach().clone(), layer.lora_B["default"].weight.detach().clone()
    step(model, tokenizer)
    assert torch.equal(layer.lora_A["default"].weight, a0) and not layer.lora_A["default"].weight.requires_grad
    assert not torch.equal(layer.lora_B["default"].weight, b0)


def test_the_variants_resolve_to_a_plain_lora_config():
    for name in ("rslora", "pissa", "olora", "lora_plus", "lora_fa"):
        entry = methods.get(name)
        assert entry.peft_type == "LORA" and entry.family == "peft", name
        config = adapters.peft_config(name, {**LORA, **entry.extra})
        assert type(config).__name__ == "LoraConfig"
    assert adapters.peft_config("pissa", LORA).init_lora_weights == "pissa"
    with pytest.raises(ValueError, match=r"lora_plus adapter: unknown option\(s\) \['ratio'\]"):
        adapters.peft_config("lora_plus", {**LORA, "ratio": 2})
