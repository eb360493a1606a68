import dataclasses
import math

import pytest
import torch

from pipeline_lib import adapters
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.training.loop import TrainingError, collate, token_loss_sum, tokenize, train

RECORDS = [{"instruction": f"How many apples are {i} and {i + 1}?", "input": "", "output": f"The answer is {2 * i + 1}.",
            "answer": str(2 * i + 1)} for i in range(12)]
LORA = {"method": "lora", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj"]}


def test_tokenize_appends_eos_and_masks_prompt_when_asked(tiny):
    _, tok = tiny
    full = tokenize(tok, RECORDS[0], 256, train_on_inputs=True)
    assert full["input_ids"][-1] == tok.eos_token_id and full["labels"] == full["input_ids"]
    masked = tokenize(tok, RECORDS[0], 256, train_on_inputs=False)
    n_masked = masked["labels"].count(-100)
    assert 0 < n_masked < len(masked["labels"]) and masked["labels"][n_masked:] == full["input_ids"][n_masked:]
    short = tokenize(tok, RECORDS[0], 8, train_on_inputs=True)
    assert len(short["input_ids"]) == 8 and short["input_ids"][-1] != tok.eos_token_id  # truncated: no EOS


def test_loss_ignores_padding(tiny):
    model, tok = tiny
    a, b = (tokenize(tok, r, 256, True) for r in RECORDS[:2])
    alone_sum, alone_n = token_loss_sum(model, collate([a], tok.pad_token_id))
    padded_sum, padded_n = token_loss_sum(model, collate([a, b], tok.pad_token_id))
    other_sum, other_n = token_loss_sum(model, collate([b], tok.pad_token_id))
    assert padded_n == alone_n + other_n
    torch.testing.assert_close(padded_sum, alone_sum + other_sum, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind, schedule", [("linear", "get_linear_schedule_with_warmup"),
                                            ("cosine", "get_cosine_schedule_with_warmup")])
def test_each_step_uses_the_transformers_schedule(tiny, kind, schedule):
    """The rate each optimizer step used, against transformers' own schedule function at that step (an
    off-by-one in when the scheduler steps would shift every rate)."""
    import transformers

    model, tok = tiny
    model = adapters.attach(model, LORA)
    cfg = TrainConfig(max_steps=7, batch_size=4, micro_batch_size=2, warmup_steps=3, learning_rate=1e-3,
                      lr_scheduler=kind, checkpoint_every=None)
    used = train(model, tok, RECORDS, cfg, progress=False)["learning_rate"]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    reference = getattr(transformers, schedule)(optimizer, num_warmup_steps=3, num_training_steps=7)
    expected = []
    for _ in range(7):
        expected.append(reference.get_last_lr()[0])
        optimizer.step()
        reference.step()
    assert used == pytest.approx(expected, abs=1e-15) and used[0] == 0.0 and max(used) == pytest.approx(1e-3)


def test_gradient_norm_is_clipped_before_each_step_and_recorded(tiny_dir, monkeypatch):
    seen = []
    step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):  # the gradient norm the optimizer is given
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        seen.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    metrics = short_run(tiny_dir, max_grad_norm=0.05, warmup_steps=0)
    assert min(metrics["grad_norm"]) > 0.05  # recorded before clipping, as Trainer logs it
    assert seen == pytest.approx([0.05] * 3, rel=1e-4)
    seen.clear()
    assert short_run(tiny_dir, max_grad_norm=None, warmup_steps=0)["grad_norm"][0] == pytest.approx(seen[0], rel=1e-5)


def test_training_lowers_the_loss_and_reports_metrics(tiny):
    model, tok = tiny
    model = adapters.attach(model, LORA)
    cfg = TrainConfig(max_steps=12, learning_rate=5e-3, batch_size=4, micro_batch_size=2, warmup_steps=1)
    metrics = train(model, tok, RECORDS, cfg, progress=False)
    assert metrics["steps"] == 12 and len(metrics["loss"]) == 12
    assert metrics["loss"][-1] < metrics["loss"][0]
    assert metrics["tokens"] > 0 and metrics["tokens_per_s"] > 0 and metrics["peak_rss_mb"] > 0


