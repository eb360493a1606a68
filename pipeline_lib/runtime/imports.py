"""What a job process need not import: bitsandbytes, where the job's base model is not quantized.

Why: peft imports bitsandbytes whenever it is installed (to know its quantized layer types), and bitsandbytes'
import looks for its CPU and GPU kernels: measured on a 2-core AMD EPYC (torch 2.13, peft 0.21.2, bitsandbytes
installed), `import torch, transformers, peft` and the Llama modeling module took 4.3 s, 3.3 s with bitsandbytes
hidden, in each of the run's ~15 model-loading job processes. Hidden, it is what an environment without
bitsandbytes is to peft and transformers: both check for it with `importlib.util.find_spec`, which answers None for a
module set to None in `sys.modules`, and skip its layer types; an unquantized model has none."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HIDDEN = "bitsandbytes"


def hide_bitsandbytes() -> bool:
    """Make bitsandbytes look absent to this process; True where it is hidden, False where something had already
    imported it (then it stays)."""
    if HIDDEN not in sys.modules:
        sys.modules[HIDDEN] = None
    return sys.modules[HIDDEN] is None


def quantized_checkpoint(model_dir: str | None) -> bool:
    """Whether a model directory's config.json carries a `quantization_config` (a checkpoint saved quantized, which
    transformers loads with its quantizer: bitsandbytes for a bnb one)."""
    config = Path(model_dir or "", "config.json")
    return bool(model_dir) and config.is_file() and bool(json.loads(config.read_text()).get("quantization_config"))
