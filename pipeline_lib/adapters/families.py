"""One backend per method family: what a family knows, in one place, so that a method is one entry of the method
table (pipeline_lib/catalog/methods.py) and neither the adapter library nor the support matrix names methods.

A backend builds a fresh adapter, saves and loads it, merges it (or says why it cannot), switches it off, names
its parameters and, where the shapes decide it, counts them. Which backend an adapter belongs to is read from the
model (`of_model`) or the saved config (`of_saved`), so a loaded adapter needs no method name.
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from torch import nn

from pipeline_lib.adapters import bottleneck
from pipeline_lib.adapters.dropout import use_sampled_dropout
from pipeline_lib.catalog import methods


class Bottleneck:
    """Ours (LLM-Adapters' series and parallel bottlenecks, which peft lacks)."""
    name = "bottleneck"

    def build(self, model: nn.Module, method: str, options: dict, batches=None) -> nn.Module:
        return bottleneck.inject(model, bottleneck.BottleneckConfig.from_dict({"method": method, **options}))

    def owns(self, model: nn.Module) -> bool:
        return hasattr(model, "bottleneck_config")

    def save(self, model: nn.Module, out_dir: str | Path) -> None:
        bottleneck.save(model, out_dir)

    def load(self, model: nn.Module, adapter_dir: str | Path, config: dict) -> nn.Module:
        return bottleneck.load(model, adapter_dir, config)

    def merge(self, model: nn.Module) -> nn.Module:
        return bottleneck.merge(model)

    @contextlib.contextmanager
    def disabled(self, model: nn.Module):
        bottleneck.set_enabled(model, False)
        try:
            yield model
        finally:
            bottleneck.set_enabled(model, True)

    def markers(self, entry: methods.Method) -> tuple[str, ...]:
        return (".adapter_",)

    def analytic_trainable(self, model: nn.Module, entry: methods.Method, spec: dict) -> int | None:
        """Each bottleneck's down and up projections (by its position's widths), plus a learned scale."""
        total = 0
        for m in model.modules():
            if isinstance(m, bottleneck.BottleneckLinear):
                d_in, d_out = bottleneck.linear_dims(m.base)
                d_in, d_out = (d_out, d_out) if m.position == "output" else (d_in, d_in) if m.position == "input" \
                    else (d_in, d_out)
                total += spec["bottleneck_size"] * (d_in + d_out) + (spec.get("scaling") == "learned")
        return total

    def default_identity(self, entry: methods.Method) -> dict | str:
        return {}

    def default_check_roles(self, entry: methods.Method) -> dict:
        return {}


def peft_config(method: str, options: dict):
    """Build the peft config for `method`; an unknown option fails naming it and listing the valid ones."""
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
    from peft.utils import PeftType

    spec = methods.get(method)
    cls = PEFT_TYPE_TO_CONFIG_MAPPING[PeftType(spec.peft_type)]
    valid = {f.name for f in dataclasses.fields(cls) if f.init}
    options = {k: v for k, v in options.items() if k not in spec.extra}  # the optimizer's, not the config's
    unknown = sorted(set(options) - valid - set(spec.extra))
    if unknown:
        raise ValueError(f"{method} adapter: unknown option(s) {unknown}; valid: {', '.join(sorted(valid))}")
    return cls(task_type="CAUSAL_LM", **{**options, **spec.fixed})


class Peft:
    """peft's weight adapters: any config class peft has, options passed through."""
    name = "peft"

    def build(self, model: nn.Module, method: str, options: dict, batches=None) -> nn.Module:
        """peft's model for the method; a data-driven initialisation (EVA, CorDA) runs on `batches` (the run's
        first training batches), LoftQ fits A and B to the 4-bit base's quantization error."""
        from peft import get_peft_model

        entry = methods.get(method)
        extra = {**entry.extra, **{k: v for k, v in options.items() if k in entry.extra}}
        if entry.data_init and batches is None:
            raise ValueError(f"{method} adapter: its initialisation reads training batches, and none were given")
        config = peft_config(method, {**options, **_initialisation_config(entry, extra)})
        if entry.data_init == "corda":  # before peft builds the layers: it decomposes the base weights
            _corda(model, config, extra, batches)
        model = get_peft_model(model, config, low_cpu_mem_usage=entry.data_init == "eva")
        use_sampled_dropout(model)  # LoRA's dropout masks drawn faster on CPU, same distribution (dropout.py)
        if entry.data_init == "eva":  # after: it fills the layers' A from their inputs
            from peft import initialize_lora_eva_weights

            initialize_lora_eva_weights(model, dataloader=list(_first(batches, extra["eva_batches"])),
                                        show_progress_bar=False)
        if entry.needs_base == "4bit":
            _loftq(model, method)
        if entry.converts:
            _keep_initial_adapter(model, entry.fixed["init_lora_weights"])
        return model

    def owns(self, model: nn.Module) -> bool:
        return hasattr(model, "peft_config")

    def save(self, model: nn.Module, out_dir: str | Path) -> None:
        # PiSSA / OLoRA / CorDA: saved as the plain LoRA that gives the same model on the unchanged base
        model.save_pretrained(str(out_dir), safe_serialization=True,
                              path_initial_model_for_weight_conversion=getattr(model, "initial_adapter_dir", None))

    def load(self, model: nn.Module, adapter_dir: str | Path, config: dict) -> nn.Module:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(adapter_dir))

    def merge(self, model: nn.Module) -> nn.Module:
        config = model.peft_config[model.active_adapter]
        reason = methods.by_peft_type(config.peft_type.value).merges
        if reason:
            raise NotImplementedError(f"{config.peft_type.value.lower()} adapter cannot be merged: {reason}")
        return model.merge_and_unload()

    @contextlib.contextmanager
    def disabled(self, model: nn.Module):
        with model.disable_adapter():
            yield model

    def markers(self, entry: methods.Method) -> tuple[str, ...]:
        from peft.mapping import PEFT_TYPE_TO_PREFIX_MAPPING
        from peft.utils import PeftType

        return (PEFT_TYPE_TO_PREFIX_MAPPING[PeftType(entry.peft_type)], "prompt_encoder", *entry.markers)

    def analytic_trainable(self, model: nn.Module, entry: methods.Method, spec: dict) -> int | None:
        """LoRA's A and B (r x (d_in + d_out) per layer); other types are checked by parameter names only."""
        if entry.peft_type != "LORA" or entry.fixed:
            return None
        from peft.tuners.lora import LoraLayer

        layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
        return sum(spec["r"] * sum(bottleneck.linear_dims(m.get_base_layer())) for m in layers)

    def default_identity(self, entry: methods.Method) -> dict | str:
        return {}  # peft's default initialisations are identities, where an entry does not say otherwise

    def default_check_roles(self, entry: methods.Method) -> dict:
        return {"target_modules": ("attention_in", "mlp_out")}


