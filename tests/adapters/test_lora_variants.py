"""The LoRA variants peft offers as options or optimizers, as named methods, each checked against peft's documented
behaviour numerically on the tiny model; each saves as an ordinary peft adapter that reloads onto the base."""
import math

import pytest
import torch

from pipeline_lib import adapters, models
from pipeline_lib.adapters import families
from pipeline_lib.catalog import base_models, methods
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.training.loop import initialisation_batches, train

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


# max_truncated: the tiny tokenizer spells text in short pieces, so every example reaches 64 tokens (cut on purpose)
CFG = TrainConfig(max_steps=2, batch_size=4, micro_batch_size=2, warmup_steps=0, learning_rate=1e-2,
                  cutoff_len=64, max_truncated=1.0, autocast="float32", checkpoint_every=None)


def step(model, tokenizer, steps=2, lr=1e-2):
    return train(model, tokenizer, RECORDS, CFG, progress=False)


def batches(tokenizer, records=RECORDS):
    return initialisation_batches(tokenizer, records, CFG, "cpu")


@pytest.mark.parametrize("method", ["pissa", "olora", "corda"])
def test_pissa_olora_corda_leave_the_output_unchanged_and_reload_onto_the_plain_base(tiny_dir, tmp_path, ids, method):
    base, tokenizer = models.load(tiny_dir)
    before = logits(base.eval(), ids)
    model = adapters.attach(base, {"method": method, **LORA}, batches=batches(tokenizer))
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
    for name in ("rslora", "pissa", "olora", "eva", "corda", "loftq", "lora_plus", "lora_fa"):
        entry = methods.get(name)
        assert entry.peft_type == "LORA" and entry.family == "peft", name
        config = families.peft_config(name, {**LORA, **entry.extra})
        assert type(config).__name__ == "LoraConfig"
    assert families.peft_config("pissa", LORA).init_lora_weights == "pissa"
    with pytest.raises(ValueError, match=r"lora_plus adapter: unknown option\(s\) \['ratio'\]"):
        families.peft_config("lora_plus", {**LORA, "ratio": 2})


def layer_inputs(model, tokenizer, name: str) -> torch.Tensor:
    """The unpadded inputs of the named linear over the initialisation batches."""
    seen = []
    module = dict(model.named_modules())[name]
    hook = module.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        for batch in batches(tokenizer):
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            seen[-1] = seen[-1][batch["attention_mask"].bool()]
    hook.remove()
    return torch.cat(seen)


def test_eva_takes_a_from_the_principal_directions_of_the_training_inputs(tiny_dir, ids):
    base, tokenizer = models.load(tiny_dir)
    before = logits(base.eval(), ids)
    inputs = layer_inputs(base, tokenizer, "model.layers.0.self_attn.q_proj")
    model = adapters.attach(base, {"method": "eva", **LORA, "eva_rho": 1.0}, batches=batches(tokenizer))
    assert torch.allclose(logits(model.eval(), ids), before, atol=1e-6)  # B starts at zero: the same model
    layer = dict(model.named_modules())["base_model.model.model.layers.0.self_attn.q_proj"]
    a = layer.lora_A["default"].weight.detach()
    assert a.shape[0] == LORA["r"] and layer.lora_B["default"].weight.abs().sum() == 0
    # EVA's A: the top right-singular vectors of the (centred) layer inputs, as peft's incremental PCA finds them
    _, _, vh = torch.linalg.svd(inputs - inputs.mean(0), full_matrices=False)
    top = vh[:LORA["r"]]
    captured = (a @ top.T).norm() / a.norm()
    assert captured > 0.99, captured
    other = [{**r, "instruction": f"Name a colour, number {i}."} for i, r in enumerate(RECORDS)]
    other_model = adapters.attach(models.load(tiny_dir)[0], {"method": "eva", **LORA, "eva_rho": 1.0},
                                  batches=batches(tokenizer, other))
    other_a = dict(other_model.named_modules())["base_model.model.model.layers.0.self_attn.q_proj"].lora_A
    assert not torch.allclose(other_a["default"].weight, a, atol=1e-3)  # read from the data it is given


