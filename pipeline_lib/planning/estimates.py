"""Memory and runtime estimates for the fine-tune and evaluation jobs, so that a scheduler (SLURM, or Snakemake's
own `--resources mem_mb=...`) does not overcommit. Deliberately simple and conservative; the formulas:

  P            base parameters (model_defs `params_b`, the embedded model's count, or a local config.json)
  bytes/param  float32 4, bfloat16/float16 2, 8bit 1, 4bit 0.55 (nf4 + double-quantised scales); precision `auto`
               counts as bf16 on CUDA and float32 on CPU (catalog.dtypes.planned: the larger where unsure)
  E            embedding and output-head parameters (vocab x hidden, twice when untied; from the embedded
               registry or a local config.json, else 4% of P as in LLaMA-7B)
  weights      P x bytes/param; a quantized base keeps E unquantized in float32 (bitsandbytes quantizes the
               linears; peft's prepare_model_for_kbit_training casts the rest to float32): (P - E) x
               bytes/param + 4 E (measured on SmolLM2-135M, 4-bit: 158.8 MB of frozen weights; this gives 164)
  adapter      0.02 P x 16 bytes (trainable share at most ~2%: fp32 weight, gradient, two Adam moments)
  activations  micro_batch x cutoff_len x 34 bytes x hL, with hL (hidden size x layers) ~ 0.8 P^0.533 (fits
               SmolLM2-135M, LLaMA-7B and LLaMA-13B within 10%; 34 bytes per hidden unit per token for a
               transformer layer in 16-bit, Korthikanti et al. 2022); x0.15 with gradient checkpointing
  GPU memory   (weights + adapter + activations) x 1.2 + 1 GiB (CUDA context, allocator slack)
  host memory  GPU jobs: weights + 2 GiB (loading stages them through RAM); CPU jobs: (weights + working
               memory) x 1.2 + 2 GiB; at least 4 GiB
  evaluation   weights + KV cache: batch x beams x (prompt 512 + max_new_tokens) x 2 x hL x 2 bytes, with the
               batch size and token cap of the evaluation's resolved settings (pipeline_lib.catalog.protocols); a
               log-likelihood protocol: one forward pass of 512 tokens per option, at most 5 options, no cache
  runtime      4 P FLOPs per trained token (forward + input gradients; frozen weights get no weight gradient)
               and 2 P per generated token with the cache, at 30% of a 300 TFLOP/s GPU (bf16), or the
               measured 150 GFLOP/s on CPU; x2 and +10 minutes of margin.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from pipeline_lib.catalog import protocols
from pipeline_lib.catalog.base_models import EMBEDDED
from pipeline_lib.catalog.dtypes import evaluation_dtype, frozen_weights_dtype, planned

MAX_OPTIONS = 5  # the most options a multiple-choice item has (ARC: up to 5)
BYTES_PER_PARAM = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "8bit": 1.0, "4bit": 0.55}
GPU_FLOPS, CPU_FLOPS = 0.3 * 300e12, 150e9
GIB = 2 ** 30
AUTO_BATCH = 16  # the sequences an evaluation with `batch_size: auto` is sized for
CONTEXT_TOKENS = 256  # a log-likelihood context, about


EMBEDDING_SHARE = 0.04  # of P, when unknown: LLaMA-7B's 2 x 32000 x 4096 over 6.74e9


def embedding_params(name: str, source: dict, params: float) -> float:
    """E: the embedding and output-head parameters a quantized base keeps unquantized."""
    if name in EMBEDDED:
        return EMBEDDED[name].embedding_params
    c, h = _local_config(source)
    if h and c.get("vocab_size"):
        return c["vocab_size"] * h * (1 if c.get("tie_word_embeddings", True) else 2)
    return EMBEDDING_SHARE * params


def _local_config(source: dict) -> tuple[dict, int | None]:
    """A local model's config.json (empty if none) and its hidden size under any architecture's key."""
    config = Path(source.get("path", "")) / "config.json"
    c = json.loads(config.read_text()) if config.is_file() else {}
    return c, c.get("hidden_size") or c.get("n_embd") or c.get("d_model")


def model_params(name: str, source: dict) -> float:
    """Base parameter count: `params_b` in model_defs, the embedded registry, or a local config.json."""
    if "params_b" in source:
        return float(source["params_b"]) * 1e9
    if name in EMBEDDED:
        return EMBEDDED[name].params
    c, h = _local_config(source)
    layers = c.get("num_hidden_layers") or c.get("n_layer") or c.get("num_layers")
    if h and layers:
        return 12 * layers * h * h + c.get("vocab_size", 32000) * h
    return 7e9  # unknown: size for a 7B model rather than starve the job


def train_flops_per_token(frozen: float, trainable: float = 0.0) -> float:
    """Training FLOPs per token with a frozen base: 4 per frozen weight (forward and input gradients; a frozen weight
    gets no weight gradient) and 6 per trained one (forward, input and weight gradients). Attention scores are left
    out (under 5% at these lengths): a rate computed with it is understated, never inflated."""
    return 4 * frozen + 6 * trainable


def generate_flops_per_token(params: float) -> float:
    """A generated token with the KV cache: one forward pass, 2 FLOPs per weight."""
    return 2 * params


def batch_size(settings: dict) -> int:
    """An evaluation's sequences per forward pass (`auto`: AUTO_BATCH), before beams."""
    return settings["batch_size"] if isinstance(settings["batch_size"], int) else AUTO_BATCH


