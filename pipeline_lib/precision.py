"""Numerical precision chosen by what the machine runs fast: `auto` (the default of `training.autocast`,
`evaluation.dtype` and a 4-bit base's `compute_dtype`) means bfloat16 where the device computes it natively and
float32 elsewhere; an explicit setting always wins.

Why: bf16 is no speed-up on a CPU without bf16 instructions but a collapse. Measured with torch 2.13 (CPU),
2 threads, a 1024 x 1024 matmul: on an Intel Xeon with AMX-BF16, bf16 1171 GFLOP/s against float32 244; the
same machine under ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2, bf16 0.9 against float32 222; reported on
an AVX2-only AMD EPYC, bf16 0.7 against float32 58.8 (one SmolLM2-135M training step: 32 s in float32, over 400 s
under bf16 autocast).

CUDA: bf16 where `torch.cuda.is_bf16_supported()` (Ampere and newer), else float32. CPU: bf16 where oneDNN
reports bf16 support *and* a short matmul probe finds it at least as fast as float32; the probe's figures are
cached per machine (CPU model, instruction-set flags, torch version, the two ISA variables) so every job of a
run makes the same choice, and recorded in every metrics and score file. PEFT_BENCH_CPU_BF16=1/0 forces the
CPU answer (recorded as forced). Importable without torch: the plan's estimates use `planned`."""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from functools import lru_cache
from pathlib import Path

AUTO = "auto"
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
FORCE_VARIABLE = "PEFT_BENCH_CPU_BF16"
CACHE_VARIABLE = "PEFT_BENCH_CACHE"
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # what decides bf16 speed on x86
PROBE_SIZE, PROBE_REPS = 256, 3  # ~0.1 s even where bf16 runs at 1 GFLOP/s (5 products of 34 MFLOP)


def planned(requested: str, device: str) -> str:
    """The precision a job will most likely choose, before it runs (for memory and time estimates): CUDA bf16,
    CPU float32 (the larger, so the estimate is never short)."""
    if requested != AUTO:
        return requested
    return "bfloat16" if str(device).startswith("cuda") else "float32"


def resolve(requested: str, device) -> tuple[str, dict]:
    """(dtype name, record): the setting itself when explicit, else the device's choice with its evidence."""
    if requested != AUTO:
        return requested, {"requested": requested, "chosen": requested, "device": str(device)}
    record = choose(device)
    return record["chosen"], {"requested": AUTO, **record}


def training_autocast(requested: str, device) -> tuple[str, dict]:
    """`training.autocast` (auto | bfloat16 | none) resolved to bfloat16 or none, with its record."""
    dtype, record = resolve({"none": "float32"}.get(requested, requested), device)
    autocast = "bfloat16" if dtype == "bfloat16" else "none"
    return autocast, {**record, "requested": requested, "chosen": autocast}


def frozen_weights_dtype(autocast: str, quantization: dict | None) -> str | None:
    """How a fine-tune stores its frozen base weights: as bitsandbytes quantized them (None), in bf16 under bf16
    autocast (autocast would cast them on every forward anyway), else float32. The job and its memory estimate
    both ask here."""
    if quantization:
        return None
    return "bfloat16" if autocast == "bfloat16" else "float32"


def evaluation_dtype(dtype: str, quantization: dict | None) -> str:
    """The dtype an evaluation computes in, as requested (`auto` still unresolved): a quantized base's compute
    dtype, else the evaluation's own."""
    return quantization.get("compute_dtype", AUTO) if quantization else dtype


def resolved_quantization(settings: dict | None, device) -> dict | None:
    """A 4-bit base's settings with its compute dtype resolved (8-bit and unquantized: unchanged)."""
    if not settings or settings.get("bits") != 4:
        return settings
    return {**settings, "compute_dtype": resolve(settings["compute_dtype"], device)[0]}


def choose(device) -> dict:
    device = str(device)
    if device.startswith("cuda"):
        import torch

        supported = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        return {"chosen": "bfloat16" if supported else "float32", "device": "cuda",
                "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                "bf16_supported": supported}
    facts = cpu_facts()
    return {"chosen": "bfloat16" if facts["bf16_fast"] else "float32", "device": "cpu", **facts}


def cpu_facts() -> dict:
    """What the CPU does with bf16: reported support, the probe's figures, the verdict; cached per machine."""
    forced = os.environ.get(FORCE_VARIABLE)
    key = machine_key()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"cpu-precision-{digest}.json"
    facts = _read(path)
    if facts is None:
        facts = {**key, **probe()}
        facts["bf16_fast"] = bool(facts["bf16_reported"] and facts["bfloat16_gflops"] >= facts["float32_gflops"])
        _write(path, facts)
    if forced in ("0", "1"):
        facts = {**facts, "bf16_fast": forced == "1", "forced": f"{FORCE_VARIABLE}={forced}"}
    return facts


def machine_key() -> dict:
    """What the probe's answer depends on. The CPU's flags alone are not enough: the two ISA variables make
    torch and oneDNN use fewer instructions than the CPU has."""
    import torch

    return {"cpu": _cpu_model(), "flags": [f for f in CPU_FLAGS if f in _cpu_flags()],
            "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "isa_variables": {v: os.environ[v] for v in ISA_VARIABLES if v in os.environ},
            "bf16_reported": bool(torch.backends.mkldnn.is_available()
                                  and torch.ops.mkldnn._is_mkldnn_bf16_supported())}


def probe(n: int = PROBE_SIZE, reps: int = PROBE_REPS) -> dict:
    """GFLOP/s of an n x n matmul in float32 and in bfloat16, the best of `reps` after two warm-ups (a cold first
    product runs at a fraction of the speed), at the process's threads."""
    import torch

    figures = {"probe": f"{n}x{n} matmul, best of {reps}, {torch.get_num_threads()} threads"}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        best = math.inf
        for i in range(reps + 2):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start) if i >= 2 else best
        figures[f"{str(dtype).split('.')[-1]}_gflops"] = round(2 * n ** 3 / best / 1e9, 1)
    return figures


def describe(record: dict | None, short: bool = False) -> str:
    """One line for tables: e.g. `bfloat16 (auto: cpu AVX512, bf16 matmul 1171 vs float32 244 GFLOP/s)`, or
    `bfloat16 (auto)` when `short`."""
    if not record:
        return "unknown"
    chosen = record["chosen"]
    if record.get("requested") != AUTO or short:
        return f"{chosen} ({'auto' if record.get('requested') == AUTO else 'set'})"
    if record["device"] == "cuda":
        support = "supported" if record["bf16_supported"] else "unsupported"
        return f"{chosen} (auto: {record.get('gpu')}, bf16 {support})"
    basis = f"cpu {record['capability']}, bf16 matmul {record['bfloat16_gflops']:.0f} vs float32 " \
            f"{record['float32_gflops']:.0f} GFLOP/s"
    return f"{chosen} (auto: {basis}{', forced by ' + record['forced'] if record.get('forced') else ''})"


def cache_dir() -> Path:
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "peft-bench"


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, facts: dict) -> None:
    """Best effort: an unwritable cache only costs the next job another probe."""
    from .files import write_json

    try:
        write_json(path, facts)
    except OSError:
        pass