class Prompt(Peft):
    """peft's prompt learning: virtual tokens (or a key/value prefix) before the input; nothing to merge."""
    name = "prompt"

    def owns(self, model: nn.Module) -> bool:
        config = getattr(model, "peft_config", {}).get(getattr(model, "active_adapter", "default"))
        return config is not None and config.is_prompt_learning

    def merge(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError(f"{model.peft_config['default'].peft_type.value.lower()} adapter cannot be "
                                  f"merged: it adds virtual tokens, not weight updates")

    def default_identity(self, entry: methods.Method) -> dict | str:
        return "adds virtual tokens, so not an identity at initialisation"

    def default_check_roles(self, entry: methods.Method) -> dict:
        return {}


def _initialisation_config(entry: methods.Method, extra: dict) -> dict:
    """The LoraConfig part a data-driven initialisation reads (EvaConfig, CordaConfig), from the entry's options."""
    if entry.data_init == "eva":
        from peft import EvaConfig

        return {"eva_config": EvaConfig(rho=extra["eva_rho"])}
    if entry.data_init == "corda":
        from peft.tuners.lora.config import CordaConfig

        return {"corda_config": CordaConfig(corda_method=extra["corda_method"])}
    return {}


def _first(batches, n: int):
    for i, batch in enumerate(batches):
        if i >= n:
            return
        yield batch


def _corda(model: nn.Module, config, extra: dict, batches) -> None:
    """CorDA's covariance of each target's inputs over the first batches, then its decomposition (peft)."""
    import torch
    from peft.tuners.lora.corda import preprocess_corda

    def run_model():  # one unpadded example per forward pass: peft's hook takes a (tokens, width) input
        with torch.no_grad():
            for batch in _first(batches, extra["corda_batches"]):
                mask = batch.get("attention_mask", torch.ones_like(batch["input_ids"])).bool()
                for ids, keep in zip(batch["input_ids"], mask):
                    model(input_ids=ids[keep][None])

    preprocess_corda(model, config, run_model=run_model)


def _loftq(model: nn.Module, method: str) -> None:
    """LoftQ (one iteration) on a bitsandbytes 4-bit base: B·A is the best rank-r fit of the quantization error
    W - Q, with W read from the base's safetensors (peft's reader and rank decomposition, as its
    replace_lora_weights_loftq). Not that function itself: peft 0.21.2 moves the weight to "cuda" unconditionally,
    and dequantizes the stored blocks, whose layout bitsandbytes' CPU kernels change after a first forward pass
    (measured: a 0.11 error on weights of mean size 0.016). Q is read as the layer computes it, from its output on
    the identity, on any device and kernel. B is divided by the adapter's scale, so any lora_alpha works."""
    import torch
    from peft.tuners.lora import Linear4bit
    from peft.utils.loftq_utils import _low_rank_decomposition, _SafetensorLoader

    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, Linear4bit)]
    if not layers:
        raise ValueError(f"{method} adapter: LoftQ fits LoRA to a 4-bit base's quantization error; the base is not "
                         f"4-bit (set quantization: 4bit)")
    loader = _SafetensorLoader(model, model.base_model.config._name_or_path)
    for name, module in layers:
        base = module.get_base_layer()
        a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
        with torch.no_grad():
            eye = torch.eye(base.in_features, device=a.device)
            computed = base(eye).float() - (0 if base.bias is None else base.bias.float())
            weight = loader.get_tensor(name.removeprefix("base_model.model.") + ".weight").to(a.device).float()
            fit = _low_rank_decomposition(weight - computed.T, reduced_rank=module.r["default"])
            a.copy_(fit["R"].to(a.dtype))
            b.copy_((fit["L"] / module.scaling["default"]).to(b.dtype))


