"""The AVX2-only path on every machine: the precision choice, the 4-bit support matrix and a small pipeline run,
each in processes that see an AVX2-only CPU (tests/emulate_avx2: ATEN_CPU_CAPABILITY=avx2,
ONEDNN_MAX_CPU_ISA=AVX2, and bitsandbytes told there is no AVX-512 BF16). On an AVX2-only machine this is the
machine itself."""
import json
import subprocess
import sys

import pytest

from helpers import ONE_LORA, ROOT, avx2_env, run
from pipeline_lib.catalog import dtypes, methods
from pipeline_lib.models import precision
from pipeline_lib.support import checks as support

CHOICE = "import json; from pipeline_lib.models import precision; print(json.dumps(precision.resolve('auto', 'cpu')[1]))"


def choice(env) -> dict:
    done = subprocess.run([sys.executable, "-c", CHOICE], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_the_precision_choice_follows_the_measured_speed():
    avx2 = choice(avx2_env())
    assert avx2["capability"] == "AVX2" and avx2["isa_variables"] == {"ATEN_CPU_CAPABILITY": "avx2",
                                                                      "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert not avx2["bf16_reported"] and avx2["chosen"] == "float32" and "no bf16 support" in avx2["basis"]
    native = choice(None)
    if not native["bf16_reported"]:
        assert native["chosen"] == "float32"
    elif "ratios" in native:  # the step measured: bf16 by its median ratio against the margin
        assert native["chosen"] == ("bfloat16" if native["median"] >= native["margin"] else "float32"), native
        assert "hidden 576" in native["workload"] and len(native["ratios"]) % precision.PAIRS == 0
    else:  # the screen found bf16 collapsed
        assert native["chosen"] == "float32" and native["screen"]["ratio"] < precision.COLLAPSE
    forced = choice({**avx2_env(), precision.FORCE_VARIABLE: "1"})
    assert forced["chosen"] == "bfloat16" and forced["forced"] == f"{precision.FORCE_VARIABLE}=1"
    assert "AVX2" in dtypes.describe(avx2) and "float32" in dtypes.describe(avx2)


def matrix_cells(text: str) -> dict[str, bool]:
    """Method -> whether its 4-bit LLaMA cell is ✅ (a row per method, one column)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| method | llama ("))
    rows = [line for line in lines[start + 2:] if line.startswith("| ")]
    cells = {c[0]: c[1] for c in ([p.strip() for p in row.strip("|").split("|")] for row in rows)}
    assert len(cells) == len(support.METHODS), "a row per method"
    return {name: cell == "✅" for name, cell in cells.items()}


@pytest.mark.slow
def test_the_4bit_support_matrix_on_the_avx2_path(tmp_path):
    """The 4-bit matrix measured on the AVX2 kernel path keeps the method rules and equals the committed file of
    that kernel path: its key names the kernel path (torch's capability, bitsandbytes' kernel), not the host's CPU
    flags, so a real AVX2-only machine finds the file made here under emulation."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts/support_docs.py"), "--part", "4bit", "--docs",
                           str(tmp_path)], capture_output=True, text=True, env=avx2_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (made,) = (tmp_path / "adapter-support-4bit").glob("*.md")
    assert made.stem == "cpu-avx2-bnb-generic", made.stem
    text = made.read_text()
    assert "torch_capability: AVX2" in text and "bnb_avx512bf16_kernel: False" in text
    for method, ok in matrix_cells(text).items():
        assert ok or methods.on_4bit(method) == "checked", method
    committed = ROOT / "docs/adapter-support-4bit" / made.name
    assert text == committed.read_text(), f"regenerate {committed.relative_to(ROOT)}"


@pytest.mark.slow
def test_a_pipeline_run_on_the_avx2_path_trains_and_evaluates_in_float32(tmp_path, machine):
    overrides = {**machine, "eval_sets": ["gsm8k"], "include_base": False, "evaluation": {"dtype": "auto"}}
    done = run(tmp_path, overrides, env=avx2_env(), configfiles=ONE_LORA)
    assert done.returncode == 0, done.stderr[-4000:]
    metrics = json.loads((tmp_path / "results/adapters/tiny-llama/lora/gsm8k_train/metrics.json").read_text())
    score = json.loads((tmp_path / "results/scores/tiny-llama/lora/gsm8k_train/generate/gsm8k.json").read_text())
    assert metrics["precision"]["requested"] == "auto" and metrics["precision"]["chosen"] == "float32"
    assert metrics["training"]["autocast"] == "float32" and metrics["precision"]["capability"] == "AVX2"
    assert score["precision"]["chosen"] == score["evaluation"]["dtype"] == "float32"
    tables = tmp_path / "results/tables"
    # the notes name the verdict and its basis (a bf16 collapse on the screen, no oneDNN support, or a layer too small)
    assert "Evaluation precision: float32 (auto: cpu AVX2, " in (tables / "accuracy_ci.md").read_text()
    assert "Training autocast: float32 (auto: cpu AVX2, " in (tables / "resources.md").read_text()
