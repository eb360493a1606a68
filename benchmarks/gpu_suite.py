"""The GPU paths, executed, and the first absolute figures: one script for a lent GPU machine (under 8 minutes
on one H100), writing every figure as JSON into OUT:

  device.json            the device, the precision chosen for it (bf16 where it computes bf16 natively, else
                         float32: models/precision.py), its measured matmul peak at that precision, versions
  cuda_check.json        pipeline_lib/support/cuda.py: adapters on CUDA (4-bit and 8-bit QLoRA when bitsandbytes is
                         installed, bf16 LoRA, a bottleneck adapter: train, save, reload, generate), 2-GPU DDP
  pipeline.json          the tiny pipeline under Snakemake twice, on CPU and with device cuda and --resources gpu=1
                         (two fine-tunes and their evaluations sharing the GPU through the allocator): job log,
                         tables, and the largest accuracy difference between the two
  train_throughput.json  LLaMA-7B shape (random weights, bf16, LoRA r=32 on q,k,v,up,down, cutoff 256,
                         micro-batch 16): ours against transformers.Trainer + peft, real tokens/s, model FLOPs
                         utilisation against the measured peak of the precision both trained in, and ours as the
                         pipeline records it (`efficiency`: MFU against the GPU's datasheet peak), peak memory
  eval_throughput.json   the same shape: the evaluation's greedy loop against upstream's protocol (one item at
                         a time, 4 beams, no cache) on the same prompts and token budget, items/s; ours with its new
                         tokens/s and `efficiency` (prefill and decoding FLOPs, MFU against the datasheet peak)

Random weights built from the config (no download); prompts of random words from the tests' tiny tokenizer.
`--tiny` runs every part at a tiny shape on the CPU (the test suite does, to keep the script working):

  python benchmarks/gpu_suite.py OUT            # on the GPU machine
  python benchmarks/gpu_suite.py OUT --tiny     # anywhere, a few minutes on 2 CPU cores
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench import LORA, flops_per_token, matmul_peak, sync, trainer_baseline

from pipeline_lib import adapters
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.models import efficiency, precision
from pipeline_lib.planning.commands import SCRIPTS
from pipeline_lib.training.loop import tokenize, train

ROOT = Path(__file__).resolve().parent.parent  # the Snakefile and the tests' configs
SHAPES = {  # LLaMA-7B as published; the tiny one runs anywhere
    "llama-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=32, vocab_size=32000),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512),
}


def write(out: Path, name: str, figures: dict) -> dict:
    (out / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"== {name}: {json.dumps(figures, default=str)[:600]}", flush=True)
    return figures


def records(tokenizer, n: int, words: int, seed: int = 0) -> list[dict]:
    """Instruction/response pairs of random words (random weights need no meaning), long enough to fill the cutoff."""
    rng = random.Random(seed)
    vocab = [t for t in tokenizer.get_vocab() if t.isalpha() and len(t) > 2] or ["apple", "pear", "plum"]
    text = lambda k: " ".join(rng.choice(vocab) for _ in range(k))  # noqa: E731
    return [{"instruction": text(words // 2), "input": "", "output": text(words), "answer": "1"} for _ in range(n)]


def random_model(shape: str, device: str, tokenizer, dtype=torch.bfloat16):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=2048, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in bf16 where trained in it: a float32 7B would need twice the memory
    try:
        with torch.device(device):
            return LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)


def train_throughput(out: Path, shape: str, device: str, tokenizer, peak: float, steps: int,
                     autocast: str) -> dict:
    """Ours against Trainer + peft, same model shape, LoRA, examples, micro-batch 16, cutoff 256, both in the
    precision chosen for the device (`autocast`: bfloat16 or none); utilisation against that precision's peak."""

    micro, batch, cutoff = (16, 16, 256) if shape != "tiny" else (4, 8, 64)
    data = records(tokenizer, steps * batch + batch, 300)
    result = {"shape": shape, "device": device, "micro_batch": micro, "batch": batch, "cutoff": cutoff,
              "steps": steps, "peak_flops": peak, "autocast": autocast}

    def fresh():
        model = random_model(shape, device, tokenizer, torch.bfloat16 if autocast == "bfloat16" else torch.float32)
        torch.manual_seed(1)
        return adapters.attach(model, dict(LORA))

    torch.cuda.reset_peak_memory_stats() if device == "cuda" else None
    model = fresh()
    # every example fills the cutoff on purpose (throughput at a fixed length): max_truncated 1.0
    cfg = TrainConfig(max_steps=steps, batch_size=batch, micro_batch_size=micro, warmup_steps=0, cutoff_len=cutoff,
                      max_truncated=1.0, autocast=autocast, group_by_length=True, checkpoint_every=None)
    metrics = train(model, tokenizer, data, cfg, progress=False)
    per_token = flops_per_token(model)
    result["ours"] = {"tokens_per_s": metrics["tokens_per_s"], "mfu": metrics["tokens_per_s"] * per_token / peak,
                      "peak_cuda_mb": metrics["peak_cuda_mb"], "loss": metrics["loss"],
                      # the pipeline's own record: MFU against the datasheet's peak on a GPU (as the field reports)
                      "efficiency": efficiency.record(efficiency.training_flops(efficiency.matmul_weights(model),
                                                                                metrics["tokens"]),
                                                      metrics["wall_time_s"], device, autocast
                                                      if autocast == "bfloat16" else "float32")}
    del model
    torch.cuda.empty_cache() if device == "cuda" else None

    torch.cuda.reset_peak_memory_stats() if device == "cuda" else None
    model = fresh()
    examples = [tokenize(tokenizer, r, cutoff, True) for r in data]
    trainer = trainer_baseline(model, tokenizer, examples, micro=micro, batch=batch, steps=steps,
                               scratch=tempfile.mkdtemp(), device=device, bf16=autocast == "bfloat16")
    rate = trainer["tokens_per_s"]
    result["trainer"] = {"tokens_per_s": rate, "mfu": rate * per_token / peak,
                         "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if device == "cuda" else None,
                         "loss": trainer["loss"]}
    result["ours_over_trainer"] = result["ours"]["tokens_per_s"] / rate
    del model
    torch.cuda.empty_cache() if device == "cuda" else None
    return write(out, "train_throughput", result)


