"""Model FLOPs utilization (MFU), as torchtune, PEFT's method comparison and Megatron report efficiency: a job's
model FLOPs per second over its device's peak in the job's precision.

Model FLOPs (planning/estimates.py's formulas): 2 per matmul weight per token a forward pass computes, 4 per frozen
and 6 per trained weight per trained token; attention scores are left out, so MFU is understated, never inflated.
The matmul weights are those of the model's linear layers, the output head included and the input embedding (a
lookup) left out; a quantized weight counts at its full shape. Generation counts its prefill (every prompt token) and
its decoding (every new token after a row's first, which the prefill's last logits give) apart.

Peak: on a GPU the datasheet's dense tensor-core figure for the job's dtype (GPU_PEAKS, keyed by the device name;
an unknown part has none and its MFU is left empty, never guessed); on a CPU the machine's own measured throughput of
a large square matmul in the job's dtype at the job's threads (`cpu_peak`), cached per machine like the precision
verdict (models/precision.py), the fastest of several samples, since a peak is what the machine can do."""
from __future__ import annotations

import hashlib
import json
import os
import time

from pipeline_lib.planning.estimates import generate_flops_per_token, train_flops_per_token

PEAK_VERSION = 1      # part of the cache key
PEAK_N = 2048         # the square matmul a CPU's peak is measured at (smaller where the dtype is slow: PEAK_SAMPLE_S)
PEAK_SAMPLES = 5
PEAK_SAMPLE_S = 0.3   # a sample longer than this at PEAK_N is measured at a smaller n

# Dense (no sparsity) peak FLOP/s from NVIDIA's datasheets: bf16/fp16 on tensor cores, float32 without TF32 (torch's
# default for matmuls). Matched in order against torch.cuda.get_device_name(): the first key contained in the name.
GPU_PEAKS = {
    "H200": {"bfloat16": 989e12, "float16": 989e12, "float32": 67e12},
    "H100 PCIe": {"bfloat16": 756e12, "float16": 756e12, "float32": 51e12},
    "H100": {"bfloat16": 989e12, "float16": 989e12, "float32": 67e12},       # SXM (HBM3)
    "A100": {"bfloat16": 312e12, "float16": 312e12, "float32": 19.5e12},
    "L40S": {"bfloat16": 362e12, "float16": 362e12, "float32": 91.6e12},
    "L4": {"bfloat16": 121e12, "float16": 121e12, "float32": 30.3e12},
    "A10": {"bfloat16": 125e12, "float16": 125e12, "float32": 31.2e12},
    "V100": {"float16": 125e12, "float32": 15.7e12},
    "T4": {"float16": 65e12, "float32": 8.1e12},
}


def matmul_weights(model) -> dict[str, int]:
    """{"frozen", "trainable"}: the weights of the model's linear layers (torch Linear, bitsandbytes' 4/8-bit
    Linear at their full shape, GPT-2's Conv1D), the output head included, split by requires_grad."""
    import torch

    counts = {"frozen": 0, "trainable": 0}
    seen: set[int] = set()
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or id(weight) in seen or not _is_matmul(module):
            continue
        seen.add(id(weight))
        state = getattr(weight, "quant_state", None)
        shape = getattr(state, "shape", None) if state is not None else None
        numel = int(torch.Size(shape).numel()) if shape is not None else weight.numel()
        counts["trainable" if weight.requires_grad else "frozen"] += numel
    return counts


def _is_matmul(module) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"


def generation_flops(weights: dict[str, int], prompt_tokens: int, new_tokens: int, rows: int) -> dict:
    """Prefill (every prompt token) and decoding (each new token after a row's first) FLOPs of greedy generation."""
    per_token = generate_flops_per_token(weights["frozen"] + weights["trainable"])
    return {"prefill": per_token * prompt_tokens, "decode": per_token * max(0, new_tokens - rows)}


