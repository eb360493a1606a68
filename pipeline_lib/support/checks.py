"""Numerical checks of every adapter method on every architecture, on tiny random models built in-process.

The same checks back the tests and `python scripts/support_docs.py`, which writes docs/adapter-support.md:
the support matrix is what these checks measured, not a claim.
"""
from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field

import torch

from pipeline_lib.adapters import attach, disabled, families, load, merge, merge_for_inference, parameter_counts, save
from pipeline_lib.adapters.families import adapter_markers, identity_options
from pipeline_lib.catalog import methods as table
from pipeline_lib.catalog.targets import modules_for

VOCAB = 96
PAD = 0
IDS = torch.tensor([[5, 17, 33, 2, 41, 60, 7, 12], [PAD, PAD, PAD, 9, 22, 45, 71, 3]])
MASK = (IDS != PAD).long()


def _tiny_configs() -> dict:
    """Architecture -> config of a tiny model of hidden size `w` (32; a quantized base needs 64: bitsandbytes'
    CPU 4-bit kernel packs weights in blocks of 64 input features)."""
    import transformers as t

    common = dict(vocab_size=VOCAB, pad_token_id=PAD, bos_token_id=1, eos_token_id=2)

    def llama_like(w):
        return dict(hidden_size=w, intermediate_size=2 * w, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, max_position_embeddings=128, **common)

    return {
        "llama": lambda w: t.LlamaConfig(**llama_like(w)),
        "mistral": lambda w: t.MistralConfig(**llama_like(w), sliding_window=None),
        "qwen2": lambda w: t.Qwen2Config(**llama_like(w)),
        "gemma": lambda w: t.GemmaConfig(**llama_like(w), head_dim=8),
        "bloom": lambda w: t.BloomConfig(hidden_size=w, n_layer=2, n_head=4, **common),
        "gptj": lambda w: t.GPTJConfig(n_embd=w, n_layer=2, n_head=4, rotary_dim=4, n_positions=128, **common),
        "opt": lambda w: t.OPTConfig(hidden_size=w, ffn_dim=2 * w, num_hidden_layers=2, num_attention_heads=4,
                                     word_embed_proj_dim=w, max_position_embeddings=128, **common),
        "gpt_neo": lambda w: t.GPTNeoConfig(hidden_size=w, num_layers=2, num_heads=4, window_size=16,
                                            attention_types=[[["global", "local"], 1]], max_position_embeddings=128,
                                            **common),
        "gpt2": lambda w: t.GPT2Config(n_embd=w, n_layer=2, n_head=4, n_positions=128, **common),
        "gpt_neox": lambda w: t.GPTNeoXConfig(hidden_size=w, intermediate_size=2 * w, num_hidden_layers=2,
                                              num_attention_heads=4, max_position_embeddings=128, **common),
    }


TINY = _tiny_configs()
ARCHS = list(TINY)


_BUILT: dict = {}  # (arch, size, seed) -> a built model and the RNG state just after: a copy costs less than a build


def tiny_base(arch: str, seed: int = 0, quantization: dict | None = None):
    """A tiny random model of the architecture; with `quantization`, the same weights loaded as a bitsandbytes
    base the way the pipeline loads one (models.load_quantized). Each call returns a fresh model and leaves the
    RNG where a fresh build would (the adapters' random initialisation comes next)."""
    from transformers import AutoModelForCausalLM

    key = (arch, 64 if quantization else 32, seed)
    if key not in _BUILT:
        torch.manual_seed(seed)
        built = AutoModelForCausalLM.from_config(TINY[arch](key[1]), dtype=torch.float32).eval()
        _BUILT[key] = built, torch.get_rng_state()
    built, state = _BUILT[key]
    model = copy.deepcopy(built)
    torch.set_rng_state(state)
    if not quantization:
        return model
    from pipeline_lib.models import load_quantized

    with tempfile.TemporaryDirectory() as saved:
        model.save_pretrained(saved)
        return load_quantized(saved, quantization).eval()