def _keep_initial_adapter(model: nn.Module, init: str) -> None:
    """The initial adapter, which peft's conversion at save subtracts (PiSSA, OLoRA, CorDA change the base)."""
    import atexit
    import shutil
    import tempfile

    initial = Path(tempfile.mkdtemp(prefix="initial-adapter-"))
    atexit.register(shutil.rmtree, initial, True)
    model.peft_config["default"].init_lora_weights = True  # as peft's conversion expects it saved
    model.save_pretrained(str(initial), safe_serialization=True)
    model.peft_config["default"].init_lora_weights = init
    model.initial_adapter_dir = str(initial)


BACKENDS = {b.name: b for b in (Bottleneck(), Peft(), Prompt())}


def of_method(method: str):
    """The backend of a method by name; a peft type without an entry is prompt learning if its config is."""
    entry = methods.get(method)
    if entry.family == "peft" and method not in methods.TABLE:
        from peft import PromptLearningConfig
        from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
        from peft.utils import PeftType

        if issubclass(PEFT_TYPE_TO_CONFIG_MAPPING[PeftType(entry.peft_type)], PromptLearningConfig):
            return BACKENDS["prompt"]
    return BACKENDS[entry.family]


def of_model(model: nn.Module):
    """The backend of the adapter a model carries (prompt learning before peft: it is a peft model too)."""
    for name in ("bottleneck", "prompt", "peft"):
        if BACKENDS[name].owns(model):
            return BACKENDS[name]
    raise ValueError("model carries no adapter")


def of_saved(config: dict):
    """The backend that reads a saved adapter_config.json."""
    return BACKENDS["bottleneck"] if config.get("format") == bottleneck.FORMAT else BACKENDS["peft"]


def identity_options(method: str) -> dict | str:
    """Options that make the method's initialisation an identity, or why it never is one."""
    entry = methods.get(method)
    return of_method(method).default_identity(entry) if entry.identity is None else entry.identity


def adapter_markers(method: str) -> tuple[str, ...]:
    """Substrings of the names of a method's own parameters."""
    return of_method(method).markers(methods.get(method))