def eval_throughput(out: Path, shape: str, device: str, tokenizer, items: int, upstream_items: int,
                    new_tokens: int) -> dict:
    """Our batched greedy KV-cache generation against upstream's protocol on the same prompts and token budget."""
    from pipeline_lib.catalog import protocols
    from pipeline_lib.catalog.prompts import evaluation_prompt
    from pipeline_lib.evaluation.decoding import generate

    dtype = precision.resolve("auto", device)[0]
    model = random_model(shape, device, tokenizer, getattr(torch, dtype)).eval()
    prompts = [evaluation_prompt(r["instruction"]) for r in records(tokenizer, items, 60, seed=3)]
    sync(device)
    start = time.perf_counter()
    counts = {}  # the evaluation's own greedy loop (random weights rarely meet EOS: about every row runs to the cap)
    generate(model, tokenizer, prompts, batch_size=items, max_new_tokens=new_tokens, counts=counts)
    sync(device)
    seconds = time.perf_counter() - start
    ours = items / seconds
    flops = efficiency.generation_flops(efficiency.matmul_weights(model), counts["prompt_tokens"],
                                        counts["new_tokens"], counts["rows"])
    spent = efficiency.record(flops, seconds, device, dtype)
    budget = {"min_new_tokens": new_tokens}  # upstream's beams: every item generates the same number of tokens
    # upstream's protocol: the `paper` settings' one prompt at a time and beams, without the KV cache as upstream ran
    paper = protocols.settings("paper", {"batch_size": 1, "max_new_tokens": None, "dtype": "auto"}, "math", "alpaca")
    start = time.perf_counter()
    generate(model, tokenizer, prompts[:upstream_items], batch_size=paper["batch_size"], max_new_tokens=new_tokens,
             generation_kwargs={**paper["generation"], **protocols.UPSTREAM_UNCACHED, **budget})
    sync(device)
    upstream = upstream_items / (time.perf_counter() - start)
    del model
    return write(out, "eval_throughput", {
        "shape": shape, "device": device, "new_tokens": new_tokens,
        "ours": {"items": items, "items_per_s": ours, "new_tokens_per_s": counts["new_tokens"] / seconds,
                 "efficiency": spent},
        "upstream_protocol": {"items": upstream_items, "items_per_s": upstream}, "ours_over_upstream": ours / upstream})


def small_model_dir(scratch: Path, tokenizer) -> Path:
    """A small random LLaMA on disk, with the tokenizer, for the scripts that load a model directory."""
    from pipeline_lib.testing.tiny_model import build_model

    directory = scratch / "small-llama"
    build_model(tokenizer, hidden_size=256, intermediate_size=512).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def cuda_check(out: Path, model_dir: Path) -> dict:
    done = subprocess.run([sys.executable, str(SCRIPTS / "cuda_check.py"), str(model_dir)], capture_output=True,
                          text=True, timeout=420)
    lines = [line for line in done.stdout.splitlines() if line.startswith(("OK", "FAIL", "no CUDA"))]
    return write(out, "cuda_check", {"returncode": done.returncode, "results": lines, "stderr": done.stderr[-2000:]})


