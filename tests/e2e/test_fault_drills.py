"""The fault drills (issue: reliability and security), end to end on DuckDB and PostgreSQL.

Each drill injects its fault into a real run (`tests/e2e/drill_driver.py`
patches the real code inside the run's own process) and compares the
outcome with a clean run of the same landing files: every mart by content
checksum, every raw table by row count.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import signal
import sqlite3
import subprocess
import sys

import pytest

from conftest import REPO, pg_database
from crm_pipeline.load.specs import SPECS
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sample.generate import generate
from e2e.test_pipeline import pipeline_env, run_main
from e2e.test_quality_gate import checksums

pytestmark = pytest.mark.e2e
END = dt.date(2026, 11, 22)
SAMPLE = {"customers": 150, "seed": 3, "end_date": END}
DRIVER = REPO / "tests" / "e2e" / "drill_driver.py"


@contextlib.contextmanager
def new_warehouse(engine: str, tmp):
    if engine == "duckdb":
        yield f"duckdb:///{tmp}/warehouse.duckdb"
    else:
        with pg_database() as url:
            yield url


def raw_counts(url: str) -> dict[str, int]:
    with Warehouse.from_url(url) as wh:
        counts = {e: wh.fetchone(f"select count(*) from raw.{e}")[0] for e in SPECS if wh.table_exists("raw", e)}
    return {e: n for e, n in counts.items() if n}


def snapshot(url: str) -> dict:
    return {"marts": checksums(url), "raw": raw_counts(url)}


def own_airflow_home(env: dict, airflow_db, tmp) -> dict:
    """A copy of the migrated Airflow metadata DB, so this drill's task instances can be read alone."""
    home = tmp / "airflow"
    home.mkdir()
    shutil.copy(airflow_db / "airflow.db", home / "airflow.db")
    return {**env, "AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"}


def run_driver(env: dict, as_of: dt.date = END, **faults: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DRIVER), "--date", as_of.isoformat()],
        env={**env, **faults},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


def _out(proc) -> str:
    return proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def reference(request, tmp_path_factory, airflow_db):
    """A clean run of the sample community: what every drill must end equal to."""
    tmp = tmp_path_factory.mktemp(f"reference-{request.param}")
    generate(tmp / "landing", tmp / "truth", **SAMPLE)
    with new_warehouse(request.param, tmp) as url:
        proc = run_main(pipeline_env({"landing": tmp / "landing", "url": url, "tmp": tmp}, airflow_db), END)
        assert proc.returncode == 0, _out(proc)
        yield {"engine": request.param, "landing": tmp / "landing", "snapshot": snapshot(url)}


@pytest.fixture
def drill(reference, tmp_path, airflow_db):
    """A fresh warehouse of the reference's engine, over a copy of the reference's landing files."""
    landing = tmp_path / "landing"
    shutil.copytree(reference["landing"], landing)
    with new_warehouse(reference["engine"], tmp_path) as url:
        env = pipeline_env({"landing": landing, "url": url, "tmp": tmp_path}, airflow_db)
        yield {"url": url, "landing": landing, "env": env, "tmp": tmp_path}


def test_drill_1_a_load_killed_after_its_first_commit_reruns_to_a_clean_result(reference, drill):
    url = drill["url"]
    # SIGKILL inside the second batch's transaction, after its rows were written.
    proc = run_driver(drill["env"], CRM_DRILL_KILL_AT_APPEND="2")
    assert proc.returncode == -signal.SIGKILL, _out(proc)
    with Warehouse.from_url(url) as wh:
        batches = wh.fetchall("select entity, loaded_rows from audit.load_batches")
    assert len(batches) == 1 and batches[0][1] > 0  # the first batch committed...
    assert raw_counts(url) == dict(batches)  # ...the killed one left no row behind

    proc = run_main(drill["env"], END)
    assert proc.returncode == 0, _out(proc)
    assert snapshot(url) == reference["snapshot"]  # no duplicate, nothing missing, same marts


