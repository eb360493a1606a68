"""An AVX2-only x86 CPU, emulated on a CPU with AVX-512 BF16, for every Python process that has this folder on
PYTHONPATH (tests/helpers.py sets it with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2).

The two variables make torch and oneDNN use AVX2 kernels only (measured with torch 2.13: a bf16 matmul falls from
1171 to 0.9 GFLOP/s, float32 stays at ~222, as on an AVX2-only AMD EPYC). bitsandbytes decides its 4-bit CPU
kernel by its own CPUID check, which no variable changes: this hook answers "no AVX-512 BF16" for it, so it takes
the kernel path of such a CPU (measured: the DoRA identity error on a 4-bit base becomes 1.72e-03, the value
reported from the AMD machine)."""
import importlib.abc
import sys


class _NoAvx512Bf16(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "bitsandbytes.backends.cpu.ops":  # imported after bitsandbytes.functional, which it reads
            functional = sys.modules.get("bitsandbytes.functional")
            if functional is not None:
                functional.has_avx512bf16 = lambda: False
        return None


sys.meta_path.insert(0, _NoAvx512Bf16())
