"""The precision vocabulary, torch-free: `auto` (decided per job by pipeline_lib.models.precision), the dtype a job
is planned with before it runs, how a fine-tune stores its frozen weights, what an evaluation computes in, and how
a recorded choice reads in a table."""
from __future__ import annotations

AUTO = "auto"
ALIASES = {"none": "float32"}  # training.autocast's former name for float32, still read


def canonical(name: str) -> str:
    """One vocabulary for every precision setting: auto, bfloat16, float32 (and float16 where a setting allows it)."""
    return ALIASES.get(name, name)


def planned(requested: str, device: str) -> str:
    """The precision a job will most likely choose, before it runs (for memory and time estimates): CUDA bf16,
    CPU float32 (the larger, so the estimate is never short)."""
    if requested != AUTO:
        return canonical(requested)
    return "bfloat16" if str(device).startswith("cuda") else "float32"


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


def describe(record: dict | None, short: bool = False) -> str:
    """One line for tables: e.g. `bfloat16 (auto: cpu AVX512, train step 1.62x faster in bf16 ...)`, or
    `bfloat16 (auto)` when `short`."""
    if not record:
        return "unknown"
    chosen = record["chosen"]
    if record.get("requested") != AUTO or short:
        return f"{chosen} ({'auto' if record.get('requested') == AUTO else 'set'})"
    if record["device"] == "cuda":
        support = "supported" if record["bf16_supported"] else "unsupported"
        return f"{chosen} (auto: {record.get('gpu')}, bf16 {support})"
    if "basis" not in record:  # a record of the first probe (version 1)
        basis = f"bf16 matmul {record['bfloat16_gflops']:.0f} vs float32 {record['float32_gflops']:.0f} GFLOP/s"
    else:
        basis = record["basis"].split(";")[0]
    return f"{chosen} (auto: cpu {record['capability']}, {basis}" \
           f"{', forced by ' + record['forced'] if record.get('forced') else ''})"
