"""What the precision choice and the float32 speed-ups buy on this CPU, baseline and ours in the same process:

  probe        the precision probe's figures (pipeline_lib/precision.py) and its choice
  training     one LoRA micro-batch of the embedded model (4 x 256 tokens, r=32 on q,k,v,up,down, dropout 0.05, eager
               attention) in float32 and under bf16 autocast; the loss with the logits sliced before the cross
               entropy (the earlier formula, which copies them) against the labels shifted instead (ours)
  generation   30 gsm8k prompts x up to 128 new tokens, greedy: the dynamic KV cache (concatenated per step)
               against a static one (ours), in float32 and in bfloat16

Run it natively and as an AVX2-only CPU would (tests/emulate_avx2):

  .venv/bin/python benchmarks/cpu_precision.py --model resources/models/smollm2-135m
  ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=tests/emulate_avx2 \\
      .venv/bin/python benchmarks/cpu_precision.py --model resources/models/smollm2-135m --skip-bf16
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from bench import LORA  # noqa: E402

from pipeline_lib import adapters, models, precision  # noqa: E402
from pipeline_lib.generation import generate  # noqa: E402
from pipeline_lib.prompts import evaluation_prompt  # noqa: E402
from pipeline_lib.training import token_loss_sum  # noqa: E402


def sliced_loss(model, batch):
    """The earlier formula: the logits sliced to the predicting positions, then flattened (a copy)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels.flatten(),
                                             ignore_index=-100, reduction="sum")
    return loss, int((labels != -100).sum())


def micro_batch_seconds(model, loss_fn, bf16: bool, reps: int = 3) -> float:
    ids = torch.randint(100, 40000, (4, 256), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, n = loss_fn(model, batch)
        (loss / n).backward()
    step()
    start = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - start) / reps


def training(model_dir: str, dtypes: list[str]) -> None:
    model, _ = models.load(model_dir)
    model.set_attn_implementation("eager")
    torch.manual_seed(0)
    model = adapters.attach(model, dict(LORA, lora_dropout=0.05)).train()
    for dtype in dtypes:
        old = micro_batch_seconds(model, sliced_loss, dtype == "bfloat16")
        new = micro_batch_seconds(model, token_loss_sum, dtype == "bfloat16")
        print(f"training {dtype}: sliced logits {old:.2f} s, shifted labels {new:.2f} s per micro-batch of 1024 tokens "
              f"({old / new:.2f}x; {1024 / new:.0f} tokens/s)")


def generation(model_dir: str, dtypes: list[str], data: Path) -> None:
    prompts = [evaluation_prompt(r["instruction"]) for r in json.loads(data.read_text())[:30]]
    for dtype in dtypes:
        model, tok = models.load(model_dir)
        model = model.to(getattr(torch, dtype)).eval()
        seconds, responses = {}, {}
        for cache in ("dynamic", "static"):
            original = model.generate

            def with_cache(*args, cache=cache, original=original, **kwargs):
                kwargs.pop("cache_implementation", None)
                return original(*args, **kwargs, **({"cache_implementation": "static"} if cache == "static" else {}))
            model.generate = with_cache
            start = time.perf_counter()
            responses[cache] = generate(model, tok, prompts, batch_size=30, max_new_tokens=128,
                                        stop_strings=["### Instruction:"])
            seconds[cache] = time.perf_counter() - start
            model.generate = original
        same = sum(a == b for a, b in zip(responses["dynamic"], responses["static"]))
        print(f"generation {dtype}: dynamic cache {seconds['dynamic']:.1f} s, static {seconds['static']:.1f} s "
              f"({seconds['dynamic'] / seconds['static']:.2f}x), {same}/30 responses identical")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/LLM-Adapters/dataset/gsm8k/test.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-bf16", action="store_true", help="bf16 on a CPU without it takes minutes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chosen, record = precision.resolve("auto", "cpu")
    print(f"probe: {precision.describe(record)}; bf16 reported by oneDNN: {record['bf16_reported']}")
    dtypes = ["float32"] + ([] if args.skip_bf16 else ["bfloat16"])
    training(args.model, dtypes)
    generation(args.model, dtypes, args.data)


if __name__ == "__main__":
    main()
