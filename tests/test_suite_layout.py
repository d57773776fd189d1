"""The suite's own layout: a test file imports helpers (tests/e2e/helpers.py, sql_orders.py), never another
test file, so collecting or scheduling one file never drags in another's tests and fixtures."""

from __future__ import annotations

import ast

from conftest import REPO


def test_no_test_file_imports_another():
    found = []
    files = sorted((REPO / "tests").rglob("*.py"))
    assert any(p.name == "helpers.py" for p in files)
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            found += [f"{path.relative_to(REPO)}: {m}" for m in modules if m.rpartition(".")[2].startswith("test_")]
    assert found == []
