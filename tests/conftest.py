"""Shared fixtures: throwaway PostgreSQL / MariaDB databases and an isolated pipeline environment."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

# The session's files on a RAM disk when the machine has one with room (a tmpfs /dev/shm): a run commits
# hundreds of times (Airflow's SQLite metadata, the DuckDB warehouse, dbt's relations), and on a disk
# each commit waits for its fsync. Nothing a test claims rests on a write reaching the disk (a killed
# process's writes are the kernel's either way). CRM_TEST_TMPDIR names another directory, or "disk" for
# the system's temp dir; a TMPDIR of the user's own is kept.
RAM_DISK, RAM_DISK_ROOM = Path("/dev/shm"), 8 * 2**30


def _is_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    return [str(path), "tmpfs"] in (line.split()[1:3] for line in mounts)


def session_temp_dir(environ=os.environ) -> str | None:
    """Where this session's temporary files go, when not the system's temp dir (None)."""
    chosen = environ.get("CRM_TEST_TMPDIR")
    if chosen == "disk" or (chosen is None and "TMPDIR" in environ):
        return None
    if chosen is None:
        if not (_is_tmpfs(RAM_DISK) and os.access(RAM_DISK, os.W_OK)):
            return None
        room = os.statvfs(RAM_DISK)
        if room.f_bavail * room.f_frsize < RAM_DISK_ROOM:
            return None
        chosen = str(RAM_DISK / f"crm-tests-{os.getuid()}")
    os.makedirs(chosen, mode=0o700, exist_ok=True)
    return chosen


if (_TEMP := session_temp_dir()) is not None:  # before anything asks for a temp dir (pytest-xdist's workers
    os.environ["TMPDIR"] = os.environ["CRM_TEST_TMPDIR"] = _TEMP  # inherit the choice, as does every process
    tempfile.tempdir = None  # the tests start)

# Airflow reads its home at import: give the test session its own, before
# anything imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="crm-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

REPO = Path(__file__).resolve().parents[1]
# What the test processes of one session share, made by the first process that imports this file
# (pytest-xdist's workers inherit it): the kept dbt parse (CRM_DBT_PARSE_CACHE: a new warehouse's first
# build starts from it instead of parsing the project; the first build per engine parses in full) and
# Superset's initialised metadata (tests/e2e/test_superset.py).
_MADE_SESSION_DIR = "CRM_TEST_SESSION_DIR" not in os.environ
if _MADE_SESSION_DIR:
    os.environ["CRM_TEST_SESSION_DIR"] = tempfile.mkdtemp(prefix="crm-test-session-")
SESSION_DIR = Path(os.environ["CRM_TEST_SESSION_DIR"])


def pytest_sessionfinish(session):
    """Each test process removes its own Airflow home; the process that made the session's shared
    directory removes it (with pytest-xdist, the controller, after every worker has finished)."""
    import shutil

    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
    if _MADE_SESSION_DIR and not hasattr(session.config, "workerinput"):
        shutil.rmtree(SESSION_DIR, ignore_errors=True)


PARSE_CACHE = str(SESSION_DIR / "dbt-parse")
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
SECRET = "test-secret"


def defined_unit_tests() -> set[str]:
    """The names of every dbt unit test in the project's YAML: what a `dbt test --select test_type:unit` must pass."""
    import yaml

    return {
        t["name"]
        for path in (REPO / "dbt_project" / "models").rglob("*.yml")
        for t in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    }


