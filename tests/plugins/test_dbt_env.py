"""The environment dbt runs in: DuckDB's buffer limit."""

from __future__ import annotations

from crm_pipeline.load.warehouse import parse_url
from crm_pipeline.transform import dbt


def test_duckdb_memory_limit_is_80_percent_of_ram_at_most_6_gb_unless_set(monkeypatch, tmp_path):
    monkeypatch.delenv("CRM_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(dbt, "ram_bytes", lambda: 4 * 2**30)
    assert dbt.duckdb_memory_limit() == "3276MiB"  # 0.8 * 4096 MiB = 3276.8
    monkeypatch.setattr(dbt, "ram_bytes", lambda: 24 * 2**30)
    assert dbt.duckdb_memory_limit() == "5722MiB"  # the cap: 6,000,000,000 / 1,048,576 = 5722.05
    env = dbt.dbt_env(parse_url(f"duckdb:///{tmp_path}/w.duckdb"))
    assert env["CRM_DUCKDB_MEMORY_LIMIT"] == "5722MiB"
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "  ")  # .env.example leaves it empty
    assert dbt.duckdb_memory_limit() == "5722MiB"
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "12GB")
    assert dbt.dbt_env(parse_url(f"duckdb:///{tmp_path}/w.duckdb"))["CRM_DUCKDB_MEMORY_LIMIT"] == "12GB"


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
