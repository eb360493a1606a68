"""The environment of an AVX2-only x86 CPU (no AVX-512, no native bf16), emulated: see emulate_avx2/."""
import os
from pathlib import Path

EMULATION = Path(__file__).resolve().parent / "emulate_avx2"


def avx2_env() -> dict:
    path = os.pathsep.join(p for p in [str(EMULATION), os.environ.get("PYTHONPATH", "")] if p)
    return {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "PYTHONPATH": path}
