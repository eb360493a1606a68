"""Numerical precision chosen by what the machine runs fast: `auto` (the default of `training.autocast`,
`evaluation.dtype` and a 4-bit base's `compute_dtype`) means bfloat16 where the job's own work runs clearly faster
in it and float32 elsewhere; an explicit setting always wins.

Why: bf16 is no speed-up on a CPU without bf16 instructions but a collapse. Measured with torch 2.13 (CPU),
2 threads, a 1024 x 1024 matmul: on an Intel Xeon with AMX-BF16, bf16 1171 GFLOP/s against float32 244; the
same machine under ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2, bf16 0.9 against float32 222; reported on
an AVX2-only AMD EPYC, bf16 0.7 against float32 58.8 (one SmolLM2-135M training step: 32 s in float32, over 400 s
under bf16 autocast). Between those, an AMD EPYC with AVX-512 BF16 and no AMX runs bf16 about 1.5-2.5x faster.

CUDA: bf16 where `torch.cuda.is_bf16_supported()` (Ampere and newer), else float32. CPU: float32 unless oneDNN
reports bf16 support and the model is not a test-sized one (SMALL_LAYER), and then what the job does is measured
(`measure`): first a screen (512 x 512 matmuls, each precision's fastest sample) that stops at once where bf16
collapses, then the job's own step at its model's shapes (`Workload`: the linears of one decoder layer, forward and
backward at the micro-batch's tokens for training, one decoding step of the evaluation batch through several layers
for evaluation), float32 and bf16 samples of at least 30 ms interleaved in pairs, the verdict from the median of the
pairs' speed ratios: bf16 only when it is at least MARGIN faster. Where a round's ratios are not clear (their middle
half reaching the margin, or wider than the median's distance from it), further rounds follow (up to ROUNDS) and the
median of all decides.

Why so: a single short probe is at the mercy of the scheduler. The earlier probe (the best of three 256 x 256
matmuls, a fraction of a millisecond each) chose float32 in about 1 of 30 trials beside bursty CPU-bound processes
on an AVX-512 BF16 CPU (one lost time slice during the bf16 samples is enough), and its verdict was then cached for
good. Interleaving puts both precisions under the same load; the median discards the pairs a burst hit. One round of
7 pairs still flipped an inference verdict in about 1 of 40 trials beside such processes (a CI run on this project
failed on it): ratios under that load scatter from 0.3 to 9 around a median near 2; more rounds where one is unclear
make the median's flip far rarer at the cost of at most 2 more rounds (about 1 s) where the load is heavy.

The verdict is cached per machine (CPU model, instruction-set flags, torch version, the two ISA variables), probe
version, workload and threads, so every job of a run decides alike, and recorded in every metrics and score file
with its samples and their spread. A verdict whose ratios are still not clear after the last round is not cached:
the next job measures again. PEFT_BENCH_REPROBE=1 measures afresh and replaces the cached verdict
(`python -m pipeline_lib.models.precision [model_dir]` does so and prints it); PEFT_BENCH_CPU_BF16=1/0 forces the
CPU answer (recorded as forced). Importable without torch: the plan's estimates use `planned`."""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

from pipeline_lib.catalog import dtypes
from pipeline_lib.catalog.dtypes import AUTO
from pipeline_lib.planning.estimates import generate_flops_per_token, train_flops_per_token

ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
FORCE_VARIABLE = "PEFT_BENCH_CPU_BF16"
REPROBE_VARIABLE = "PEFT_BENCH_REPROBE"
CACHE_VARIABLE = "PEFT_BENCH_CACHE"
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # what decides bf16 speed on x86
PROBE_VERSION = 3   # part of the cache key: an improved probe replaces the verdicts of older ones
MARGIN = 1.2        # bf16 is chosen only when the job's step runs at least this much faster in it
PAIRS = 7           # interleaved float32/bf16 sample pairs per round
ROUNDS = 3          # rounds measured at most, while the ratios so far are not clear (see `measure`)
SAMPLE_S = 0.03     # a sample repeats its step for at least this long
COLLAPSE = 0.25     # the screen: bf16 below a quarter of float32's speed is a collapse, nothing more measured
# The screen's matmul: long enough (about 2 ms in float32) that the wait of a parallel region whose thread was
# descheduled (measured up to ~15 ms per operation beside bursty processes) cannot make float32 look collapsed;
# short enough that a collapsed bf16 (~130 ms per product) stays cheap.
SCREEN_N = 512
STEP_FLOPS = 16e9   # a training sample's tokens are capped so one step stays well under a second in float32
# Models whose decoder layer has fewer parameters (test models) run in float32 without a measurement: at such shapes
# bf16's conversions cost about what its matmuls save, and the pair ratios scatter around the margin (measured on
# an AVX-512 BF16 EPYC: hidden 32, ratios 0.9-1.4 from one measurement to the next), so a verdict would be noise.
SMALL_LAYER = 1_000_000