@pytest.mark.parametrize("spec, lr", [
    ({"method": "series", "bottleneck_size": 8}, 1e-2),
    ({"method": "prefix_tuning", "num_virtual_tokens": 4}, 1e-2),
    ({"method": "prompt_tuning", "num_virtual_tokens": 4}, 0.3),  # prompt tuning wants a large rate
    ({"method": "adalora", "init_r": 4, "target_r": 2, "total_step": 8, "target_modules": ["q_proj", "v_proj"]}, 1e-2),
])
def test_other_methods_train(tiny, spec, lr):
    model, tok = tiny
    model = adapters.attach(model, spec)
    cfg = TrainConfig(max_steps=8, learning_rate=lr, batch_size=4, micro_batch_size=2, warmup_steps=0)
    losses = train(model, tok, RECORDS, cfg, progress=False)["loss"]
    assert sum(losses[-3:]) < sum(losses[:3])


def test_same_seed_gives_identical_adapter(tiny_dir):
    from pipeline_lib import models

    def run():
        model, tok = models.load(tiny_dir)
        torch.manual_seed(123)
        model = adapters.attach(model, LORA)
        train(model, tok, RECORDS, TrainConfig(max_steps=3, batch_size=4, micro_batch_size=2), progress=False)
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    first, second = run(), run()
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_epochs_set_the_number_of_steps(tiny):
    model, tok = tiny
    model = adapters.attach(model, LORA)
    metrics = train(model, tok, RECORDS, TrainConfig(epochs=2, batch_size=4, micro_batch_size=4, warmup_steps=0),
                    progress=False)
    assert metrics["steps"] == 2 * math.ceil(len(RECORDS) / 4)


def test_bad_training_input_fails_clearly(tiny):
    model, tok = tiny
    with pytest.raises(TrainingError, match="empty"):
        train(model, tok, [], TrainConfig(), progress=False)
    with pytest.raises(TrainingError, match="not a multiple"):
        train(model, tok, RECORDS, TrainConfig(batch_size=6, micro_batch_size=4), progress=False)
    with pytest.raises(TrainingError, match="no trainable parameters"):
        for p in model.parameters():
            p.requires_grad_(False)
        train(model, tok, RECORDS, TrainConfig(), progress=False)


def test_nan_loss_stops_naming_the_step(tiny):
    model, tok = tiny
    model = adapters.attach(model, LORA)
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).fill_(float("nan"))
    with pytest.raises(TrainingError, match="at step 1"):
        train(model, tok, RECORDS, TrainConfig(max_steps=2, batch_size=4, micro_batch_size=2), progress=False)


def short_run(tiny_dir, prepare=None, **options) -> dict:
    """Metrics of 3 steps on a freshly loaded tiny model with a seeded LoRA; `prepare(model)` runs before."""
    from pipeline_lib import models

    model, tok = models.load(tiny_dir)
    torch.manual_seed(5)
    model = adapters.attach(model, LORA)
    if prepare:
        prepare(model)
    cfg = TrainConfig(max_steps=3, batch_size=4, micro_batch_size=2, learning_rate=1e-2, **options)
    return train(model, tok, RECORDS, cfg, progress=False)


def test_gradient_checkpointing_gives_the_same_training(tiny_dir):
    def run(checkpointing):
        return short_run(tiny_dir, gradient_checkpointing=checkpointing)["loss"]

    assert run(True) == pytest.approx(run(False), rel=1e-5)


def test_packed_loss_equals_unpacked(tiny):
    from pipeline_lib.training.loop import collate_packed

    model, tok = tiny
    examples = [tokenize(tok, r, 256, train_on_inputs=i % 2 == 0) for i, r in enumerate(RECORDS[:4])]
    packed_sum, packed_n = token_loss_sum(model, collate_packed(examples))
    alone = [token_loss_sum(model, collate([e], tok.pad_token_id)) for e in examples]
    assert packed_n == sum(n for _, n in alone)
    torch.testing.assert_close(packed_sum, sum(s for s, _ in alone), rtol=1e-5, atol=1e-4)
    padded_sum, _ = token_loss_sum(model, collate(examples, tok.pad_token_id))
    torch.testing.assert_close(packed_sum, padded_sum, rtol=1e-5, atol=1e-4)


def test_packed_training_matches_padded_training(tiny_dir):
    def run(packing):
        return short_run(tiny_dir, packing=packing)["loss"]

    assert run(True) == pytest.approx(run(False), rel=1e-4)