@pytest.mark.mariadb
@pytest.mark.parametrize("warehouse_url", ["duckdb", "postgres"], indirect=True)
def test_drill_1_a_killed_sql_extract_does_not_move_the_watermark(mariadb_url, warehouse_url):
    from plugins.sources.test_sql_source import DDL, _exec, _insert

    _exec(mariadb_url, DDL)
    for i, hour in enumerate((10, 11, 12), start=1):
        _insert(mariadb_url, f"o{i}", "paid", 10 * i, f"2026-11-01 {hour}:00:00")
    extract = (
        "import datetime as dt, sys, zoneinfo; import drill_driver; drill_driver._patch_appends(); "
        "from crm_pipeline.load.warehouse import Warehouse; from crm_pipeline.sources.sql import extract_entity; "
        "wh = Warehouse.from_url(sys.argv[1]); "
        "print(extract_entity(wh, sys.argv[2], 'orders', dt.date(2026, 11, 22), zoneinfo.ZoneInfo('Asia/Shanghai')))"
    )

    def run(**faults):
        env = {"PYTHONPATH": f"{REPO / 'plugins'}:{REPO / 'tests' / 'e2e'}", **faults}
        return subprocess.run(
            [sys.executable, "-c", extract, warehouse_url, mariadb_url], env=env, capture_output=True, text=True
        )

    def state():
        with Warehouse.from_url(warehouse_url) as wh:
            mark = wh.fetchone("select watermark from audit.watermarks where entity = 'orders'")
            return mark and mark[0], sorted(wh.fetchall("select order_id, status from raw.orders"))

    assert run().returncode == 0
    first = state()
    assert first == ("2026-11-01T12:00:00", [("o1", "paid"), ("o2", "paid"), ("o3", "paid")])

    _insert(mariadb_url, "o4", "paid", 40, "2026-11-01 14:00:00")
    _insert(mariadb_url, "o1", "shipped", 10, "2026-11-01 15:00:00")
    killed = run(CRM_DRILL_KILL_AT_APPEND="1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert state() == first  # rows and watermark as before the killed extract

    assert run().returncode == 0
    assert state() == (
        "2026-11-01T15:00:00",
        [("o1", "paid"), ("o1", "shipped"), ("o2", "paid"), ("o3", "paid"), ("o4", "paid")],
    )
    assert run().returncode == 0
    assert state()[1] == sorted([("o1", "paid"), ("o1", "shipped"), ("o2", "paid"), ("o3", "paid"), ("o4", "paid")])


def test_drill_2_a_mart_model_failing_mid_build_publishes_nothing(reference, drill, monkeypatch):
    url, env, earlier = drill["url"], drill["env"], END - dt.timedelta(days=7)
    proc = run_main(env, earlier)
    assert proc.returncode == 0, _out(proc)
    before = checksums(url)

    # A copy of the dbt project whose customer-risk mart fails at run time, on both engines.
    broken = drill["tmp"] / "dbt_project"
    shutil.copytree(REPO / "dbt_project", broken, ignore=shutil.ignore_patterns("target", "logs"))
    model = broken / "models" / "marts" / "crm" / "fct_customer_risk.sql"
    text = model.read_text()
    assert text.rstrip().endswith("select * from final")
    model.write_text(text.rstrip() + "\nwhere cast('drill' as integer) = 1\n")

    proc = run_driver(env, END, CRM_DRILL_DBT_PROJECT=str(broken))
    assert proc.returncode != 0 and "failed tasks: dbt_build" in proc.stdout, _out(proc)
    assert checksums(url) == before  # every published mart still serves its previous version
    with Warehouse.from_url(url) as wh:
        # Mid-build: marts built before the failure hold the new day in marts_build, the failed one does not.
        assert wh.fetchone("select max(as_of_date) from marts_build.fct_customer_rfm")[0] == END
        assert wh.fetchone("select max(as_of_date) from marts_build.fct_customer_risk")[0] == earlier
        assert wh.fetchone("select max(as_of_date) from marts.fct_customer_rfm")[0] == earlier
        run_id, status = wh.fetchone(
            "select run_id, status from audit.mart_builds order by started_at desc, build_id limit 1"
        )
    assert status == "failed"

    # Clearing only the publish task of the failed run must not publish the half-built marts.
    from crm_pipeline.pipeline import check_and_publish
    from crm_pipeline.quality.gate import StaleBuildError

    for key, value in env.items():
        if key.startswith("CRM_"):
            monkeypatch.setenv(key, value)
    with pytest.raises(StaleBuildError, match="failed build"):
        check_and_publish(END, "crm_transform", run_id)
    assert checksums(url) == before

    # After the fix, every mart switches to the new day together.
    proc = run_main(env, END)
    assert proc.returncode == 0, _out(proc)
    assert snapshot(url) == reference["snapshot"]
    with Warehouse.from_url(url) as wh:
        published = wh.fetchall(
            "select mart, count(distinct published_at) from audit.publishes where as_of_date = %s group by mart",
            (END,),
        )
    assert len(published) == 8 and {n for _, n in published} == {1}


def test_drill_3_a_transient_database_error_is_retried_without_duplicates(reference, drill, airflow_db):
    env = own_airflow_home(drill["env"], airflow_db, drill["tmp"])
    env.update(CRM_TASK_RETRIES="2", CRM_RETRY_DELAY_SECONDS="1")
    # The third batch's bulk insert raises the engine's connection error after writing its rows.
    proc = run_driver(env, CRM_DRILL_TRANSIENT_AT_APPEND="3")
    assert proc.returncode == 0, _out(proc)
    assert snapshot(drill["url"]) == reference["snapshot"]
    with sqlite3.connect(f"{env['AIRFLOW_HOME']}/airflow.db") as meta:
        retried = meta.execute("select task_id, try_number, state from task_instance where try_number > 1").fetchall()
    assert retried == [("load_files", 2, "success")]