def check_spec(method: str, arch: str, identity: bool = False) -> dict:
    """Small options for `method` on `arch`, from its table entry (options, and the roles whose modules it
    targets); `identity` asks for an initialisation that changes nothing."""
    entry, backend = table.get(method), families.of_method(method)
    roles = backend.default_check_roles(entry) if entry.check_roles is None else entry.check_roles
    spec = {"method": method, **entry.check,
            **{option: [m for role in rs for m in modules_for(arch, [role])] for option, rs in roles.items()}}
    wanted = identity_options(method)
    if identity and isinstance(wanted, dict):
        spec.update(wanted)
    return spec


METHODS = table.matrix_methods()  # LoRA's option variants: tests/adapters/test_lora_variants.py


class CheckFailed(Exception):
    """A numerical check found the method wrong on the architecture (recorded as a finding, not a crash)."""


def require(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(message)


@dataclass
class Result:
    arch: str
    method: str
    checks: dict[str, str] = field(default_factory=dict)  # check -> "ok" | "n/a: why" | "FAIL: why"

    not_applicable: str | None = None  # why a benchmark run cannot use the method at all (nothing checked)

    @property
    def ok(self) -> bool:
        return all(not v.startswith("FAIL") for v in self.checks.values())

    @property
    def reason(self) -> str:
        """Each distinct failure once, with the checks it broke."""
        by_message: dict[str, list[str]] = {}
        for check_name, v in self.checks.items():
            if v.startswith("FAIL"):
                by_message.setdefault(v[6:], []).append(check_name)
        return "; ".join(f"{msg} ({', '.join(names)})" for msg, names in by_message.items())


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        out = model(input_ids=IDS, attention_mask=MASK).logits
    return out[:, -IDS.shape[1]:]


def analytic_trainable(model, method: str, spec: dict) -> int | None:
    """Expected trainable parameters from the layer shapes, where the family knows them (bottlenecks, LoRA)."""
    return families.of_method(method).analytic_trainable(model, table.get(method), spec)


def _perturb(model) -> None:
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))


def reference_greedy(model, ids: torch.Tensor, n: int) -> torch.Tensor:
    """One unpadded row, every step a full forward pass: the model as trained, no cache, no padding."""
    with torch.no_grad():
        for _ in range(n):
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids


def _run(result: Result, name: str, fn) -> None:
    try:
        result.checks[name] = fn() or "ok"
    except Exception as e:  # a check's failure (CheckFailed, or the library's own error) is a finding to record
        result.checks[name] = f"FAIL: {type(e).__name__}: {str(e).splitlines()[0][:160]}"