def test_corda_decomposes_along_the_training_inputs(tiny_dir):
    _, tokenizer = models.load(tiny_dir)
    other = [{**r, "instruction": f"Name a colour, number {i}."} for i, r in enumerate(RECORDS)]
    a = [lora_layers(adapters.attach(models.load(tiny_dir)[0], {"method": "corda", **LORA},
                                     batches=batches(tokenizer, data)))[0].lora_A["default"].weight.detach()
         for data in (RECORDS, other)]
    assert not torch.allclose(a[0], a[1], atol=1e-3)


def test_data_driven_variants_need_batches(tiny_dir):
    for name in ("eva", "corda"):
        with pytest.raises(ValueError, match=f"{name} adapter: its initialisation reads training batches"):
            adapters.attach(models.load(tiny_dir)[0], {"method": name, **LORA})


def test_initialisation_batches_leave_out_the_held_out_examples(tiny_dir):
    import dataclasses

    _, tokenizer = models.load(tiny_dir)
    from pipeline_lib.training.loop import split_validation, tokenize

    cfg = dataclasses.replace(CFG, val_set_size=3)
    seen = [row[mask.bool()].tolist() for b in initialisation_batches(tokenizer, RECORDS, cfg, "cpu")
            for row, mask in zip(b["input_ids"], b["attention_mask"])]
    tagged = [{"i": i} for i in range(len(RECORDS))]
    train_part = [RECORDS[e["i"]] for e in split_validation(tagged, 3, cfg.seed)[0]]  # as train() splits
    assert len(seen) == len(train_part) == 5
    assert seen == [tokenize(tokenizer, r, cfg.cutoff_len, cfg.train_on_inputs)["input_ids"] for r in train_part]


def test_loftq_offsets_the_quantization_error_of_a_4bit_base(tiny64_dir, tmp_path, ids):
    from safetensors.torch import load_file

    full = logits(models.load(tiny64_dir)[0].eval(), ids)
    quantized, _ = models.load(tiny64_dir, quantization=base_models.FOUR_BIT)
    error = (logits(quantized.eval(), ids) - full).abs().mean()  # a forward pass first: the CPU kernels repack
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = adapters.attach(quantized, {"method": "loftq", "r": 32, "lora_alpha": 16, "target_modules": targets})
    started = logits(model.eval(), ids)
    assert (started - full).abs().mean() < 0.5 * error, ((started - full).abs().mean(), error)  # measured: 0.27x
    # each layer: B·A (times the scale) is the best rank-r fit of W - Q (Eckart-Young: the tail singular values)
    weights = load_file(str(tiny64_dir / "model.safetensors"))
    layer = dict(model.named_modules())["base_model.model.model.layers.1.mlp.down_proj"]
    base = layer.get_base_layer()
    with torch.no_grad():
        q = base(torch.eye(base.in_features)).float().T
        residual = weights["model.layers.1.mlp.down_proj.weight"].float() - q
        fitted = layer.scaling["default"] * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    tail = torch.linalg.svdvals(residual)[32:].square().sum().sqrt()
    assert (residual - fitted).norm() == pytest.approx(tail.item(), rel=1e-3)
    assert (residual - fitted).norm() < 0.8 * residual.norm()
    adapters.save(model, tmp_path / "a")
    reloaded = adapters.load(models.load(tiny64_dir, quantization=base_models.FOUR_BIT)[0], tmp_path / "a")
    assert torch.allclose(logits(reloaded, ids), started, atol=1e-5)
    with pytest.raises(ValueError, match="loftq adapter: LoftQ fits LoRA to a 4-bit base's quantization error"):
        adapters.attach(models.load(tiny64_dir)[0], {"method": "loftq", **LORA})