@dataclass(frozen=True)
class Workload:
    """What a job computes, at its model's shapes: the q, k, v, o, gate, up and down linears of one decoder layer.
    `train`: forward and backward (input gradients, frozen weights) of `tokens` tokens; `inference`: a forward pass
    of `tokens` token positions through `layers` layers (a decoding step of `tokens` sequences, or a log-likelihood
    batch's positions), weights streamed from memory as in a real step."""
    kind: str
    hidden: int
    intermediate: int
    kv: int
    tokens: int
    layers: int = 1

    @property
    def layer_params(self) -> int:
        return 2 * self.hidden * (self.hidden + self.kv) + 3 * self.hidden * self.intermediate

    def describe(self) -> str:
        shape = f"hidden {self.hidden}, intermediate {self.intermediate}, kv {self.kv}"
        if self.kind == "train":
            return f"train: one decoder layer's linears ({shape}), forward + backward of {self.tokens} tokens"
        return f"inference: {self.tokens} token positions through {self.layers} decoder layers' linears ({shape})"


# SmolLM2-135M's layer (the default run), where a job's model is not known
DEFAULT_SHAPE = {"hidden": 576, "intermediate": 1536, "kv": 192}


def workload(kind: str, tokens: int, config: dict | None = None) -> Workload:
    """The workload of a job on a model with this config.json (None: the default run's model). Tokens are capped
    (STEP_FLOPS) so a sample of a large model stays short; inference streams enough layers to exceed a CPU's caches
    (64 MB of float32 weights), at most the model's."""
    if kind not in ("train", "inference"):
        raise ValueError(f"unknown workload kind {kind!r}; valid: train, inference")
    shape = _shape(config) if config else dict(DEFAULT_SHAPE)
    one = Workload(kind, **shape, tokens=max(1, int(tokens)))
    flops = (train_flops_per_token if kind == "train" else generate_flops_per_token)(one.layer_params)
    cap = max(128, 2 ** int(math.log2(STEP_FLOPS / flops)))
    one = replace(one, tokens=min(one.tokens, cap))
    if kind == "train":
        return one
    layers = math.ceil(64 * 2 ** 20 / (4 * one.layer_params))
    return replace(one, layers=max(1, min(layers, (config or {}).get("num_hidden_layers") or layers)))


def model_workload(kind: str, tokens: int, model_dir: str | Path | None) -> Workload:
    path = Path(model_dir or "") / "config.json"
    return workload(kind, tokens, json.loads(path.read_text()) if model_dir and path.is_file() else None)


def _shape(c: dict) -> dict:
    hidden = c.get("hidden_size") or c.get("n_embd") or c.get("d_model") or DEFAULT_SHAPE["hidden"]
    intermediate = c.get("intermediate_size") or c.get("n_inner") or c.get("ffn_dim") or 4 * hidden
    heads = c.get("num_attention_heads") or c.get("n_head") or 1
    head_dim = c.get("head_dim") or hidden // heads
    return {"hidden": hidden, "intermediate": intermediate, "kv": (c.get("num_key_value_heads") or heads) * head_dim}


def resolve(requested: str, device, work: Workload | None = None) -> tuple[str, dict]:
    """(dtype name, record): the setting itself when explicit, else the device's choice for this workload (default:
    a decoding step of 16 sequences on the default run's model) with its evidence."""
    if requested != AUTO:
        return requested, {"requested": requested, "chosen": requested, "device": str(device)}
    record = choose(device, work)
    return record["chosen"], {"requested": AUTO, **record}


