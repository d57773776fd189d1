"""dbt's unit tests on DuckDB, on an empty warehouse: no services, so `make test-fast` runs them.

dbt needs a unit-tested model's parents to exist (it reads their columns), not to hold rows: the
project is built with --empty first. tests/e2e/test_pipeline.py runs them again on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json

from conftest import SECRET, costly_touchpoint_joins, defined_unit_tests
from crm_pipeline.load.warehouse import parse_url
from crm_pipeline.transform.dbt import artifacts_dir, run_dbt


def test_every_dbt_unit_test_passes_on_duckdb(monkeypatch, tmp_path):
    from crm_pipeline.pipeline import prepare_warehouse

    url = f"duckdb:///{tmp_path}/w.duckdb"
    monkeypatch.setenv("CRM_WAREHOUSE_URL", url)
    monkeypatch.setenv("CRM_KEY_SECRET", SECRET)
    monkeypatch.setenv("CRM_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    prepare_warehouse()
    day = dt.date(2026, 11, 22)
    run_dbt(["build", "--empty", "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"], day)
    run_dbt(["test", "--select", "test_type:unit"], day)
    results = json.loads((artifacts_dir(parse_url(url)) / "target" / "run_results.json").read_text())["results"]
    passed = {r["unique_id"].rsplit(".", 1)[1] for r in results if r["status"] == "pass"}
    defined = defined_unit_tests()
    assert len(defined) > 10 and passed == defined, sorted(defined ^ passed)
    _every_mart_column_is_described(url)
    # The touchpoints' costly text functions run once per row that needs them (tests/e2e/test_pipeline.py
    # holds PostgreSQL's plan to the same): the product match, the refund reasons' key.
    conditions, costly = costly_touchpoint_joins(url, day)
    assert any("strpos(" in c for c in conditions), conditions  # the product match is read
    assert costly == []


def _every_mart_column_is_described(url: str) -> None:
    """Mart and column definitions live in dbt's YAML (dbt docs and BI read them): every column the
    marts have, as built, is there with a description, and nothing described is missing from the mart."""
    import yaml

    from crm_pipeline.config import DBT_PROJECT_DIR, mart_names
    from crm_pipeline.load.warehouse import Warehouse

    described: dict[str, dict[str, str]] = {}
    for path in (DBT_PROJECT_DIR / "models" / "marts").rglob("*.yml"):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", []):
            assert (model.get("description") or "").strip(), f"{model['name']} has no description"
            described[model["name"]] = {c["name"]: (c.get("description") or "").strip() for c in model["columns"]}
    with Warehouse.from_url(url) as wh:
        built = {m: wh.columns("marts_build", m) for m in mart_names()}
    assert sorted(described) == sorted(built)
    for mart, columns in built.items():
        assert sorted(described[mart]) == sorted(columns), mart
        assert [c for c, text in described[mart].items() if not text] == [], mart
