"""Every architecture x every method, checked numerically (the checks behind docs/adapter-support.md)."""
import pytest

from pipeline_lib.adapters import support

pytestmark = pytest.mark.slow  # 15 methods x 10 architectures, each trained, saved, merged and decoded

# What peft itself does not support; each must keep failing for the stated reason (else update the docs).
KNOWN_UNSUPPORTED = {("gpt2", m): "Conv1D" for m in ("loha", "lokr", "oft")}


@pytest.mark.parametrize("arch", support.ARCHS)
@pytest.mark.parametrize("method", support.METHODS)
def test_method_on_architecture(arch, method, tmp_path):
    result = support.check(arch, method, tmp_path)
    if (arch, method) in KNOWN_UNSUPPORTED:
        assert not result.ok and KNOWN_UNSUPPORTED[arch, method] in result.reason
    else:
        assert result.ok, result.reason
        assert set(result.checks) == {"trainable", "identity", "save_load", "merge", "generate"}


def test_checks_catch_a_broken_adapter(tmp_path, monkeypatch):
    """The checks can fail: a bottleneck whose "mam" initialisation is not the identity is caught."""
    from pipeline_lib.adapters import bottleneck

    monkeypatch.setattr(bottleneck.BottleneckLinear, "_init", lambda self, scheme: None)
    result = support.check("llama", "series", tmp_path)
    assert not result.ok and "identity" in result.reason


def test_committed_docs_are_what_the_checks_measure(tmp_path):
    """docs/adapter-support.md, docs/parameter-counts.md and the README matrix (the full-precision cells, which do
    not depend on the CPU) match a fresh run of the script on any machine; this device's 4-bit matrix matches the
    committed one of its kernel path where one is committed."""
    import shutil
    import subprocess
    import sys

    from snakemake_run import ROOT

    readme = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", readme)
    out = subprocess.run([sys.executable, str(ROOT / "scripts/adapter_support.py"), "--docs", str(tmp_path),
                          "--readme", str(readme)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ["adapter-support.md", "parameter-counts.md"]:
        assert (tmp_path / name).read_text() == (ROOT / "docs" / name).read_text(), f"regenerate docs/{name}"
    assert readme.read_text() == (ROOT / "README.md").read_text(), "regenerate the README matrix"
    (made,) = (tmp_path / "adapter-support-4bit").glob("*.md")
    assert made.stem == support.quantized_kernels()["key"]
    committed = ROOT / "docs/adapter-support-4bit" / made.name
    if committed.is_file():
        assert made.read_text() == committed.read_text(), f"regenerate {committed.relative_to(ROOT)}"
    else:
        print(f"no committed 4-bit matrix for kernel path {made.stem}: `scripts/adapter_support.py --part 4bit` "
              f"writes one")
