"""Every DAG file imports cleanly, cheaply, and follows the house conventions (STYLE.md 7-9)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from conftest import REPO

DAG_FILES = sorted(p for p in (REPO / "dags").glob("*.py"))
HEAVY = ["pandas", "duckdb", "great_expectations", "dbt", "pyarrow", "psycopg2", "pymysql"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    if str(REPO / "dags") not in sys.path:
        sys.path.insert(0, str(REPO / "dags"))
    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {p.stem for p in DAG_FILES}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_id_is_file_name_and_conventions_hold(dagbag, path):
    dag = dagbag.dags.get(path.stem)
    assert dag is not None, f"{path.name} must define a DAG with dag_id {path.stem}"
    assert dag.tags and "crm" in dag.tags
    assert dag.catchup is False
    assert dag.start_date.tzinfo is not None
    assert dag.doc_md and dag.doc_md.strip().startswith(f"# {path.stem}")
    for key in ("owner", "retries", "retry_delay", "on_failure_callback"):
        assert key in dag.default_args, key
    assert isinstance(dag.default_args["retry_delay"], dt.timedelta)


def test_every_task_returns_one_xcom(dagbag):
    """A task annotated `-> dict` would push every key as an XCom of its own besides return_value (Airflow
    infers multiple_outputs): about 55 more execution-API requests a run that nothing reads."""
    tasks = [t for dag in dagbag.dags.values() for t in dag.tasks]
    assert {t.task_id for t in tasks} >= {"check_raw", "extract_sql", "check_and_publish"}
    assert [f"{t.dag_id}.{t.task_id}" for t in tasks if getattr(t, "multiple_outputs", False)] == []


@pytest.fixture(scope="module")
def loaded_after_parsing() -> dict[str, list[str]]:
    """Each DAG file parsed in turn by one new interpreter (not one each: 4 s of a core apiece): the heavy
    modules loaded after each file that were not loaded before it. A file that imports one that an earlier
    file already loaded is not named, but then the earlier file is: all pass only if none imports any."""
    paths = [str(REPO / "dags"), str(REPO / "plugins")]
    code = (
        f"import sys, runpy; sys.path[:0] = {paths!r}\n"
        f"for path in {[str(p) for p in DAG_FILES]!r}:\n"
        "    runpy.run_path(path)\n"
        f"    print('HEAVY', path, ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Log lines (an upstream deprecation warning) may come before or after the marked lines.
    loaded, seen = {}, set()
    for line in out.stdout.splitlines():
        if line.startswith("HEAVY "):
            _, path, names = line.split(" ", 2)
            loaded[path] = [n for n in names.split(",") if n and n not in seen]
            seen.update(loaded[path])
    assert sorted(loaded) == [str(p) for p in DAG_FILES], out.stdout + out.stderr
    return loaded


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_parsing_a_dag_file_imports_nothing_heavy(path, loaded_after_parsing):
    assert loaded_after_parsing[str(path)] == [], f"heavy imports at parse time of {path.name}"


def test_as_of_day_resolution():
    import pendulum

    from crm_pipeline.pipeline import AsOfDateMissingError, resolve_as_of

    # Midnight local on the 22nd is 16:00 UTC on the 21st: the as-of day is the 22nd.
    assert resolve_as_of({}, pendulum.datetime(2026, 11, 21, 16, 0, tz="UTC"), "Asia/Shanghai") == dt.date(2026, 11, 22)
    assert resolve_as_of({"as_of_date": "2026-01-05"}, None, "Asia/Shanghai") == dt.date(2026, 1, 5)
    with pytest.raises(AsOfDateMissingError, match="as_of_date"):
        resolve_as_of({}, None, "Asia/Shanghai")
    with pytest.raises(ValueError, match="not an ISO date"):
        resolve_as_of({"as_of_date": "05/01/2026"}, None, "Asia/Shanghai")


def test_airflow_loads_no_module_of_the_package_as_a_plugin(tmp_path):
    """Airflow imports every .py file under its plugins folder as a top-level module named by the
    file's stem: without plugins/.airflowignore, transform/dbt.py became `dbt` in every Airflow
    process, hiding dbt itself, and ~50 modules (the bench with scipy, the generator) ran again."""
    stems = sorted({p.stem for p in (REPO / "plugins").rglob("*.py")} - {"__init__"})
    code = (
        "import json, sys; from crm_pipeline.config import apply_airflow_env; apply_airflow_env()\n"
        "from airflow import plugins_manager; plugins_manager._get_plugins()\n"
        f"print(json.dumps([m for m in {stems!r} if m in sys.modules]))"
    )
    env = {"PYTHONPATH": str(REPO / "plugins"), "PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "dbt" in stems and proc.stdout.strip().splitlines()[-1] == "[]"