def check(arch: str, method: str, tmp_dir, quantization: dict | None = None) -> Result:
    """Every check of `method` on `arch`; with `quantization`, on a bitsandbytes base (where evaluation runs the
    adapter unmerged, so merging is measured, not required)."""
    result = Result(arch, method, not_applicable=table.get(method).not_applicable)
    if result.not_applicable:
        return result
    spec = check_spec(method, arch)

    def tiny_model(arch, seed=0):
        return tiny_base(arch, seed, quantization)

    base_logits = logits(tiny_model(arch))

    def trainable():
        model = attach(tiny_model(arch), copy.deepcopy(spec))
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        markers = adapter_markers(method)
        require(bool(names), "no trainable parameters")
        stray = [n for n in names if not any(m in n for m in markers)]
        require(not stray, f"non-adapter parameters train: {stray[:2]}")
        expected = analytic_trainable(model, method, spec)
        got = parameter_counts(model)["trainable_params"]
        require(expected is None or got == expected, f"{got} trainable, analytic count {expected}")
        loss = model(input_ids=IDS, attention_mask=MASK, labels=IDS.masked_fill(IDS == PAD, -100)).loss
        loss.backward()
        wrong = [n for n, p in model.named_parameters() if (p.grad is not None) != p.requires_grad]
        require(not wrong, f"gradient flow differs from requires_grad: {wrong[:2]}")
        torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2).step()
        return None if expected is not None else "ok (count not analytic: names checked)"

    def identity():
        if isinstance(identity_options(method), str):
            return "n/a: " + identity_options(method)
        model = attach(tiny_model(arch), check_spec(method, arch, identity=True))
        diff = (logits(model) - base_logits).abs().max().item()
        require(diff < 1e-6, f"max |Δlogits| {diff:.2e} at initialisation")

    def perturbed():
        """The adapter with non-trivial weights, as after training."""
        model = attach(tiny_model(arch), copy.deepcopy(spec))
        _perturb(model)
        return model.eval()

    def save_load():
        model = perturbed()
        expected = logits(model)
        out = tmp_dir / f"{arch}-{method}"
        save(model, out)
        reloaded = load(tiny_model(arch), out)
        require(torch.equal(logits(reloaded), expected), "reloaded logits differ")
        with disabled(reloaded):
            require(torch.allclose(logits(reloaded), base_logits, atol=1e-6), "disabled adapter changes logits")

    def merged():
        model = perturbed()
        expected = logits(model)
        try:
            plain = merge(model)
        except NotImplementedError as e:
            return "n/a: " + str(e).split(":")[0]  # e.g. "series adapter cannot be merged into the base weights"
        except Exception as e:
            if quantization:  # peft's refusal or failure, e.g. IA3 on a 4-bit base: evaluation never merges there
                return f"n/a: evaluation runs unmerged on a quantized base (merging fails: {type(e).__name__}: " \
                       f"{str(e).splitlines()[0][:100]})"
            raise
        diff = (logits(plain) - expected).abs().max().item()
        if quantization:  # peft dequantizes, adds the update and quantizes again: the adapter is rounded
            return f"n/a: evaluation runs unmerged on a quantized base (merging would requantize: max |Δ| {diff:.1e})"
        require(diff < 1e-4, f"merged differs from unmerged by {diff:.2e}")

    def generation():
        """The evaluation's path (merged where the method allows, left-padded batch, KV cache) against the
        unmerged model decoding each prompt alone by full forward passes."""
        from pipeline_lib.evaluation.decoding import new_tokens

        model = perturbed()
        expected = [reference_greedy(model, IDS[row:row + 1, MASK[row].bool()], 4)[0, int(MASK[row].sum()):]
                    for row in range(IDS.shape[0])]
        evaluated = model if quantization else merge_for_inference(model)  # as jobs.evaluate runs it
        batched = new_tokens(evaluated, IDS, MASK, 4, eos_token_id=None, pad_token_id=PAD)
        for row, reference in enumerate(expected):
            require(torch.equal(batched[row], reference),
                    f"row {row}: evaluation decoding {batched[row].tolist()} != reference {reference.tolist()}")

    for name, fn in [("trainable", trainable), ("identity", identity), ("save_load", save_load),
                     ("merge", merged), ("generate", generation)]:
        _run(result, name, fn)
    return result


def quantized_kernels(device: str = "cpu") -> dict:
    """What a 4-bit base's results depend on here, and only that: the library versions; on a CPU torch's CPU
    capability (the kernels ATen runs; ATEN_CPU_CAPABILITY can lower it) and whether bitsandbytes takes its AVX-512
    BF16 kernel (its own CPUID check; measured: the DoRA identity error on a 4-bit base is 8.2e-2 with that kernel,
    1.7e-3 without); on CUDA, the GPU. `key` names the committed matrix of such a device. The CPU's other flags are
    left out: an Intel Xeon with AMX and an AMD EPYC without it measured the same matrix (2026-12-04/05), so a key
    carrying them only kept a matrix from applying to a machine it describes."""
    import bitsandbytes
    import peft
    import transformers
    from bitsandbytes.functional import has_avx512bf16

    facts = {"device": device, "bitsandbytes": bitsandbytes.__version__,
             "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
    if device == "cuda":
        gpu = torch.cuda.get_device_name()
        return {**facts, "gpu": gpu, "key": "cuda-" + "-".join(gpu.lower().split())}
    capability = torch.backends.cpu.get_cpu_capability()
    kernel = bool(has_avx512bf16())
    facts |= {"torch_capability": capability, "bnb_avx512bf16_kernel": kernel}
    return {**facts, "key": f"cpu-{capability.lower()}-bnb-{'avx512bf16' if kernel else 'generic'}"}


def run_all(tmp_dir, archs=ARCHS, methods=METHODS, quantization: dict | None = None) -> list[Result]:
    return [check(a, m, tmp_dir, quantization) for a in archs for m in methods]