def inference_tokens(settings: dict) -> int:
    """The token positions of one forward pass of an evaluation: a decoding step of its batch (times its beams), or
    a log-likelihood batch of contexts."""
    if settings["scorer"] == "loglikelihood":
        return batch_size(settings) * CONTEXT_TOKENS
    return batch_size(settings) * protocols.beams(settings)


def hidden_units(params: float) -> float:
    return 0.8 * params ** 0.533


def weight_bytes(params: float, dtype: str | None, quantization: dict | None, embedding: float | None = None) -> float:
    if not quantization:
        return params * BYTES_PER_PARAM[dtype]
    embedding = EMBEDDING_SHARE * params if embedding is None else embedding
    return (params - embedding) * BYTES_PER_PARAM[f"{quantization['bits']}bit"] + 4 * embedding


def finetune(params: float, training: dict, items: int, device: str, quantization: dict | None = None,
             embedding: float | None = None) -> dict:
    stored = frozen_weights_dtype(planned(training["autocast"], device), quantization)
    weights = weight_bytes(params, stored, quantization, embedding)
    adapter = 0.02 * params * 16
    activations = training["micro_batch_size"] * training["cutoff_len"] * 34 * hidden_units(params)
    if training.get("gradient_checkpointing"):
        activations *= 0.15
    steps = training.get("max_steps") or math.ceil(items * training["epochs"] / training["batch_size"])
    tokens = steps * training["batch_size"] * training["cutoff_len"] / 2  # mean length ~ half the cutoff
    return _job(weights, adapter + activations, train_flops_per_token(params) * tokens, device)


def evaluate(params: float, evaluation: dict, items: int, device: str, quantization: dict | None = None,
             embedding: float | None = None) -> dict:
    weights = weight_bytes(params, planned(evaluation_dtype(evaluation["dtype"], quantization), device),
                            quantization, embedding)
    beams = protocols.beams(evaluation)
    batch = batch_size(evaluation) * beams
    if evaluation["scorer"] in ("loglikelihood", protocols.LOSS_SETTINGS["scorer"]):
        cache = batch * 512 * 2 * hidden_units(params) * 2  # the activations of a forward pass, no KV cache kept
        flops = generate_flops_per_token(params) * items * MAX_OPTIONS * 512  # a forward pass per option
    else:
        cache = batch * (512 + evaluation["max_new_tokens"]) * 2 * hidden_units(params) * 2
        flops = generate_flops_per_token(params) * items * (256 + evaluation["max_new_tokens"]) * beams  # cached
    return _job(weights, cache, flops, device)


def forgetting(params: float, forgetting_settings: dict, device: str, quantization: dict | None = None,
               embedding: float | None = None) -> dict:
    """Two forward passes (adapter disabled, enabled) over the reference tokens, in windows."""
    weights = weight_bytes(params, planned(evaluation_dtype("auto", quantization), device), quantization, embedding)
    working = forgetting_settings["batch_size"] * forgetting_settings["sequence_length"] * 2 * hidden_units(params) * 2
    return _job(weights, working, 2 * generate_flops_per_token(params) * forgetting_settings["tokens"], device)


