"""Shared fixtures: throwaway PostgreSQL / MariaDB databases and an isolated pipeline environment."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

# Airflow reads its home at import: give the test session its own, before
# anything imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="crm-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

REPO = Path(__file__).resolve().parents[1]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
SECRET = "test-secret"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB for dag.test()."""
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags")}
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True
    )
    return _AIRFLOW_HOME


@contextlib.contextmanager
def pg_database(prefix: str = "crm_test"):
    """A throwaway PostgreSQL database; yields its URL and drops it afterwards."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(**PG)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
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
    monkeypatch.delenv("CRM_SHOP_DB_URL", raising=False)
    from zoneinfo import ZoneInfo

    return {"landing": landing, "url": warehouse_url, "tmp": tmp_path, "tz": ZoneInfo("Asia/Shanghai")}


SERVICE_FIXTURES = {"pg_url": "postgres", "mariadb_url": "mariadb"}
ENGINES = ("duckdb", "postgres", "mariadb", "sqlite")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    """Mark each test with the services it needs, from its fixtures and parameters, so that
    `-m "not postgres"` leaves out every PostgreSQL run whichever way it reaches the database.

    And group them for `make test`'s processes (`--dist loadgroup`): a file's tests for one engine
    run in one process, so a module fixture (a reference run) is built once, while the same file's
    other engine runs beside it. End-to-end tests go first: they are the long ones, and a long one
    started last leaves the other process idle.
    """
    for item in items:
        needs = {mark for name, mark in SERVICE_FIXTURES.items() if name in item.fixturenames}
        callspec = getattr(item, "callspec", None)
        params = [v for v in (callspec.params.values() if callspec else ()) if isinstance(v, str)]
        needs |= {v for v in params if v in ("postgres", "mariadb")}
        for mark in sorted(needs):
            item.add_marker(getattr(pytest.mark, mark))
        engine = "-".join(v for v in params if v in ENGINES) or "any"
        item.add_marker(pytest.mark.xdist_group(f"{item.path.name}:{engine}"))
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)  # stable: order within kept