def training_autocast(requested: str, device, work: Workload | None = None) -> tuple[str, dict]:
    """`training.autocast` (auto | bfloat16 | float32; `none`, float32's former name, still read) resolved, with its
    record (default workload: a training step of the default run's model)."""
    return resolve(dtypes.canonical(requested), device, work or workload("train", 1024))


def resolved_quantization(settings: dict | None, device, work: Workload | None = None) -> dict | None:
    """A 4-bit base's settings with its compute dtype resolved (8-bit and unquantized: unchanged)."""
    if not settings or settings.get("bits") != 4:
        return settings
    return {**settings, "compute_dtype": resolve(settings["compute_dtype"], device, work)[0]}


def choose(device, work: Workload | None = None) -> dict:
    """The device's choice for this workload (default: a decoding step of the default run's model) and its evidence:
    on CUDA by the GPU's bf16 support, on CPU by measuring the workload (cached)."""
    device = str(device)
    if device.startswith("cuda"):
        import torch

        supported = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        return {"chosen": "bfloat16" if supported else "float32", "device": "cuda",
                "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                "bf16_supported": supported}
    facts = cpu_facts(work or workload("inference", 16))
    return {"chosen": "bfloat16" if facts["bf16_fast"] else "float32", "device": "cpu", **facts}


def cpu_facts(work: Workload) -> dict:
    """The verdict for this workload on this CPU with its evidence: read from the cache, else measured (and cached
    when its samples agree)."""
    import torch

    key = {**machine_key(), "probe_version": PROBE_VERSION, "workload": asdict(work),
           "threads": torch.get_num_threads()}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"cpu-precision-{digest}.json"
    facts = None if os.environ.get(REPROBE_VARIABLE) == "1" else read_cached(path)
    if facts is None:
        if not key["bf16_reported"]:
            verdict = {"bf16_fast": False, "basis": "oneDNN reports no bf16 support: nothing measured", "cached": True}
        elif work.layer_params < SMALL_LAYER:
            verdict = {"bf16_fast": False, "cached": True, "workload": work.describe(),
                       "basis": f"a decoder layer of {work.layer_params:,} parameters is too small for bf16 to pay: "
                                f"float32, nothing measured"}
        else:
            verdict = measure(work)
        facts = {**key, **verdict}
        if facts["cached"]:
            write_cached(path, facts)
    forced = os.environ.get(FORCE_VARIABLE)
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


def measure(work: Workload, pairs: int = PAIRS, rounds: int = ROUNDS) -> dict:
    """The screen, then (unless bf16 collapsed) the workload itself: float32 and bf16 samples interleaved in pairs
    (their order alternating), each pair's ratio = float32 time / bf16 time (> 1: bf16 faster); the verdict from
    the median ratio. A round of `pairs` pairs whose ratios are not clear (`_clear`) is followed by another, up to
    `rounds`, and the verdict comes from all of them; cached only when the ratios are clear."""
    import torch

    started = time.perf_counter()
    # the screen compares each precision's fastest sample: load only ever slows a sample down, so a collapse
    # (bf16's best far below float32's best) cannot be a scheduler's doing
    f32, bf16 = zip(*_pairs(_matmul(torch.float32), _matmul(torch.bfloat16), 3))
    screen = round(min(f32) / min(bf16), 4)
    record = {"screen": {"what": f"{SCREEN_N}x{SCREEN_N} matmul, fastest of 3 interleaved samples each",
                         "ratio": screen},
              "threads": torch.get_num_threads()}
    if screen < COLLAPSE:
        return {**record, "bf16_fast": False, "cached": True, "seconds": round(time.perf_counter() - started, 2),
                "basis": f"bf16 collapses: a {SCREEN_N}x{SCREEN_N} matmul runs at {screen:.3f}x float32's speed"}
    steps = {dtype: _step(work, dtype) for dtype in (torch.float32, torch.bfloat16)}
    ratios = []
    for done in range(rounds):
        ratios += [round(a / b, 4) for a, b in _pairs(steps[torch.float32], steps[torch.bfloat16], pairs,
                                                      warm=done == 0)]
        cached = _clear(ratios)
        if cached:
            break
    low, median, high = _quartiles(ratios)
    return {**record, "workload": work.describe(), "ratios": ratios, "median": round(median, 3),
            "quartiles": [round(low, 3), round(high, 3)], "spread": round((high - low) / median, 3),
            "margin": MARGIN, "bf16_fast": median >= MARGIN, "cached": cached,
            "seconds": round(time.perf_counter() - started, 2),
            "basis": f"{work.kind} step {median:.2f}x faster in bf16 (median of {len(ratios)} interleaved pairs, "
                     f"quartiles {low:.2f}-{high:.2f}); bf16 needs {MARGIN}x"
                     + ("" if cached else "; samples too spread to cache: the next job measures again")}


def _clear(ratios: list[float]) -> bool:
    """The middle half of the ratios lies on one side of the margin and spans less than the median's distance
    from it."""
    low, median, high = _quartiles(ratios)
    return (low >= MARGIN) == (high >= MARGIN) == (median >= MARGIN) and high - low <= abs(median - MARGIN)


def _pairs(f32, bf16, n: int, sample_s: float = SAMPLE_S, warm: bool = True) -> list[tuple[float, float]]:
    """n pairs of (float32, bf16) seconds per step, measured in alternating order (after two warm-up calls of each).
    Each sample repeats its step until `sample_s` has passed: long against a scheduler's time slice (a sub-
    millisecond sample waits a whole slice when one of its threads is descheduled), at least one step."""
    for fn in (f32, bf16, f32, bf16) if warm else ():
        fn()
    pairs = []
    for i in range(n):
        if i % 2 == 0:
            pairs.append((_per_step(f32, sample_s), _per_step(bf16, sample_s)))
        else:
            t16 = _per_step(bf16, sample_s)
            pairs.append((_per_step(f32, sample_s), t16))
    return pairs


def _per_step(fn, sample_s: float) -> float:
    start, reps = time.perf_counter(), 0
    while True:
        fn()
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= sample_s:
            return elapsed / reps


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 4:
        return min(values), statistics.median(values), max(values)
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def _matmul(dtype, n: int = SCREEN_N):
    import torch

    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return lambda: a @ b


def _step(work: Workload, dtype):
    """One step of the workload in `dtype`, as the jobs run it: training under bf16 autocast with the frozen
    weights stored in bf16 (or all float32); inference with the weights and activations in the dtype."""
    import torch
    import torch.nn.functional as F

    bf16 = dtype == torch.bfloat16
    g = torch.Generator().manual_seed(0)
    h, i, kv = work.hidden, work.intermediate, work.kv
    shapes = [(h, h), (kv, h), (kv, h), (h, h), (i, h), (i, h), (h, i)]
    layers = [[(torch.randn(s, generator=g) * s[1] ** -0.5).to(dtype) for s in shapes] for _ in range(work.layers)]

    def layer(x, w):
        q, _, _ = F.linear(x, w[0]), F.linear(x, w[1]), F.linear(x, w[2])
        x = x + F.linear(q, w[3])  # o_proj on q's shape stands in for attention's output (scores are small here)
        return x + F.linear(F.silu(F.linear(x, w[4])) * F.linear(x, w[5]), w[6])

    if work.kind == "train":
        x = torch.randn(work.tokens, h, generator=g, requires_grad=True)

        def train():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = layer(x, layers[0])
            out.float().square().mean().backward()
        return train

    x = torch.randn(work.tokens, h, generator=g).to(dtype)

    @torch.inference_mode()
    def inference():
        y = x
        for w in layers:
            y = layer(y, w)
        return y
    return inference


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


def read_cached(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_cached(path: Path, facts: dict) -> None:
    """Best effort: an unwritable cache only costs the next job another measurement."""
    from pipeline_lib.runtime.files import write_json

    try:
        write_json(path, facts)
    except OSError:
        pass


def reprobe(model_dir: str | None, threads: int = 2, train_tokens: int = 1024, decode_batch: int = 30) -> list[dict]:
    """Measure this CPU's verdicts afresh (training and decoding at a model's shapes), replacing the cached ones
    (scripts/precision.py); return each verdict's record."""
    import torch

    torch.set_num_threads(threads)
    os.environ[REPROBE_VARIABLE] = "1"
    return [resolve(AUTO, "cpu", model_workload(kind, tokens, model_dir))[1]
            for kind, tokens in (("train", train_tokens), ("inference", decode_batch))]
