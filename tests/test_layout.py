"""The package's shape, checked: imports point one way down its layers (pipeline_lib/__init__.py lists them), no job
reaches the tools, the catalog and the planning import without torch (so the Snakefile's parse never needs it, shown
by a dry run with torch made unimportable), and nothing edits sys.path or silences an import-order warning."""
import ast
import subprocess
import sys
import textwrap

import pytest

from helpers import ROOT, TINY, command

PACKAGE = ROOT / "pipeline_lib"
# each layer may import itself and the layers before it, never one after it
LAYERS = ["runtime", "catalog", "planning", "data", "models", "adapters", "training", "evaluation", "report", "jobs",
          "cli", "tools"]
ENTRY_POINTS = ["fetch_data", "prepare_data", "prepare_model", "finetune", "evaluate", "render"]  # what the rules run
HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "lm_eval")


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path) -> set[str]:
    """Every pipeline_lib module a file imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline_lib"):
            assert node.level == 0, f"{path}: a relative import"
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from pipeline_lib.x import module`
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipeline_lib"))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules} for name, path in modules.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 else -1


def test_imports_point_one_way(graph):
    backwards = [f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer(b) > layer(a)]
    assert not backwards, "imports against the layers:\n" + "\n".join(sorted(backwards))
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, none against the layers {LAYERS}")


def test_no_job_reaches_the_tools(graph):
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen
    for entry in ["pipeline_lib.jobs", *(f"pipeline_lib.cli.{e}" for e in ENTRY_POINTS)]:
        tools = sorted(m for m in reach(entry) if m.startswith("pipeline_lib.tools"))
        assert not tools, f"{entry} reaches {tools}"


BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in {HEAVY!r}:
                raise ImportError(f"{{name}} imported where no heavy library may be (test_layout.py)")
    sys.meta_path.insert(0, Blocked())
""")


def test_catalog_and_planning_import_without_torch(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    names = sorted(module_name(p) for folder in ("catalog", "planning") for p in (PACKAGE / folder).rglob("*.py"))
    code = "import importlib\n" + "".join(f"importlib.import_module({n!r})\n" for n in names)
    code += "from pipeline_lib.report import outputs\nprint('imported', len(" + repr(names) + "))"
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout.strip(), "modules of catalog/ and planning/ with torch, transformers and peft unimportable")


def test_the_snakefile_parses_without_torch(tmp_path, machine):
    """A dry run of the tests' tiny config builds the whole DAG with the heavy libraries unimportable."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(command(tmp_path / "work", machine, "-n", configfiles=TINY), capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "finetune" in done.stdout and "evaluate" in done.stdout


def test_nothing_edits_sys_path_or_silences_import_order():
    tracked = subprocess.run(["git", "ls-files", "*.py", "*.smk", "Snakefile"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    offenders = []
    for name in tracked:
        text = (ROOT / name).read_text()
        if "noqa: " + "E402" in text:  # spelled in two parts so that this test does not find itself
            offenders.append(f"{name}: noqa E402")
        if name.endswith(".py"):
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
                    offenders.append(f"{name}:{node.lineno}: sys.path")
        elif "sys.path" in text:
            offenders.append(f"{name}: sys.path")
    assert not offenders, offenders
