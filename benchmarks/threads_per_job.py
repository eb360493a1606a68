"""Two one-thread jobs against one two-thread job: how much work two cores finish either way.

The pipeline's jobs run with `threads` each (config.yaml: 1), and Snakemake runs as many at once as `--cores`
holds. This times the same total work both ways on the machine it runs on, alternating which goes first each
round: one worker process at 2 threads doing 2N steps, against two worker processes at 1 thread doing N steps each
at the same time (each loads its model and warms up first; the clock runs from a common start to the last
worker's end). Work, on a model directory of the pipeline's (resources/models/<model>):

    train     a LoRA training step (the default run's adapter: r 32 on q, k, v, up, down; eager attention, as the
              fine-tune runs on a CPU), 4 sequences of 256 tokens
    forward   the forgetting job's pass: 8 windows of 256 tokens, logits and cross-entropy
    decode    decoding steps of 128 rows over a 250-token KV cache (the evaluate job's step)

Prints each way's steps per second and the ratio, and whether a step's result is bit-for-bit the same at 1 and 2
threads (the decoding attention splits its work over the threads; training and full-sequence passes do not).

  .venv/bin/python benchmarks/threads_per_job.py --model resources/models/smollm2-135m --work train --dtype float32
"""
import argparse
import hashlib
import json
import subprocess
import sys
import time


def worker(args):
    import torch

    torch.set_num_threads(args.worker)
    step, digest = _work(args.work, args.model, getattr(torch, args.dtype))
    step()
    print(json.dumps({"ready": True, "digest": digest()}), flush=True)
    sys.stdin.readline()  # the common start
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)


def _work(kind, model_dir, dtype):
    """(one step, a digest of one step's result)."""
    import torch
    from bench import LORA

    from pipeline_lib import adapters, models
    from pipeline_lib.training.loop import set_attention

    model, _ = models.load(model_dir)
    torch.manual_seed(0)
    vocab = model.config.vocab_size
    if kind == "train":
        model = adapters.attach(model, dict(LORA)).train()
        set_attention(model, "auto", torch.device("cpu"))  # eager on a CPU, as the fine-tune
        ids = torch.randint(0, vocab, (4, 256))
        autocast = dtype != torch.float32

        def step():
            with torch.autocast("cpu", dtype=dtype, enabled=autocast):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    else:
        model = model.to(dtype).eval()
        if kind == "forward":
            ids = torch.randint(0, vocab, (8, 256))

            @torch.inference_mode()
            def step():
                return model(input_ids=ids, labels=ids).logits
        else:
            ids = torch.randint(0, vocab, (128, 251))
            with torch.inference_mode():
                cache = model(input_ids=ids[:, :250], use_cache=True, logits_to_keep=1).past_key_values

            @torch.inference_mode()
            def step():
                out = model(input_ids=ids[:, 250:], past_key_values=cache, use_cache=True).logits
                cache.crop(-1)
                return out

    def digest():
        return hashlib.sha256(step().detach().float().numpy().tobytes()).hexdigest()[:16]
    return step, digest


def timed(args, threads: int, workers: int, steps: int) -> tuple[float, list[str]]:
    command = [sys.executable, __file__, "--model", args.model, "--work", args.work, "--dtype", args.dtype,
               "--steps", str(steps), "--worker", str(threads)]
    procs = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              stderr=subprocess.DEVNULL) for _ in range(workers)]
    digests = [json.loads(p.stdout.readline())["digest"] for p in procs]
    started = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        json.loads(p.stdout.readline())
        p.wait()
    return time.perf_counter() - started, digests


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--work", choices=["train", "forward", "decode"], default="train")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--steps", type=int, default=4, help="steps per one-thread worker (the two-thread one: 2x)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    ways = {"one job, 2 threads": (2, 1, 2 * args.steps), "two jobs, 1 thread each": (1, 2, args.steps)}
    seconds = {way: 0.0 for way in ways}
    digests = {}
    for r in range(args.rounds):
        for way in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
            s, digests[way] = timed(args, *ways[way])
            seconds[way] += s
    work = 2 * args.steps * args.rounds
    print(f"{args.work}, {args.dtype}, {args.model}; {work} steps each way over {args.rounds} rounds")
    print("| way | s | steps/s |")
    print("| --- | ---: | ---: |")
    for way in ways:
        print(f"| {way} | {seconds[way]:.1f} | {work / seconds[way]:.3f} |")
    one, two = digests.values()
    print(f"two one-thread jobs finish {seconds['one job, 2 threads'] / seconds['two jobs, 1 thread each']:.2f}x the "
          f"work per second; a step's result at 1 and 2 threads: {'identical' if one[0] == two[0] else 'differs'}")


if __name__ == "__main__":
    main()
