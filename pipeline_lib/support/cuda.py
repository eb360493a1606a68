"""GPU check, a few minutes on one CUDA device: quantized (8-bit, 4-bit nf4) base + LoRA trains, saves,
reloads with identical logits, and generates; plus bf16 LoRA and a bottleneck adapter on CUDA.
On a machine without CUDA it says so and exits 0.  Usage: python scripts/cuda_check.py MODEL_DIR"""
import sys
import tempfile
import time

import torch

from pipeline_lib import adapters, models
from pipeline_lib.catalog import base_models
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.evaluation.decoding import generate
from pipeline_lib.training.loop import train

RECORDS = [{"instruction": f"What is {i} plus {i}?", "input": "",
            "output": f"{i} + {i} = {2 * i}. The answer is {2 * i}."} for i in range(16)]
LORA = {"method": "lora", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj", "up_proj", "down_proj"]}


def case(model_dir, label, quantization, spec, dtype="float32"):
    quantization = base_models.quantization_settings(quantization)
    start = time.time()
    model, tok = models.load(model_dir, dtype=dtype, device="cuda", quantization=quantization)
    model = adapters.attach(model, spec)
    metrics = train(model, tok, RECORDS, TrainConfig(max_steps=4, batch_size=8, micro_batch_size=4, warmup_steps=0,
                                                     autocast="bfloat16"), progress=False)
    ids = tok(["What is 3 plus 3?"], return_tensors="pt").to("cuda")
    with torch.no_grad():
        expected = model(**ids).logits.float()
    with tempfile.TemporaryDirectory() as tmp:
        adapters.save(model, tmp)
        fresh, _ = models.load(model_dir, dtype=dtype, device="cuda", quantization=quantization)
        reloaded = adapters.load(fresh, tmp)
        with torch.no_grad():
            diff = (reloaded(**ids).logits.float() - expected).abs().max().item()
    text = generate(reloaded, tok, ["What is 3 plus 3?"], max_new_tokens=16)[0]
    ok = diff < 1e-3 and all(map(lambda x: x == x, metrics["loss"]))
    print(f"{'OK ' if ok else 'FAIL'} {label}: loss {metrics['loss'][0]:.3f} -> {metrics['loss'][-1]:.3f}, "
          f"reload max|Δ| {diff:.1e}, peak {metrics['peak_cuda_mb']} MB, {time.time() - start:.1f} s, {text[:40]!r}")
    return ok


def data_parallel(model_dir) -> bool:
    """The fine-tune entry point on 2 GPUs under torchrun (NCCL) against 1 GPU: same losses, same adapter."""
    import json
    import subprocess
    from pathlib import Path

    from safetensors.torch import load_file

    from pipeline_lib.planning.commands import SCRIPTS
    from pipeline_lib.runtime.gpu import launcher

    if torch.cuda.device_count() < 2:
        print("SKIP data-parallel: one visible GPU (its CPU twin: tests/training/test_data_parallel.py)")
        return True
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
        outs = []
        for n in (1, 2):
            out = Path(tmp) / f"gpus{n}"
            cmd = [sys.executable, *launcher(n), str(SCRIPTS / "finetune.py"),
                   "--model", model_dir, "--data", str(data), "--out", str(out), "--device", "cuda",
                   "--adapter", json.dumps({**LORA, "lora_dropout": 0.0}),
                   "--training", json.dumps({"max_steps": 3, "batch_size": 8, "micro_batch_size": 2,
                                             "warmup_steps": 0, "checkpoint_every": None})]
            subprocess.run(cmd, check=True, capture_output=True)
            outs.append(out)
        a, b = (load_file(o / "adapter_model.safetensors") for o in outs)
        diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
        losses = [json.loads((o / "metrics.json").read_text())["loss"] for o in outs]
    ok = diff < 1e-3
    print(f"{'OK ' if ok else 'FAIL'} data-parallel 2 GPUs vs 1: adapter max|Δ| {diff:.1e}, losses {losses}")
    return ok


def check_all(model_dir: str) -> int:
    """Every case on this machine's CUDA device (scripts/cuda_check.py); 0 when all passed (or there is no device)."""
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here (the CPU paths, quantized ones included, are in the tests)")
        return 0
    results = [case(model_dir, "4-bit nf4 + LoRA (QLoRA)", "4bit", LORA),
               case(model_dir, "8-bit + LoRA", "8bit", LORA),
               case(model_dir, "bf16 + LoRA", "none", LORA, dtype="bfloat16"),
               case(model_dir, "fp32 + series", "none", {"method": "series", "bottleneck_size": 16}),
               data_parallel(model_dir)]
    return 0 if all(results) else 1
