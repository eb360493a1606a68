import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The local copy of the upstream data (CI: ../shared/data beside the clone)."""
    path = Path(os.environ.get("PEFT_BENCH_DATA_MIRROR") or ROOT.parent / "shared" / "data")
    if not (path / "LLM-Adapters").is_dir():
        pytest.skip(f"no data mirror at {path} (set PEFT_BENCH_DATA_MIRROR)")
    return path


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    from tiny_model import save_tiny

    return save_tiny(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture()
def tiny(tiny_dir):
    """A freshly loaded tiny model and its tokenizer (fresh each test: adapters modify models in place)."""
    from pipeline_lib import models

    return models.load(tiny_dir)


SESSION_START = __import__("time").time()


def pytest_terminal_summary(terminalreporter):
    """Show the fault-injection summary line (tests/test_faults.py) at the end of the run."""
    summary = Path(__file__).parent / ".fault-summary.txt"
    if summary.is_file() and summary.stat().st_mtime > SESSION_START:
        lines = summary.read_text().splitlines()
        terminalreporter.write_sep("=", "fault injection")
        terminalreporter.write_line(lines[0])
        terminalreporter.write_line(f"bad inputs tried: {'; '.join(lines[1:])}")
