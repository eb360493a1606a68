"""What the benchmarks share: the LoRA they train (upstream's LLaMA math targets), the matmul peak a rate is
measured against, training FLOPs per token, and upstream's training recipe (transformers Trainer + peft) as the
baseline. A benchmark run as a script finds it beside itself (Python puts a script's folder on sys.path)."""
from __future__ import annotations

import time

import torch

# r=32, alpha 64 on q,k,v,up,down: LLM-Adapters' published LLaMA math LoRA
LORA = {"method": "lora", "r": 32, "lora_alpha": 64, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]}


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: str = "cpu", dtype=torch.float32, n: int | None = None, reps: int = 10) -> float:
    """FLOP/s of an n x n matmul in `dtype` after warm-ups: the device's practical ceiling (n 8192 on CUDA, 1024 on
    CPU unless given)."""
    n = n or (8192 if str(device).startswith("cuda") else 1024)
    a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def flops_per_token(model) -> float:
    """Training FLOPs per token of this model: pipeline_lib/models/efficiency.py's count of its frozen and trainable
    matmul weights, planning/estimates.py's formula."""
    from pipeline_lib.models import efficiency

    return efficiency.training_flops(efficiency.matmul_weights(model), 1)["training"]


def trainer_baseline(model, tokenizer, examples: list[dict], *, micro: int, batch: int, steps: int, scratch,
                     device: str = "cpu", bf16: bool = False) -> dict:
    """Upstream's recipe (LLM-Adapters finetune.py): transformers Trainer, DataCollatorForSeq2Seq padding each
    micro-batch to its longest row (a multiple of 8). `examples`: tokenized rows. Real (non-pad) tokens/s and the
    loss per step."""
    import transformers

    real = []
    pad = transformers.DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=8, return_tensors="pt", padding=True)

    def collator(features):
        padded = pad(features)
        real.append(int(padded["attention_mask"].sum()))
        return padded

    args = transformers.TrainingArguments(
        output_dir=str(scratch), per_device_train_batch_size=micro, gradient_accumulation_steps=batch // micro,
        max_steps=steps, learning_rate=3e-4, warmup_steps=0, logging_steps=1, save_strategy="no", report_to=[],
        bf16=bf16, use_cpu=str(device) == "cpu", dataloader_num_workers=0, disable_tqdm=True, seed=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=examples, data_collator=collator)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    return {"tokens_per_s": sum(real) / wall, "loss": [h["loss"] for h in trainer.state.log_history if "loss" in h]}
