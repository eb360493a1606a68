"""Bursty CPU-bound processes beside a measurement: each computes for a random 1-30 ms and then sleeps as long, the
load under which a short precision probe was seen to flip (other jobs, a compiler, a browser). Used by the
precision tests and benchmarks/precision_under_load.py; no job imports it."""
from __future__ import annotations

import contextlib
import multiprocessing
import random
import time


def _burst_forever(seed: int, low_s: float, high_s: float) -> None:
    rng = random.Random(seed)
    while True:
        busy = rng.uniform(low_s, high_s)
        end = time.perf_counter() + busy
        x = 0
        while time.perf_counter() < end:
            x += 1
        time.sleep(busy)


@contextlib.contextmanager
def bursty(processes: int = 3, low_s: float = 0.001, high_s: float = 0.03, seed: int = 0):
    """Run `processes` single-threaded bursty processes while the block runs."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_burst_forever, args=(seed + i, low_s, high_s), daemon=True)
               for i in range(processes)]
    for w in workers:
        w.start()
    try:
        time.sleep(0.2)  # every worker running before the block measures anything
        yield workers
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.join(5)
