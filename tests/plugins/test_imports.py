"""No import cycle between the package's modules, counting imports inside functions (which hide one)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "plugins" / "crm_pipeline"


def module_graph(root: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its file (top level or inside a function)."""
    base = root.parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(base).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join([*anchor, source] if source else anchor)
                # `from pkg import module` imports the module; `from module import name`, the module.
                deps |= {f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names}
        # A package's __init__ is imported with any of its modules: only its own imports are edges.
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            component.append(v)
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import c\n")
    (pkg / "c.py").write_text("from .a import x\n")
    (pkg / "d.py").write_text("import pkg.a\n")
    assert cycles(module_graph(pkg)) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_package_has_no_import_cycle():
    graph = module_graph(PACKAGE)
    assert len(graph) > 30 and "crm_pipeline.load.loader" in graph
    assert cycles(graph) == []


# What the worker image does not need (issue 27): the benchmark, the sample generator, the classifier's
# training and evaluation, `make run` with its summary, `make docs` and `make bi`. The rest is runtime.
TOOLING = (
    "crm_pipeline.bench",
    "crm_pipeline.bench_baseline",
    "crm_pipeline.dbt_docs",
    "crm_pipeline.identity_eval",
    "crm_pipeline.run",
    "crm_pipeline.sample",
    "crm_pipeline.summary",
    "crm_pipeline.superset",
    "crm_pipeline.text.corpora",
    "crm_pipeline.text.evaluate",
    "crm_pipeline.text.train",
)


def _is_tooling(module: str) -> bool:
    return any(module == t or module.startswith(t + ".") for t in TOOLING)


def _pins(lock: str) -> dict[str, str]:
    lines = (REPO / lock).read_text(encoding="utf-8").splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith(("#", " ")))


def test_the_runtime_lock_pins_the_dev_locks_versions_without_the_tools():
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {"apache-airflow", "dbt-core", "great-expectations", "vadersentiment"} <= set(runtime)
    assert {p: v for p, v in runtime.items() if dev.get(p) != v} == {}
    assert {"pytest", "ruff", "sqlfluff", "snownlp"} <= set(dev) - set(runtime)


def test_runtime_modules_reach_no_tooling_module_and_no_dev_package():
    graph = module_graph(PACKAGE)
    assert "crm_pipeline.pipeline" in graph and "crm_pipeline.bench" in graph
    runtime = sorted(m for m in graph if not _is_tooling(m))
    # Transitively, counting imports inside functions (a task imports its module when it runs).
    reached: dict[str, str] = {}
    for start in runtime:
        todo, seen = [start], {start}
        while todo:
            for dep in graph[todo.pop()] - seen:
                seen.add(dep)
                todo.append(dep)
                if _is_tooling(dep):
                    reached.setdefault(dep, start)
    assert reached == {}, f"tooling module <- runtime module that reaches it: {reached}"
    dev_only = {p.replace("-", "_") for p in set(_pins("requirements-dev.lock")) - set(_pins("requirements.lock"))}
    dev_only |= {"xdist", "_pytest"}
    assert {"pytest", "snownlp"} <= dev_only
    found = {}
    for path in [*PACKAGE.rglob("*.py"), *(REPO / "dags").rglob("*.py")]:
        rel = path.relative_to(REPO).with_suffix("").parts
        module = ".".join(rel[1:]) if rel[0] == "plugins" else ".".join(rel)
        if _is_tooling(module.removesuffix(".__init__")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            found |= {f"{module}: {n}" for n in names if n.split(".")[0].lower() in dev_only}
    assert sorted(found) == []