def _dataset_file(scratch: Path, name: str, rows: list[dict]) -> dict:
    path = scratch / f"{name}.json"
    path.write_text(json.dumps(rows))
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "format": "llm_adapters"}


def pipeline(out: Path, scratch: Path, model_dir: Path, devices: list[str]) -> dict:
    """The tiny pipeline under Snakemake on each device: two fine-tunes and their evaluations (on CUDA sharing one
    GPU through the allocator, --resources gpu=1); the accuracy tables compared."""
    import yaml

    rows = [{"instruction": f"What is {i} plus {i}?", "input": "", "output": f"{i} + {i} = {2 * i}. The answer is "
             f"{2 * i}.", "answer": str(2 * i)} for i in range(1, 25)]
    config = {"models": ["small-llama"], "model_defs": {"small-llama": {"path": str(model_dir)}},
              "datasets": {"sums_train": {**_dataset_file(scratch, "sums_train", rows[:16]), "split": "train",
                                          "answer_type": "number"},
                           "sums": {**_dataset_file(scratch, "sums", rows[16:]), "split": "eval",
                                    "answer_type": "number"}},
              "adapters": {"lora": {"method": "lora", "r": 8, "target_modules": ["q_proj", "v_proj"]},
                           "series": {"method": "series", "bottleneck_size": 16, "target_modules": ["up_proj"]}},
              "train_sets": ["sums_train"], "eval_sets": ["sums"],
              "training": {"max_steps": 4, "batch_size": 4, "micro_batch_size": 2, "warmup_steps": 0,
                           "cutoff_len": 64, "max_truncated": 1.0},  # --tiny's tokenizer spells in short pieces
              "evaluation": {"batch_size": 8, "max_new_tokens": 16, "dtype": "float32"}, "threads": 2}
    result = {}
    for device in devices:
        work = scratch / f"pipeline-{device}"
        work.mkdir()
        (work / "config.yaml").write_text(yaml.safe_dump({**config, "device": device}))
        cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", "4",
               "--configfile", str(work / "config.yaml"), "--replace-workflow-config"]
        cmd += ["--resources", "gpu=1"] if device == "cuda" else []
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        accuracy = work / "results/tables/accuracy.csv"
        result[device] = {"returncode": done.returncode, "wall_s": time.perf_counter() - start,
                          "job_log": [line for line in done.stderr.splitlines() if "rule " in line or "Finished" in
                                      line][-40:],
                          "accuracy": accuracy.read_text() if accuracy.is_file() else done.stderr[-3000:]}
    if len(devices) == 2 and all(result[d]["returncode"] == 0 for d in devices):
        import pandas as pd

        a, b = (pd.read_csv(scratch / f"pipeline-{d}/results/tables/accuracy.csv") for d in devices)
        result["largest accuracy difference (points)"] = float((a["sums"] - b["sums"]).abs().max())
    return write(out, "pipeline", result)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU")
    parser.add_argument("--skip", nargs="*", default=[], help="parts to leave out: cuda_check pipeline train eval")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from pipeline_lib.testing.tiny_model import build_tokenizer

    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    shape = "tiny" if args.tiny else "llama-7b"
    tokenizer = build_tokenizer()
    autocast, chosen = precision.training_autocast("auto", device)
    peak = matmul_peak(device, torch.bfloat16 if autocast == "bfloat16" else torch.float32)
    write(args.out, "device", {"device": device, "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
                               "precision": chosen, "matmul_peak_tflops": peak / 1e12, "torch": torch.__version__,
                               "python": platform.python_version(), "cpus": os.cpu_count()})
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        model_dir = small_model_dir(scratch, tokenizer)
        if "cuda_check" not in args.skip:
            cuda_check(args.out, model_dir)
        if "pipeline" not in args.skip:
            pipeline(args.out, scratch, model_dir, ["cpu", "cuda"] if device == "cuda" else ["cpu"])
        if "train" not in args.skip:
            train_throughput(args.out, shape, device, tokenizer, peak, steps=3 if args.tiny else 4, autocast=autocast)
        if "eval" not in args.skip:
            eval_throughput(args.out, shape, device, tokenizer, items=8 if args.tiny else 32,
                            upstream_items=2, new_tokens=16 if args.tiny else 128)


if __name__ == "__main__":
    main()