def costly_touchpoint_joins(url: str, day) -> tuple[list[str], list[str]]:
    """Join conditions in the warehouse's plan of int_feedback__touchpoints (a full refresh) that call
    lower() or regexp_replace() where it costs: (every condition found, the costly ones).

    Costly: in a nested loop's condition, which runs once for every pair of rows compared; or on a
    feedback text in any join, which runs for every text (3.5 million at M) when a few need it.

    The model is compiled by dbt (its tables must exist, empty or not) and explained by the engine
    itself: PostgreSQL's planner folds a subquery's expressions into the join above it, so the
    model's text alone does not say where a function runs.
    """
    import json

    from crm_pipeline.load.warehouse import Warehouse, parse_url
    from crm_pipeline.transform.dbt import artifacts_dir, run_dbt

    run_dbt(["compile", "--select", "int_feedback__touchpoints", "--full-refresh"], day, url=url)
    model = "models/intermediate/feedback/int_feedback__touchpoints.sql"  # not a unit test's compiled copy
    compiled = next((artifacts_dir(parse_url(url)) / "target" / "compiled").glob(f"*/{model}"))
    sql = compiled.read_text(encoding="utf-8")
    with Warehouse.from_url(url) as wh:
        if wh.kind == "postgres":
            plan = wh.fetchone(f"explain (verbose, format json) {sql}")[0]
        else:
            plan = wh.fetchall(f"explain (format json) {sql}")[0][1]
    found: list[tuple[bool, str]] = []  # (a nested loop's, condition)

    def walk(node) -> None:
        if isinstance(node, list):
            for n in node:
                walk(n)
        elif isinstance(node, dict):
            info = node.get("extra_info") if isinstance(node.get("extra_info"), dict) else node
            kind = str(node.get("name") or node.get("Node Type") or "")
            if "JOIN" in kind.upper() or kind == "Nested Loop":
                looped = "NL_JOIN" in kind or "NESTED_LOOP" in kind or kind == "Nested Loop"
                for key in ("Condition", "Conditions", "Join Filter", "Hash Cond", "Merge Cond"):
                    value = info.get(key)
                    found.extend((looped, v) for v in (value if isinstance(value, list) else [value] if value else []))
            for value in node.values():
                walk(value)

    walk(json.loads(plan) if isinstance(plan, str) else plan)
    on_text = re.compile(r"(lower|regexp_replace)\(+[^)]*feedback_text")
    costly = [c for looped, c in found if (looped and re.search(r"(lower|regexp_replace)\(", c)) or on_text.search(c)]
    return [c for _, c in found], costly


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB for dag.test()."""
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags")}
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True
    )
    return _AIRFLOW_HOME


@contextlib.contextmanager
def pg_database(prefix: str = "crm_test", template: str | None = None):
    """A throwaway PostgreSQL database (a copy of `template` when given: nobody may be connected to
    it); yields its URL and drops it afterwards."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(**PG)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create database {name}" + (f' template "{template}"' if template else ""))
        # A commit need not wait for its WAL to reach the disk (only a crash of the server could lose it):
        # a run commits hundreds of times.
        cur.execute(f"alter database {name} set synchronous_commit = off")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name} with (force)")
        admin.close()


@pytest.fixture
def pg_url():
    with pg_database() as url:
        yield url


@pytest.fixture
def mariadb_url():
    import pymysql

    name = f"crm_src_{uuid.uuid4().hex[:12]}"
    admin = pymysql.connect(**MARIADB, autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"create database {name} character set utf8mb4")
    try:
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name}")
        admin.close()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request, tmp_path):
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/warehouse.duckdb"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def crm_env(monkeypatch, tmp_path, warehouse_url):
    """Point every CRM_* setting at this test's own landing dir and warehouse."""
    landing = tmp_path / "landing"
    landing.mkdir()
    monkeypatch.setenv("CRM_LANDING_DIR", str(landing))
    monkeypatch.setenv("CRM_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    monkeypatch.setenv("CRM_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("CRM_KEY_SECRET", SECRET)
    monkeypatch.setenv("CRM_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("CRM_DBT_PARSE_CACHE", PARSE_CACHE)
    monkeypatch.delenv("CRM_SHOP_DB_URL", raising=False)
    from zoneinfo import ZoneInfo

    return {"landing": landing, "url": warehouse_url, "tmp": tmp_path, "tz": ZoneInfo("Asia/Shanghai")}


SERVICE_FIXTURES = {"pg_url": "postgres", "mariadb_url": "mariadb"}
ENGINES = ("duckdb", "postgres", "mariadb", "sqlite")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark each test with the services it needs, from its fixtures and parameters, so that
    `-m "not postgres"` leaves out every PostgreSQL run whichever way it reaches the database.
    End-to-end tests go first: they are the long ones, and one started last leaves a process idle."""
    for item in items:
        needs = {mark for name, mark in SERVICE_FIXTURES.items() if name in item.fixturenames}
        callspec = getattr(item, "callspec", None)
        needs |= {v for v in (callspec.params.values() if callspec else ()) if v in ("postgres", "mariadb")}
        for mark in sorted(needs):
            item.add_marker(getattr(pytest.mark, mark))
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)  # stable: order within kept


def work_unit(nodeid: str) -> str:
    """`make test`'s unit of work: one file's tests for one engine (from the test's parameter id), so
    a module fixture (a drill's reference run) is built once, while the file's other engine runs
    in the other process."""
    path, _, name = nodeid.partition("::")
    params = name[name.find("[") + 1 : name.rfind("]")].split("-") if "[" in name else []
    return f"{path}:{'-'.join(p for p in params if p in ENGINES) or 'any'}"


def pytest_xdist_make_scheduler(config, log):
    """--dist loadscope with work_unit as the scope, handed out in collection order. (pytest-xdist's
    own loadgroup does not group on pytest 9: it renames a node id attribute pytest no longer has.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileEngineScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return FileEngineScheduling(config, log)