def forward_flops(weights: dict[str, int], tokens: int) -> dict:
    return {"forward": generate_flops_per_token(weights["frozen"] + weights["trainable"]) * tokens}


def training_flops(weights: dict[str, int], tokens: int) -> dict:
    return {"training": train_flops_per_token(weights["frozen"], weights["trainable"]) * tokens}


def record(flops: dict[str, float], seconds: dict[str, float] | float, device: str, dtype: str) -> dict:
    """A job's efficiency: its model FLOPs by part, the seconds they took, the achieved FLOP/s, the device's peak in
    `dtype` with its source, and the MFU (overall, and per part where each part was timed apart)."""
    total = sum(flops.values())
    timed = seconds if isinstance(seconds, dict) else {"total": seconds}
    elapsed = sum(timed.values())
    peak = peak_flops(device, dtype)
    achieved = total / elapsed if elapsed > 0 else None
    out = {"model_flops": {k: round(v) for k, v in flops.items()},
           "seconds": {k: round(v, 3) for k, v in timed.items()},
           "dtype": dtype, "achieved_flops_per_s": None if achieved is None else round(achieved),
           "peak_flops_per_s": peak["flops_per_s"], "peak_source": peak["source"],
           "mfu": _ratio(achieved, peak["flops_per_s"])}
    if isinstance(seconds, dict):
        out["mfu_by_part"] = {k: _ratio(flops[k] / s if s > 0 else None, peak["flops_per_s"])
                              for k, s in seconds.items() if k in flops}
    return out


def _ratio(achieved, peak) -> float | None:
    return None if not achieved or not peak else round(achieved / peak, 4)


def peak_flops(device: str, dtype: str) -> dict:
    """{"flops_per_s", "source"} of the job's device in `dtype`: a GPU's datasheet, a CPU's measurement."""
    if str(device).startswith("cuda"):
        import torch

        name = torch.cuda.get_device_name()
        for key, peaks in GPU_PEAKS.items():
            if key in name:
                value = peaks.get(dtype)
                return {"flops_per_s": value, "source": f"datasheet: {key} {dtype} dense" if value else
                        f"{name}: no datasheet figure for {dtype}"}
        return {"flops_per_s": None, "source": f"{name}: not in the datasheet table (models/efficiency.py)"}
    return cpu_peak(dtype)


def cpu_peak(dtype: str) -> dict:
    """This CPU's measured matmul throughput in `dtype` at the current threads (cached per machine, threads and
    dtype; PEFT_BENCH_REPROBE=1 measures again)."""
    import torch

    from pipeline_lib.models import precision

    key = {**precision.machine_key(), "peak_version": PEAK_VERSION, "dtype": dtype,
           "threads": torch.get_num_threads()}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = precision.cache_dir() / f"cpu-peak-{digest}.json"
    found = None if os.environ.get(precision.REPROBE_VARIABLE) == "1" else precision.read_cached(path)
    if found is None:
        found = {**key, **measure_matmul(getattr(torch, dtype))}
        precision.write_cached(path, found)
    return {"flops_per_s": found["flops_per_s"],
            "source": f"measured: {found['n']}-cubed {dtype} matmul, {found['threads']} threads, fastest of "
                      f"{found['samples']}"}


def measure_matmul(dtype, n: int = PEAK_N, samples: int = PEAK_SAMPLES) -> dict:
    """The fastest of `samples` n x n x n matmuls (after a warm-up), as FLOP/s; n is halved while one product
    takes longer than PEAK_SAMPLE_S (bf16 on a CPU without bf16 instructions runs ~80x slower)."""
    import torch

    while True:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        started = time.perf_counter()
        a @ b  # the warm-up, and the size check
        if time.perf_counter() - started <= PEAK_SAMPLE_S or n <= 256:
            break
        n //= 2
    best = float("inf")
    for _ in range(samples):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return {"flops_per_s": round(2 * n ** 3 / best), "n": n, "samples": samples}
