"""The environment dbt runs in: DuckDB's buffer limit, PostgreSQL's work_mem, the run's values."""

from __future__ import annotations

import pytest

from crm_pipeline.load import warehouse
from crm_pipeline.load.warehouse import Warehouse, parse_url
from crm_pipeline.transform import dbt


def test_duckdb_memory_limit_is_80_percent_of_ram_at_most_6_gb_unless_set(monkeypatch, tmp_path):
    monkeypatch.delenv("CRM_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(warehouse, "ram_bytes", lambda: 4 * 2**30)
    assert dbt.duckdb_memory_limit() == "3276MiB"  # 0.8 * 4096 MiB = 3276.8
    monkeypatch.setattr(warehouse, "ram_bytes", lambda: 24 * 2**30)
    assert dbt.duckdb_memory_limit() == "5722MiB"  # the cap: 6,000,000,000 / 1,048,576 = 5722.05
    env = dbt.dbt_env(parse_url(f"duckdb:///{tmp_path}/w.duckdb"))
    assert env["CRM_DUCKDB_MEMORY_LIMIT"] == "5722MiB"
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "  ")  # .env.example leaves it empty
    assert dbt.duckdb_memory_limit() == "5722MiB"
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "12GB")
    assert dbt.dbt_env(parse_url(f"duckdb:///{tmp_path}/w.duckdb"))["CRM_DUCKDB_MEMORY_LIMIT"] == "12GB"


def test_the_warehouse_own_duckdb_connection_has_the_same_buffer_limit(monkeypatch, tmp_path):
    """Not only dbt's: the load and the gates read and write through this connection (at scale L its
    buffer, uncapped, grew to 8.7 GB). DuckDB's own default would be 80% of this machine's RAM."""
    monkeypatch.delenv("CRM_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(warehouse, "ram_bytes", lambda: 64 * 2**30)  # the cap, not 80% of 64 GiB

    def limit() -> str:
        with Warehouse.from_url(f"duckdb:///{tmp_path}/w.duckdb") as wh:
            return wh.fetchone("select current_setting('memory_limit')")[0]

    assert limit() == "5.5 GiB"  # 5722 MiB, as DuckDB prints it
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "1GB")
    assert limit() == "953.6 MiB"  # 10^9 bytes


def test_dbt_sessions_on_postgresql_get_work_mem_and_keep_other_options(monkeypatch):
    monkeypatch.delenv("CRM_PG_WORK_MEM", raising=False)
    monkeypatch.delenv("PGOPTIONS", raising=False)
    target = parse_url("postgresql://postgres@127.0.0.1:5432/crm")
    assert dbt.dbt_env(target)["PGOPTIONS"] == "-c work_mem=256MB"
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=0")  # someone's own options stay
    monkeypatch.setenv("CRM_PG_WORK_MEM", "1GB")
    assert dbt.dbt_env(target)["PGOPTIONS"] == "-c statement_timeout=0 -c work_mem=1GB"


def test_the_work_mem_reaches_the_session_dbt_runs_its_sql_in(pg_url, monkeypatch, tmp_path):
    """Through dbt itself: the profile passes no libpq options of its own, so PGOPTIONS is what its connection uses
    (a profile that set `search_path` would replace it, and this would fail)."""
    import datetime as dt
    import re

    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    monkeypatch.setenv("CRM_PG_WORK_MEM", "77MB")  # not a value any server default would have
    result = dbt.run_dbt(
        ["show", "--inline", "select current_setting('work_mem') as wm", "--output", "json"],
        dt.date(2026, 11, 22),
        url=pg_url,
    )
    assert re.search(r'"wm":\s*"77MB"', result.output), result.output[-2000:]


