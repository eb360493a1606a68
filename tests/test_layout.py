"""The package's shape, checked: imports point one way down its layers (pipeline_lib/__init__.py lists them), every
rule runs its own thin script (scripts/<rule>.py: arguments in, one stage function called), no job reaches the
support matrix or the test scaffolding, no private name is imported across modules, the catalog and the planning
import without torch (so the Snakefile's parse never needs it, shown by a dry run with torch made unimportable), and
nothing edits sys.path or silences an import-order warning."""
import ast
import re
import subprocess
import sys
import textwrap

import pytest

from helpers import ROOT, TINY, command

PACKAGE = ROOT / "pipeline_lib"
SCRIPTS = ROOT / "scripts"
# each layer may import itself and the layers before it, never one after it
LAYERS = ["runtime", "catalog", "planning", "data", "models", "adapters", "training", "evaluation", "report", "support",
          "testing"]
JOB_SCRIPTS = sorted(p.stem for p in SCRIPTS.glob("*.py")
                     if p.stem not in ("cuda_check", "precision", "support_docs", "config_docs"))  # what rules run
# what a script may call besides its one stage function: argument helpers and the records it parses into
PARSING = {"pipeline_lib.planning.commands.add_model_args", "pipeline_lib.planning.commands.start_job",
           "pipeline_lib.planning.commands.add_reference_args",
           "pipeline_lib.catalog.datasets.Source", "pipeline_lib.catalog.datasets.DatasetSpec",
           "pipeline_lib.planning.render.RenderPlan"}
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
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from pipeline_lib.<stage> import <module>`
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


def test_no_job_reaches_the_support_matrix_or_the_test_scaffolding(graph):
    def reach(start):
        seen, todo = set(), list(start)
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen
    for script in JOB_SCRIPTS:
        found = sorted(m for m in reach(imports(SCRIPTS / f"{script}.py"))
                       if m.startswith(("pipeline_lib.support", "pipeline_lib.testing")))
        assert not found, f"scripts/{script}.py reaches {found}"


def test_every_rule_runs_its_own_thin_script(tmp_path, machine):
    """Each rule's command runs scripts/<rule>.py (the `tables` rule: render's), through scripts/on_gpus.py for a
    model job; each script calls one function of a stage besides its argument helpers."""
    done = subprocess.run(command(tmp_path / "work", machine, "-n", "-p", configfiles=TINY), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ran = re.findall(r"^(?:local)?rule (\w+):.*?^Shell command: (.*?)$", done.stdout, re.M | re.S)
    assert len(ran) > 10
    for rule, shell in [(r, s) for r, s in ran if r != "all"]:  # `all` only collects the tables
        scripts = re.findall(r"scripts/(\w+)\.py", shell)
        assert scripts and scripts[-1] == ("render" if rule == "tables" else rule), (rule, shell)
        assert set(scripts[:-1]) <= {"on_gpus"}, (rule, shell)
    for script in [*JOB_SCRIPTS]:
        tree = ast.parse((SCRIPTS / f"{script}.py").read_text())
        names = {a.asname or a.name: f"{n.module}.{a.name}" for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module.startswith("pipeline_lib") for a in n.names}
        called = {names[c.func.id] for c in ast.walk(tree)
                  if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in names}
        stage = called - PARSING
        assert len(stage) == 1, f"scripts/{script}.py calls {sorted(stage)}: one stage function expected"
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body), \
            f"scripts/{script}.py defines code: it belongs in the library"


def test_no_private_name_is_imported_across_modules():
    """A name with a leading underscore is its module's own: no other module (tests and benchmarks included)
    imports it or reaches it as `module._name`."""
    offenders = []
    files = [*PACKAGE.rglob("*.py"), *SCRIPTS.glob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
             *(ROOT / "tests").rglob("*.py")]
    for path in files:
        tree = ast.parse(path.read_text())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline_lib"):
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: {a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
                modules.update(a.asname or a.name for a in node.names)
            elif isinstance(node, ast.Import):
                modules.update(a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("pipeline_lib"))
        offenders += [f"{path.relative_to(ROOT)}:{n.lineno}: {n.value.id}.{n.attr}" for n in ast.walk(tree)
                      if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in modules
                      and n.attr.startswith("_") and not n.attr.startswith("__")]
    assert not offenders, offenders


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


# what `snakemake --lint` still says, each for a reason docs/architecture.md ("Snakemake's linter") gives
EXPLAINED_LINTS = {"Specify a conda environment or container for each rule.",
                   "Shell command directly uses variable DATA_ORIGIN from outside of the rule",
                   "Shell command directly uses variable MODEL_LOCK from outside of the rule"}


def test_snakemake_lint_says_only_what_the_docs_explain(tmp_path, machine):
    done = subprocess.run(command(tmp_path / "work", machine, "--lint", configfiles=TINY), capture_output=True,
                          text=True, timeout=300)
    said = {line.strip()[2:].rstrip(":") for line in (done.stdout + done.stderr).splitlines()
            if line.startswith("    * ")}
    assert said, (done.stdout + done.stderr)[-2000:]  # the linter ran and found the explained ones
    assert said <= EXPLAINED_LINTS, said - EXPLAINED_LINTS


def test_no_import_circle_anywhere():
    """Not between stages (the layers) and not inside one: e.g. report/'s writers use report/formats.py, the leaf,
    and never the outputs catalogue that calls them. `from package import submodule` depends on the submodule only."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                edges |= subs if len(subs) == len(node.names) else {node.module, *subs}
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
        graph[name] = edges - {name}
    seen: set[str] = set()

    def circle_from(node, path):
        if node in path:
            return path[path.index(node):] + [node]
        if node in seen:
            return None
        for nxt in sorted(graph[node]):
            found = circle_from(nxt, path + [node])
            if found:
                return found
        seen.add(node)
        return None
    for module in sorted(graph):
        circle = circle_from(module, [])
        assert not circle, " -> ".join(circle)
