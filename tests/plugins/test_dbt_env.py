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
