"""How often the precision verdict flips under bursty CPU load: the first probe (version 1: the best of three
256 x 256 matmuls per precision, bf16 when at least as fast) and the second (version 2: one round of 7 pairs)
against ours (pipeline_lib/models/precision.py `measure`: a screen, then the job's step at its model's shapes,
float32 and bf16 interleaved in pairs, more rounds while the ratios are unclear, the median of the pairs), each
measured N times alone and N times beside three bursty single-threaded processes (1-30 ms of work, as long
asleep: pipeline_lib/testing/cpu_load.py), in the same process. Prints each probe's verdicts and flip counts.

  .venv/bin/python benchmarks/precision_under_load.py --trials 40
  ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/precision_under_load.py --trials 20
"""
import argparse
import collections
import math
import statistics
import time

import torch

from pipeline_lib.models import precision
from pipeline_lib.testing import cpu_load


def first_probe(n: int = 256, reps: int = 3) -> str:
    """The version-1 probe, as it was: GFLOP/s of an n x n matmul, best of `reps` after two warm-ups."""
    speed = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        best = math.inf
        for i in range(reps + 2):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start) if i >= 2 else best
        speed[dtype] = 2 * n ** 3 / best / 1e9
    return "bfloat16" if speed[torch.bfloat16] >= speed[torch.float32] else "float32"


def ours(work, rounds: int) -> tuple[str, dict]:
    record = precision.measure(work, rounds=rounds)
    return ("bfloat16" if record["bf16_fast"] else "float32"), record


def trials(n: int, load: bool, works) -> dict:
    verdicts = collections.defaultdict(list)
    spreads = collections.defaultdict(list)
    with cpu_load.bursty() if load else _nothing():
        for _ in range(n):
            verdicts["first probe (v1)"].append(first_probe())
            for work in works:
                for name, rounds in (("ours", precision.ROUNDS), ("one round (v2)", 1)):
                    chosen, record = ours(work, rounds)
                    verdicts[f"{name}, {work.kind}"].append(chosen)
                    spreads[f"{name}, {work.kind}"].append(record.get("spread"))
    return {"verdicts": verdicts, "spreads": spreads}


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    works = [precision.workload("train", 1024), precision.workload("inference", 30)]
    print(f"CPU: {precision.machine_key()['cpu']}, torch capability {precision.machine_key()['capability']}, "
          f"{args.threads} threads; {args.trials} trials each")
    for load in (False, True):
        result = trials(args.trials, load, works)
        for name, chosen in result["verdicts"].items():
            counts = collections.Counter(chosen)
            spreads = [s for s in result["spreads"].get(name, []) if s is not None]
            extra = f", spread median {statistics.median(spreads):.3f} max {max(spreads):.3f}" if spreads else ""
            print(f"{'bursty load' if load else 'alone':11s} {name:30s} {dict(counts)}{extra}")


if __name__ == "__main__":
    main()