def test_validation_split_losses_and_best_checkpoint(tiny):
    from pipeline_lib.training.loop import split_validation, validation_loss

    model, tok = tiny
    model = adapters.attach(model, LORA)
    cfg = TrainConfig(max_steps=6, batch_size=4, micro_batch_size=2, learning_rate=5e-2, warmup_steps=0,
                      val_set_size=4, eval_every=2)
    metrics = train(model, tok, RECORDS, cfg, progress=False)
    val = metrics["validation"]
    assert val["steps"] == [2, 4, 6] and len(val["loss"]) == 3
    assert val["best_step"] == val["steps"][val["loss"].index(min(val["loss"]))]
    examples = [tokenize(tok, r, 256, True) for r in RECORDS]
    train_part, held_out = split_validation(examples, 4, cfg.seed)
    assert len(train_part) == 8 and len(held_out) == 4 and all(e not in train_part for e in held_out)
    # the model ends with the best weights: its validation loss is the best one recorded
    resolved = dataclasses.replace(cfg, autocast=metrics["precision"]["chosen"])  # what train() resolved `auto` to
    assert validation_loss(model, held_out, resolved, tok.pad_token_id) == pytest.approx(min(val["loss"]), abs=1e-5)
    with pytest.raises(TrainingError, match="val_set_size 12 leaves no training examples"):
        split_validation(examples, 12, 0)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_packed_loss_equals_unpacked_under_each_attention_kernel(tiny, attention):
    from pipeline_lib.training.loop import collate_packed, set_attention

    model, tok = tiny
    assert set_attention(model, attention, torch.device("cpu")) == attention
    examples = [tokenize(tok, r, 256, True) for r in RECORDS[:3]]
    packed_sum, _ = token_loss_sum(model, collate_packed(examples))
    alone = sum(token_loss_sum(model, collate([e], tok.pad_token_id))[0] for e in examples)
    torch.testing.assert_close(packed_sum, alone, rtol=1e-5, atol=1e-4)


def test_attention_kernels_train_alike(tiny_dir):
    def run(attention):
        metrics = short_run(tiny_dir, attention=attention)
        assert metrics["attention"] == attention
        return metrics["loss"]

    assert run("eager") == pytest.approx(run("sdpa"), rel=1e-4)


def test_length_grouping_cuts_padding_and_keeps_every_example_once():
    from pipeline_lib.training.loop import epoch_order

    lengths = [5, 90, 7, 88, 6, 91, 8, 89]
    order = epoch_order(lengths, torch.Generator().manual_seed(0), True, chunk=8)
    assert sorted(order) == list(range(8))
    pairs = [order[i:i + 2] for i in range(0, 8, 2)]
    padded = sum(2 * max(lengths[j] for j in p) for p in pairs)
    assert padded - sum(lengths) <= 8  # short rows batched with short ones, long with long
    assert epoch_order(lengths, torch.Generator().manual_seed(0), False, 8) != order


def test_frozen_linears_cast_to_bf16_train_the_same_under_autocast(tiny_dir):
    from pipeline_lib.training.loop import cast_frozen_linears

    def cast(model):
        assert cast_frozen_linears(model) > 0
        assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)

    def run(with_cast):
        return short_run(tiny_dir, cast if with_cast else None, autocast="bfloat16")["loss"]

    assert run(True) == pytest.approx(run(False), rel=1e-3)


def test_examples_cut_at_the_cutoff_are_counted_and_too_many_stop_the_fine_tune(tiny):
    """Every fine-tune records how many examples reached cutoff_len and how many kept no label; past max_truncated
    of the set it stops, naming the counts and the settings."""
    model, tok = tiny
    model = adapters.attach(model, {"method": "lora", "r": 2, "target_modules": ["q_proj"]})
    lengths = [len(tokenize(tok, r, 10_000, True)["input_ids"]) for r in RECORDS]
    cutoff = sorted(lengths)[len(lengths) // 2]  # half the examples reach it
    cfg = TrainConfig(max_steps=1, batch_size=4, micro_batch_size=2, cutoff_len=cutoff, max_truncated=0.9,
                      checkpoint_every=None)
    cut = train(model, tok, RECORDS, cfg, progress=False)["truncation"]
    assert cut == {"examples": len(RECORDS), "cut_at_cutoff": sum(n >= cutoff for n in lengths), "no_label": 0}
    with pytest.raises(TrainingError, match=rf"\d+ of {len(RECORDS)} training examples reach cutoff_len {cutoff}.* "
                                            r"more than max_truncated 0.2"):
        train(model, tok, RECORDS, dataclasses.replace(cfg, max_truncated=0.2), progress=False)
    masked = dataclasses.replace(cfg, train_on_inputs=False, cutoff_len=4, max_truncated=1.0)
    assert train(model, tok, RECORDS, masked, progress=False)["truncation"]["no_label"] == len(RECORDS)
