"""Every architecture x every method, checked numerically (the checks behind docs/adapter-support.md)."""
import pytest

from pipeline_lib.catalog import methods
from pipeline_lib.support import checks as support

pytestmark = pytest.mark.slow  # every method x 10 architectures, each trained, saved, merged and decoded

# What the pinned peft (0.21.2, with transformers 5.24) does not do; each must keep failing for the stated reason
# (a regular expression over the failure), else update the docs. GPT-2's attention and MLP are Conv1D layers.
CONV1D = ["loha", "lokr", "oft", "beft", "c3a", "miss", "psoft", "shira", "road", "adamss", "boft", "delora", "glora",
          "hra", "lily", "peanut", "supertuning"]
KNOWN_UNSUPPORTED = {
    **{("gpt2", m): "Conv1D" for m in CONV1D},
    ("gpt2", "osf"): "no trainable parameters",
    **{(a, "adaption_prompt"): "Unsupported model type for adaption prompt"
       for a in support.ARCHS if a not in ("llama", "mistral", "gpt2")},
    **{(a, "shadow"): "ShadowCarrier|mat1 and mat2 shapes" for a in support.ARCHS},
    # no default LayerNorm targets for these types in peft's mapping
    **{(a, "ln_tuning"): "Please specify `target_modules`" for a in ("opt", "gpt_neo", "gpt_neox")},
    # batched left-padded decoding differs from one row decoded alone
    **{(a, "lily"): r"evaluation decoding .* != reference" for a in ("qwen2", "gpt_neox")},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    """Every method on every architecture, checked once for the module: (arch, method) -> result."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    try:
        return {(r.arch, r.method): r for r in support.run_all(tmp_path_factory.mktemp("support"))}
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("arch", support.ARCHS)
@pytest.mark.parametrize("method", support.METHODS)
def test_method_on_architecture(arch, method, results):
    import re

    result = results[arch, method]
    if methods.get(method).not_applicable:
        assert result.not_applicable and not result.checks
    elif (arch, method) in KNOWN_UNSUPPORTED:
        assert not result.ok and re.search(KNOWN_UNSUPPORTED[arch, method], result.reason), result.reason
    else:
        assert result.ok, result.reason
        assert set(result.checks) == {"trainable", "identity", "save_load", "merge", "generate"}


def test_every_peft_type_is_a_row():
    assert {m.upper() for m in support.METHODS} >= set(methods.peft_types())


def test_checks_catch_a_broken_adapter(tmp_path, monkeypatch):
    """The checks can fail: a bottleneck whose "mam" initialisation is not the identity is caught."""
    from pipeline_lib.adapters import bottleneck

    monkeypatch.setattr(bottleneck.BottleneckLinear, "_init", lambda self, scheme: None)
    result = support.check("llama", "series", tmp_path)
    assert not result.ok and "identity" in result.reason


def test_committed_docs_are_what_the_checks_measure(tmp_path, results):
    """docs/adapter-support.md and docs/parameter-counts.md (the full-precision cells, which do not depend on the
    CPU) are what `python scripts/support_docs.py` writes from the checks measured here, on any machine."""
    from helpers import ROOT
    from pipeline_lib.support import documents as support_docs

    support_docs.write_full(tmp_path, list(results.values()))
    for name in ["adapter-support.md", "parameter-counts.md"]:
        assert (tmp_path / name).read_text() == (ROOT / "docs" / name).read_text(), f"regenerate docs/{name}"


def test_this_devices_4bit_matrix_is_the_committed_one_of_its_kernel_path(tmp_path, support_4bit):
    """The 4-bit cells depend on bitsandbytes' kernel path: compared only with the committed file of this device's
    path, and skipped, saying so, where none is committed."""
    from helpers import ROOT
    from pipeline_lib.support import documents as support_docs

    made = support_docs.write_4bit(tmp_path, support_4bit, support.quantized_kernels())
    committed = ROOT / "docs/adapter-support-4bit" / made.name
    if not committed.is_file():
        pytest.skip(f"no committed 4-bit matrix for kernel path {made.stem} (`python scripts/support_docs.py "
                    f"--part 4bit` writes one); committed: {sorted(p.stem for p in committed.parent.glob('*.md'))}")
    assert made.read_text() == committed.read_text(), f"regenerate {committed.relative_to(ROOT)}"
