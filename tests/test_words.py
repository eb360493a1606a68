"""Words that stay true: every repository path and every `pipeline_lib.` module name that the docs, the README,
comments and docstrings name exists (a rename that leaves one behind fails here). Dated measurements
(docs/measurements/) are records of their day and name the tree as it was then; they are not checked."""
import ast
import re
import subprocess

from helpers import ROOT

TOP = ("pipeline_lib", "scripts", "rules", "tests", "docs", "benchmarks", "config", "schemas", "profiles",
       "published", "captions", ".ci")
# a path starting at one of the project's folders; it ends where a placeholder (<model>, {name}, *) begins
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./-]*)")
STAGES = sorted(p.name for p in (ROOT / "pipeline_lib").iterdir() if (p / "__init__.py").is_file())
# a stage's module named the short way, as the docs and comments do (`report/costs.py` is pipeline_lib/report/costs.py)
STAGE_PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(STAGES) + r")/[\w/-]*\.py)\b")
MODULE = re.compile(r"(?<![\w./])(pipeline_lib(?:\.\w+)+)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# names that look like modules and are not: the bottleneck adapters' saved format (adapters/bottleneck/config.py)
NOT_MODULES = {"pipeline_lib.bottleneck"}
TEXT = ("*.md", "*.py", "*.smk", "Snakefile", "*.yaml", "*.toml", "*.rst", "Makefile", "*.cfg", ".ci/run")


def tracked() -> list:
    names = subprocess.run(["git", "ls-files", *TEXT], cwd=ROOT, capture_output=True, text=True).stdout.split()
    # this file names missing paths on purpose (its checker's own test)
    return [ROOT / n for n in names if not n.startswith("docs/measurements/") and n != "tests/test_words.py"
            and (ROOT / n).is_file()]


def _exists(path: str) -> bool:
    """A path, or, where it stops at a placeholder (`config/paper-*.yaml`), some path it begins."""
    if path.endswith("-"):
        return any(ROOT.glob(path + "*"))
    path = path.rstrip("./")
    return not path or (ROOT / path).exists()


def _defines(module_file, name: str) -> bool:
    tree = ast.parse(module_file.read_text())
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and node.name == name:
            return True
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            return True
    return False


def _module_resolves(dotted: str) -> bool:
    """`pipeline_lib.a.b[.name]`: each part a package or module, the last possibly a name its module defines."""
    parts, here = dotted.split("."), ROOT
    for i, part in enumerate(parts):
        if (here / part).is_dir():
            here = here / part
        elif (here / f"{part}.py").is_file():
            rest = parts[i + 1:]
            return not rest or _defines(here / f"{part}.py", rest[0])
        else:
            return i > 1 and (here / "__init__.py").is_file() and _defines(here / "__init__.py", part)
    return True


def test_every_named_path_and_module_exists():
    missing = []
    for file in tracked():
        text = file.read_text(encoding="utf-8", errors="replace")
        where = file.relative_to(ROOT)
        missing += [f"{where}: {p}" for p in PATH.findall(text) if not _exists(p)]
        missing += [f"{where}: {p}" for p in STAGE_PATH.findall(text) if not (ROOT / "pipeline_lib" / p).is_file()]
        missing += [f"{where}: {m}" for m in MODULE.findall(text) if m not in NOT_MODULES and not _module_resolves(m)]
        if file.suffix == ".md":
            missing += [f"{where}: link {link}" for link in LINK.findall(text)
                        if "://" not in link and not link.startswith("mailto:")
                        and not (file.parent / link).exists()]
    assert not missing, "named but not in the repository:\n" + "\n".join(sorted(set(missing)))


def test_the_checker_finds_a_missing_path_and_module(tmp_path):
    """The patterns above do find what they look for (a checker that matches nothing would pass anything)."""
    text = "see pipeline_lib/nowhere.py, scripts/finetune.py and pipeline_lib.training.job.finetune, " \
           "pipeline_lib.training.job.nothing and [a link](docs/running.md)"
    assert PATH.findall(text) == ["pipeline_lib/nowhere.py", "scripts/finetune.py", "docs/running.md"]
    assert [p for p in PATH.findall(text) if not _exists(p)] == ["pipeline_lib/nowhere.py"]
    assert [m for m in MODULE.findall(text) if not _module_resolves(m)] == ["pipeline_lib.training.job.nothing"]