def test_a_new_day_keeps_the_saved_parse_and_compiles_that_days_sql(monkeypatch, tmp_path):
    """The as-of day changes every run; dbt re-parses the whole project when --vars changes, so the day
    travels in CRM_DBT_RUN_VARS. The second day must reuse the first day's parse, and its SQL must be its own:
    a model that kept the first day's date (a stale parse) would date every mart wrong by a day."""
    import datetime as dt

    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    monkeypatch.setenv("CRM_TIMEZONE", "Asia/Shanghai")
    url = f"duckdb:///{tmp_path}/w.duckdb"
    compiled = dbt.artifacts_dir(parse_url(url)) / "target" / "compiled" / "crm_warehouse" / "models"
    rfm = compiled / "marts" / "crm" / "fct_customer_rfm.sql"

    first = dbt.run_dbt(["compile", "--select", "fct_customer_rfm"], dt.date(2026, 11, 20), url=url)
    assert "Starting full parse" in first.output
    assert "cast('2026-11-20' as date) as as_of_date" in rfm.read_text()

    window = {"loaded_after": {}, "prev_as_of_date": "2026-11-20", "prev_as_of_end_utc": "2026-11-20 16:00:00"}
    second = dbt.run_dbt(
        ["compile", "--select", "fct_customer_rfm", "int_customers__orders_counted"],
        dt.date(2026, 11, 21),
        url=url,
        extra_vars={"incremental": window},
    )
    assert "Unable to do partial parsing" not in second.output and "full parse" not in second.output
    sql = rfm.read_text()
    assert "cast('2026-11-21' as date) as as_of_date" in sql and "2026-11-20" not in sql
    # Midnight in Shanghai is 16:00 UTC the day before: the end of the 21st is the 21st, 16:00 UTC.
    orders = (compiled / "intermediate" / "customers" / "int_customers__orders_counted.sql").read_text()
    assert "cast('2026-11-21 16:00:00' as timestamp)" in orders and "2026-11-20" not in orders


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_a_new_warehouse_starts_from_the_kept_parse_and_compiles_its_own_sql(monkeypatch, tmp_path, engine):
    """CRM_DBT_PARSE_CACHE: the first warehouse parses the project and keeps the parse; a new one (another
    DuckDB file, another PostgreSQL database) starts from it, with no parse of its own, and its SQL names
    its own database, never the first one's (a stale parse would build into or read from the wrong one)."""
    import contextlib
    import datetime as dt

    from conftest import pg_database

    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    monkeypatch.setenv("CRM_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("CRM_DBT_PARSE_CACHE", str(tmp_path / "parse-cache"))
    day = dt.date(2026, 11, 20)
    select = ["compile", "--select", "fct_customer_rfm"]

    def warehouse(name: str):
        if engine == "duckdb":
            (tmp_path / name).mkdir()
            return contextlib.nullcontext(f"duckdb:///{tmp_path}/{name}/{name}.duckdb")
        return pg_database(f"crm_{name}")

    def compiled(url: str) -> str:
        path = dbt.artifacts_dir(parse_url(url)) / "target" / "compiled" / "crm_warehouse" / "models"
        return (path / "marts" / "crm" / "fct_customer_rfm.sql").read_text()

    with warehouse("first") as first, warehouse("second") as second:
        names = [parse_url(u).path.stem if engine == "duckdb" else parse_url(u).database for u in (first, second)]
        assert "Starting full parse" in dbt.run_dbt(select, day, url=first).output
        assert f'"{names[0]}".' in compiled(first)
        output = dbt.run_dbt(select, day, url=second).output
        assert "Unable to do partial parsing" not in output and "full parse" not in output, output
        sql = compiled(second)
        assert f'"{names[1]}".' in sql and names[0] not in sql
        # The control: without the setting, a new warehouse parses the whole project.
        monkeypatch.delenv("CRM_DBT_PARSE_CACHE")
        with warehouse("third") as third:
            assert "Starting full parse" in dbt.run_dbt(select, day, url=third).output  # without it: a full parse


def test_a_build_writes_its_run_results_and_no_manifest(monkeypatch, tmp_path):
    """A build skips manifest.json and graph.gpickle (nothing reads them) but run_results.json, which
    the failures, build_in_halves and the bench read, is this build's: its nodes and their statuses."""
    import datetime as dt
    import json

    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    url = f"duckdb:///{tmp_path}/warehouse.duckdb"
    target = dbt.artifacts_dir(parse_url(url)) / "target"
    dbt.run_dbt(["build", "--select", "levels"], dt.date(2026, 11, 20), url=url)
    results = json.loads((target / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert statuses["seed.crm_warehouse.levels"] == "success" and len(statuses) > 1  # the seed and its tests
    assert all("levels" in node for node in statuses)
    assert not (target / "manifest.json").exists() and not (target / "graph.gpickle").exists()
    assert (target / "partial_parse.msgpack").exists()  # the next build's parse is still kept
    dbt.run_dbt(["build", "--select", "community_tiers"], dt.date(2026, 11, 20), url=url)
    nodes = {r["unique_id"] for r in json.loads((target / "run_results.json").read_text())["results"]}
    assert "seed.crm_warehouse.community_tiers" in nodes and not any("levels" in node for node in nodes)


def test_dbt_in_this_process_leaves_the_environment_and_the_warehouse_file_as_they_were(monkeypatch, tmp_path):
    """dbt runs in the calling process: its environment is the caller's again afterwards, and
    dbt-duckdb's database (which it keeps open between invocations) is closed, so another process
    can write the file and this one can open it with settings of its own."""
    import datetime as dt
    import os
    import subprocess
    import sys

    import duckdb

    url = f"duckdb:///{tmp_path}/warehouse.duckdb"
    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    before = dict(os.environ)
    result = dbt.run_dbt(["seed", "--select", "levels"], dt.date(2026, 11, 20), url=url)
    assert result.returncode == 0 and "INSERT 6" in result.output, result.output[-2000:]
    assert dict(os.environ) == before  # no CRM_DBT_TARGET, CRM_DUCKDB_PATH or run values left behind
    write = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('create table other_writer as select 1 as x')"
    proc = subprocess.run(
        [sys.executable, "-c", write, str(tmp_path / "warehouse.duckdb")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), config={"threads": 1}) as con:
        assert con.execute("select count(*) from reference.levels").fetchone() == (6,)
        assert con.execute("select x from other_writer").fetchone() == (1,)
    # A model that fails (no raw table under it): dbt's exit status 1 and the failing node, as from its CLI.
    failed = dbt.run_dbt(["run", "--select", "stg_shop__customers"], dt.date(2026, 11, 20), url=url, check=False)
    assert (failed.returncode, failed.failures) == (1, ["model.crm_warehouse.stg_shop__customers"]), failed.output


def test_a_dbt_failure_keeps_its_message_and_failures_across_processes():
    """The bench runs each stage in a process pool: the failure must come back whole."""
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool:
        error = pool.submit(_fail).exception()
    assert isinstance(error, dbt.DbtError)
    assert str(error) == "dbt build failed: test.x" and error.failures == ["test.x"]
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.failures) == (str(error), error.failures)


def _fail():
    raise dbt.DbtError("dbt build failed: test.x", ["test.x"])


def test_dbts_log_file_holds_its_statements_only_at_debug(monkeypatch, tmp_path):
    """CRM_DBT_LOG_LEVEL: at info (the default) dbt's log file holds what dbt prints; at debug also every
    statement it sends, with its status."""
    import datetime as dt

    url = f"duckdb:///{tmp_path}/warehouse.duckdb"
    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    log = dbt.artifacts_dir(parse_url(url)) / "logs" / "dbt.log"
    monkeypatch.delenv("CRM_DBT_LOG_LEVEL", raising=False)
    dbt.run_dbt(["seed", "--select", "levels"], dt.date(2026, 11, 20), url=url)
    info = log.read_text()
    assert "1 of 1 OK loaded seed file reference.levels" in info and "SQL status: OK" not in info
    log.unlink()
    monkeypatch.setenv("CRM_DBT_LOG_LEVEL", "debug")
    dbt.run_dbt(["seed", "--select", "levels"], dt.date(2026, 11, 20), url=url)
    assert "SQL status: OK" in log.read_text()
