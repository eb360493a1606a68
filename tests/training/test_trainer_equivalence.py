"""Our training loop against transformers.Trainer + peft with upstream LLM-Adapters' recipe (finetune.py): the
same LoRA from the same seed, AdamW, linear warmup then decay, gradient clipping (at 0.15 here, so that it acts; Trainer's default 1.0 is the pipeline's),
float32, no dropout, the file's order, no length grouping. Padding both ways: upstream's (its collator pads on
the left to a multiple of 8, `padding_side: left` here) and ours (right). Per-step losses, learning rates and
gradient norms, and the final adapter weights, must agree.

Tolerance: 1e-4 relative on losses and rates, 1e-3 on gradient norms, 1e-4 absolute on weights. Measured here
(12 steps): largest loss difference 8e-7 (our losses are stored to 6 decimals), largest weight difference 3e-8."""
import json

import pytest
import torch

from pipeline_lib import adapters, models
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.training.loop import tokenize, train

STEPS, BATCH, MICRO, WARMUP, LR, CUTOFF = 12, 4, 2, 3, 2e-2, 640  # long enough that lengths vary: padding
CLIP = 0.15  # within this tiny model's gradient norms (0.05-0.3 here), so clipping acts on some steps, not on others
LORA = {"method": "lora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj", "up_proj"]}


@pytest.fixture(scope="module")
def records(data_mirror):
    from pipeline_lib.catalog.datasets import DATASETS
    from pipeline_lib.data.loaders import load_gsm8k_jsonl

    path = data_mirror / DATASETS["gsm8k_train"].source.relpath
    return load_gsm8k_jsonl(path, DATASETS["gsm8k_train"])[:STEPS * BATCH]


def _model(tiny_dir):
    model, tokenizer = models.load(tiny_dir)
    torch.manual_seed(7)  # the same initial adapter on both sides
    return adapters.attach(model, LORA), tokenizer


def _adapter(model) -> dict[str, torch.Tensor]:
    return {n.replace(".default", ""): p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def run_ours(tiny_dir, records, padding_side):
    model, tokenizer = _model(tiny_dir)
    cfg = TrainConfig(padding_side=padding_side, max_steps=STEPS, batch_size=BATCH, micro_batch_size=MICRO, warmup_steps=WARMUP,
                      learning_rate=LR, cutoff_len=CUTOFF, shuffle=False, group_by_length=False, attention="sdpa",
                      checkpoint_every=None, max_grad_norm=CLIP, autocast="float32")  # float32, as the Trainer here
    metrics = train(model, tokenizer, records, cfg, progress=False)
    return metrics, _adapter(model)


def run_trainer(tiny_dir, records, tmp_path, padding_side):
    import transformers
    from datasets import Dataset

    model, tokenizer = _model(tiny_dir)
    tokenizer.padding_side = padding_side  # upstream's finetune.py sets "left"
    examples = Dataset.from_list([tokenize(tokenizer, r, CUTOFF, train_on_inputs=True) for r in records])
    logged = []

    class Log(transformers.TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                logged.append(logs)

    trainer = transformers.Trainer(
        model=model, train_dataset=examples, callbacks=[Log()],
        args=transformers.TrainingArguments(
            output_dir=str(tmp_path), per_device_train_batch_size=MICRO, gradient_accumulation_steps=BATCH // MICRO,
            warmup_steps=WARMUP, max_steps=STEPS, learning_rate=LR, optim="adamw_torch", logging_steps=1,
            max_grad_norm=CLIP, save_strategy="no", report_to=[], train_sampling_strategy="sequential", use_cpu=True,
            dataloader_num_workers=0, seed=7),
        data_collator=transformers.DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=8, return_tensors="pt",
                                                          padding=True))
    trainer.train()
    return logged, _adapter(model)


@pytest.mark.slow
@pytest.mark.parametrize("padding_side", ["left", "right"])  # upstream's, ours
def test_our_loop_trains_as_upstreams_trainer(tiny_dir, records, tmp_path, padding_side):
    ours, ours_weights = run_ours(tiny_dir, records, padding_side)
    logged, theirs_weights = run_trainer(tiny_dir, records, tmp_path, padding_side)
    assert len(logged) == len(ours["loss"]) == STEPS
    theirs_loss = [log["loss"] for log in logged]
    theirs_lr = [log["learning_rate"] for log in logged]
    theirs_norm = [log["grad_norm"] for log in logged]
    assert 2 <= sum(n > CLIP for n in ours["grad_norm"]) <= STEPS - 2  # clipping acts on some steps, not all
    figures = {"max loss diff": max(abs(a - b) for a, b in zip(ours["loss"], theirs_loss)),
               "max weight diff": max((ours_weights[k] - theirs_weights[k]).abs().max().item() for k in ours_weights)}
    print(json.dumps({"padding": padding_side, **figures, "ours": ours["loss"], "trainer": theirs_loss}))
    assert ours["loss"] == pytest.approx(theirs_loss, rel=1e-4)
    assert ours["learning_rate"] == pytest.approx(theirs_lr, rel=1e-4, abs=1e-12)
    assert ours["grad_norm"] == pytest.approx(theirs_norm, rel=1e-3)
    assert ours_weights.keys() == theirs_weights.keys()
    assert figures["max weight diff"] < 1e-4
    assert ours["loss"][-1] < ours["loss"][0]  # it trained
