"""Memory and speed of a quantized base: the same LoRA fine-tune of the embedded model on a bf16 base (bf16 autocast,
frozen weights stored in bf16, as the default run trains) and on a 4-bit nf4 base (QLoRA), each in its own process
(peak RSS is per process), then the evaluation of each adapter's first items. Prints peak RSS (and peak CUDA memory
on a GPU), real tokens/s and their ratios, and what pipeline_lib/planning/estimates.py estimates for the same jobs.

  .venv/bin/python benchmarks/quantization.py --model resources/models/smollm2-135m \
      --data results/data/train/gsm8k_train.jsonl --steps 6
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import LORA

from pipeline_lib.catalog import base_models
from pipeline_lib.planning import estimates
from pipeline_lib.planning.commands import SCRIPTS


def finetune(model, data, out, steps, quantization, device, threads) -> dict:
    training = {"max_steps": steps, "batch_size": 8, "micro_batch_size": 4, "warmup_steps": 0, "cutoff_len": 256,
                "autocast": "bfloat16", "checkpoint_every": None, "group_by_length": True}
    cmd = [sys.executable, str(SCRIPTS / "finetune.py"), "--model", model, "--data", data, "--out", out,
           "--adapter", json.dumps(LORA), "--training", json.dumps(training), "--device", device,
           "--threads", str(threads), "--quantization", quantization]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads((Path(out) / "metrics.json").read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: finetune(args.model, args.data, f"{tmp}/{name}", args.steps, q, args.device, args.threads)
                for name, q in (("bf16", "none"), ("4bit", "4bit"))}
    params = estimates.model_params("smollm2-135m", {"embedded": "smollm2-135m"})
    print(f"{args.model}, LoRA r=32 on q,k,v,up,down, {args.steps} steps of 8 GSM8K examples, {args.device}")
    print("| base | weights in memory (MB) | peak RSS (MB) | peak CUDA (MB) | real tokens/s | loss first -> last | "
          "estimated host / GPU MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, m in runs.items():
        settings = base_models.quantization_settings("4bit" if name == "4bit" else "none")
        estimate = estimates.finetune(params, {**m["training"]}, 64, args.device, settings)
        print(f"| {name} | {m['base_weights_mb']} | {m['peak_rss_mb']} | {m['peak_cuda_mb']} | {m['tokens_per_s']} | "
              f"{m['loss'][0]:.3f} -> {m['loss'][-1]:.3f} | {estimate['mem_mb']} / {estimate['gpu_mem_mb']} |")
    bf16, q4 = runs["bf16"], runs["4bit"]
    print(f"4-bit / bf16: weights {q4['base_weights_mb'] / bf16['base_weights_mb']:.2f}x, "
          f"peak RSS {q4['peak_rss_mb'] / bf16['peak_rss_mb']:.2f}x, "
          f"tokens/s {q4['tokens_per_s'] / bf16['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
