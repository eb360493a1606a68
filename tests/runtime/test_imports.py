"""A job without a quantized base runs without importing bitsandbytes (runtime/imports.py), and one with a quantized
base, or a model directory saved quantized, still gets it."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_lib.runtime.imports import quantized_checkpoint

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = importlib.util.find_spec("bitsandbytes") is not None


def _job(quantization, model=None) -> dict:
    """What a job process has imported after `start_job`, peft's LoRA on a tiny model and one forward."""
    code = f"""
import json, sys
from pipeline_lib.planning.commands import start_job
start_job(1, {quantization!r}, {model!r})
import peft, torch
from peft.import_utils import is_bnb_available
from pipeline_lib.testing.tiny_model import build_model, build_tokenizer
model = peft.get_peft_model(build_model(build_tokenizer()), peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
logits = model(input_ids=torch.tensor([[1, 2, 3]])).logits
print(json.dumps({{"bnb": type(sys.modules.get("bitsandbytes")).__name__,
                  "bnb_submodules": sum(k.startswith("bitsandbytes.") for k in sys.modules),
                  "peft_sees_bnb": is_bnb_available(), "finite": bool(torch.isfinite(logits).all())}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_unquantized_job_imports_no_bitsandbytes_and_its_adapter_runs():
    seen = _job(None)
    assert seen == {"bnb": "NoneType", "bnb_submodules": 0, "peft_sees_bnb": False, "finite": True}


@pytest.mark.skipif(not INSTALLED, reason="bitsandbytes is not installed: nothing to hide or keep")
def test_a_quantized_job_or_a_quantized_checkpoint_keeps_bitsandbytes(tmp_path):
    seen = _job({"bits": 8})
    assert seen["bnb"] == "module" and seen["bnb_submodules"] > 0 and seen["peft_sees_bnb"] and seen["finite"]
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "bitsandbytes"}}))
    seen = _job(None, str(tmp_path))
    assert seen["bnb"] == "module" and seen["bnb_submodules"] > 0 and seen["peft_sees_bnb"]


def test_a_quantized_checkpoint_is_told_by_its_config(tmp_path):
    assert not quantized_checkpoint(None) and not quantized_checkpoint(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert not quantized_checkpoint(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "bitsandbytes"}}))
    assert quantized_checkpoint(str(tmp_path))
