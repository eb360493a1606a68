"""docs/reliability.md, the table of faults and bad inputs, is kept true: every test it names exists, and its
configuration and data sections list exactly the cases their parametrized tests run."""
import ast
import re

from helpers import BAD_CONFIGS, ROOT

DOC = ROOT / "docs/reliability.md"
ROW = re.compile(r"^\| ([FCD]\d+) \|.*\| (tests/[\w/]+\.py)::(\w+) \|$")


def rows() -> list[tuple[str, str, str]]:
    found = [m.groups() for line in DOC.read_text().splitlines() if (m := ROW.match(line))]
    assert found, "no rows read from docs/reliability.md"
    return found


def test_every_named_test_exists():
    defined = {}
    for _, path, name in rows():
        if path not in defined:
            tree = ast.parse((ROOT / path).read_text())
            defined[path] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in defined[path], f"docs/reliability.md names {path}::{name}, which does not exist"


def test_rows_are_numbered_once_and_at_least_sixty():
    ids = [i for i, _, _ in rows()]
    assert len(ids) == len(set(ids)), "a row number is used twice"
    assert len(ids) >= 60


def test_the_config_and_data_sections_list_every_case():
    import importlib.util

    spec = importlib.util.spec_from_file_location("data_validation", ROOT / "tests/data/test_data_validation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    VARIANTS = module.VARIANTS
    kinds = [i[0] for i, _, _ in rows()]
    assert kinds.count("C") == len(BAD_CONFIGS), "docs/reliability.md's configurations differ from BAD_CONFIGS"
    assert kinds.count("D") == len(VARIANTS), "docs/reliability.md's data cases differ from VARIANTS"