def _job(weights: float, working: float, flops: float, device: str) -> dict:
    gpu = device == "cuda"
    seconds = flops / (GPU_FLOPS if gpu else CPU_FLOPS)
    host = max(4 * GIB, (weights if gpu else (weights + working) * 1.2) + 2 * GIB)
    return {
        "mem_mb": int(math.ceil(host / 2 ** 20)),
        "gpu_mem_mb": int(math.ceil(((weights + working) * 1.2 + GIB) / 2 ** 20)) if gpu else 0,
        "runtime": int(math.ceil(2 * seconds / 60 + FIXED_MINUTES)),  # minutes, as SLURM's --time takes them
    }


FIXED_MINUTES = 10  # a job's allowance beyond twice its compute: start, model load, a slow node


class Estimates:
    """Each job's `mem_mb`, `gpu_mem_mb` and `runtime` (minutes) for a plan, as the rules declare them as resources;
    each computed once (a rule asks for every resource of every job) and handed out as a copy."""

    def __init__(self, plan):
        self.plan = plan
        self._cache: dict[tuple, dict] = {}  # a cache, not state: the plan it reads is immutable

    def _once(self, key: tuple, compute) -> dict:
        if key not in self._cache:
            self._cache[key] = compute()
        return dict(self._cache[key])

    def _sizes(self, model: str) -> dict:
        def compute():
            source = self.plan.model_sources[model]
            params = model_params(model, source)  # reads a local model's config.json: once per model
            return {"params": params, "quantization": self.plan.quantization(model),
                    "embedding": embedding_params(model, source, params)}
        return self._once(("sizes", model), compute)

    def finetune(self, model: str, run: str, train: str) -> dict:
        def compute():
            sizes = self._sizes(model)
            return finetune(sizes["params"], self.plan.training.train_config(run),
                            self.plan.data.estimated_items(train, "train"),
                            self.plan.config["device"], sizes["quantization"], sizes["embedding"])
        return self._once(("finetune", model, run, train), compute)

    def evaluate(self, model: str, dataset: str, protocol: str) -> dict:
        def compute():
            sizes = self._sizes(model)
            return evaluate(sizes["params"], self.plan.evaluation.settings(dataset, protocol),
                            self.plan.data.estimated_items(dataset, "eval"), self.plan.config["device"],
                            sizes["quantization"], sizes["embedding"])
        return self._once(("evaluate", model, dataset, protocol), compute)

    def evaluate_row(self, model: str) -> dict:
        """A row's evaluation job: every (protocol, set) of the run in one process, one after another (sets of one
        decoding pooled, at the same batch size): the largest memory of its sets, their runtimes summed (each
        set's fixed allowance counted once)."""
        parts = [self.evaluate(model, d, p) for p, d in self.plan.evaluation.pairs]
        if not parts:
            return {"mem_mb": 0, "gpu_mem_mb": 0, "runtime": 0}
        return {"mem_mb": max(p["mem_mb"] for p in parts), "gpu_mem_mb": max(p["gpu_mem_mb"] for p in parts),
                "runtime": sum(p["runtime"] - FIXED_MINUTES for p in parts) + FIXED_MINUTES}

    def forgetting(self, model: str) -> dict:
        def compute():
            sizes = self._sizes(model)
            return forgetting(sizes["params"], self.plan.costs.forgetting_options(), self.plan.config["device"],
                              sizes["quantization"], sizes["embedding"])
        return self._once(("forgetting", model), compute)

    def validate(self, model: str, train: str) -> dict:
        """A tuning trial's validation: an evaluation of the split's items (the loss pass costs a fraction of it)."""
        def compute():
            sizes = self._sizes(model)
            settings = self.plan.tuning.validation_settings(train)
            if settings["metric"] == "loss":  # one forward pass per item, no generation
                settings = protocols.LOSS_SETTINGS
            return evaluate(sizes["params"], settings, self.plan.data.validation_size,
                            self.plan.config["device"], sizes["quantization"], sizes["embedding"])
        return self._once(("validate", model, train), compute)
