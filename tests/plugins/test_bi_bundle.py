"""The Superset bundle (bi/bundle) read as files: every name it uses exists, and it matches dbt's exposures.

Superset itself runs in tests/e2e/test_superset.py; these need nothing but the YAML."""

from __future__ import annotations

import argparse
import io
import json
import re
import zipfile

import pytest
import yaml

from conftest import REPO
from crm_pipeline import superset

BUNDLE = REPO / "bi" / "bundle"
MARTS_YAML = REPO / "dbt_project" / "models" / "marts" / "crm"


def _load(folder: str) -> dict[str, dict]:
    return {
        (doc := yaml.safe_load(p.read_text(encoding="utf-8")))["uuid"]: doc
        for p in sorted((BUNDLE / folder).rglob("*.yaml"))
    }


DATASETS, CHARTS, DASHBOARDS = _load("datasets"), _load("charts"), _load("dashboards")


def _columns_used(params: dict) -> set[str]:
    """Every dataset column a chart's settings name (its axes, groupings, table columns, filters, order)."""
    groupby = params.get("groupby", [])
    used = set(groupby if isinstance(groupby, list) else [groupby])  # a heatmap's is one column
    used |= (
        set(params.get("all_columns", [])) | set(params.get("groupbyRows", [])) | set(params.get("groupbyColumns", []))
    )
    used |= {params[k] for k in ("x_axis", "granularity_sqla") if k in params}
    used |= {f["subject"] for f in params.get("adhoc_filters", [])}
    used |= {json.loads(o)[0] for o in params.get("order_by_cols", [])}
    return used


def _documented_columns() -> dict[str, set[str]]:
    models = {}
    for path in MARTS_YAML.glob("_*__models.yml"):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            models[model["name"]] = {c["name"] for c in model.get("columns", [])}
    return models


def test_the_bundle_has_the_four_dashboards_one_database_and_bilingual_titles():
    assert sorted(d["slug"] for d in DASHBOARDS.values()) == [
        "community-health", "customer-value", "customers-at-risk", "voice-of-the-customer",
    ]  # fmt: skip
    assert len(list((BUNDLE / "databases").glob("*.yaml"))) == 1
    titles = [d["dashboard_title"] for d in DASHBOARDS.values()] + [c["slice_name"] for c in CHARTS.values()]
    titles += [f["name"] for d in DASHBOARDS.values() for f in d["metadata"]["native_filter_configuration"]]
    both = re.compile(r"[\u4e00-\u9fff].*[A-Za-z]")
    assert [t for t in titles if not both.search(t)] == []  # Chinese, then English


def test_every_chart_names_only_its_datasets_columns_and_metrics():
    problems = {}
    for chart in CHARTS.values():
        dataset = DATASETS[chart["dataset_uuid"]]
        columns = {c["column_name"] for c in dataset["columns"]}
        metrics = {m["metric_name"] for m in dataset["metrics"]}
        params = chart["params"]
        wanted = [*params.get("metrics", []), *([params["metric"]] if "metric" in params else [])]
        missing = (_columns_used(params) - columns) | (set(wanted) - metrics)
        query = json.loads(chart["query_context"])["queries"][0]
        asked = {c if isinstance(c, str) else c["sqlExpression"] for c in query["columns"]}
        missing |= (asked - columns) | (set(query["metrics"]) - metrics)
        if missing:
            problems[chart["slice_name"]] = sorted(missing)
    assert problems == {}


def test_every_dataset_is_a_mart_and_names_only_its_documented_columns():
    """dbt's YAML documents every mart column (test_dbt_unit.py holds it to the built relations)."""
    documented = _documented_columns()
    for dataset in DATASETS.values():
        table = dataset["table_name"]
        assert dataset["schema"] == "marts" and table in documented
        stored = {c["column_name"] for c in dataset["columns"] if not c["expression"]}
        assert stored <= documented[table], table
        # A metric's or a calculated column's expression reads its own table's columns only.
        expressions = [m["expression"] for m in dataset["metrics"]]
        expressions += [c["expression"] for c in dataset["columns"] if c["expression"]]
        sql = {"sum", "count", "case", "when", "then", "else", "end", "is", "not", "null", "like", "or", "lower"}
        for expression in expressions:
            words = set(re.findall(r"[a-z_][a-z0-9_]*", re.sub(r"'[^']*'", "", expression).lower()))
            assert words - sql <= documented[table], expression


def test_dashboards_hold_only_bundle_charts_every_chart_is_shown_and_filters_target_real_columns():
    shown = set()
    for dashboard in DASHBOARDS.values():
        cells = [v for v in dashboard["position"].values() if isinstance(v, dict) and v.get("type") == "CHART"]
        assert cells and all(c["meta"]["uuid"] in CHARTS for c in cells)
        shown |= {c["meta"]["uuid"] for c in cells}
        for f in dashboard["metadata"]["native_filter_configuration"]:
            for target in f["targets"]:
                if target:  # a time filter has no dataset
                    columns = {c["column_name"] for c in DATASETS[target["datasetUuid"]]["columns"]}
                    assert target["column"]["name"] in columns
    assert shown == set(CHARTS)


def test_each_dashboard_is_a_dbt_exposure_of_the_marts_it_reads():
    exposures = {}
    for path in MARTS_YAML.glob("*.yml"):
        for exposure in yaml.safe_load(path.read_text(encoding="utf-8")).get("exposures", []):
            exposures[exposure["name"]] = {re.fullmatch(r"ref\('(\w+)'\)", d).group(1) for d in exposure["depends_on"]}
    read = {}
    for dashboard in DASHBOARDS.values():
        cells = [v for v in dashboard["position"].values() if isinstance(v, dict) and v.get("type") == "CHART"]
        tables = {DATASETS[CHARTS[c["meta"]["uuid"]]["dataset_uuid"]]["table_name"] for c in cells}
        filters = dashboard["metadata"]["native_filter_configuration"]
        tables |= {DATASETS[t["datasetUuid"]]["table_name"] for f in filters for t in f["targets"] if t}
        read[dashboard["slug"].replace("-", "_")] = tables
    assert exposures == read


def test_the_zip_points_the_database_at_the_warehouse_superset_may_read(monkeypatch, tmp_path):
    monkeypatch.delenv("CRM_BI_DUCKDB_PATH", raising=False)
    uri, extra = superset.database_connection(f"duckdb:///{tmp_path}/warehouse.duckdb")
    assert uri == f"duckdb:///{tmp_path}/warehouse_bi.duckdb"  # the copy, never the pipeline's file
    assert extra["engine_params"]["connect_args"] == {"read_only": True}
    with zipfile.ZipFile(io.BytesIO(superset.bundle(uri, extra))) as zf:
        names = zf.namelist()
        database = yaml.safe_load(zf.read("crm_bundle/databases/crm_warehouse.yaml"))
    assert database["sqlalchemy_uri"] == uri and database["extra"]["engine_params"] == extra["engine_params"]
    assert len(names) == len(list(BUNDLE.rglob("*.yaml"))) and "crm_bundle/metadata.yaml" in names

    # PostgreSQL: the read-only BI role, its password quoted into the URL; none set is a clear error.
    monkeypatch.setenv("CRM_BI_ROLE", "crm_bi_reader")
    monkeypatch.delenv("CRM_BI_PASSWORD", raising=False)
    with pytest.raises(superset.BIError, match="CRM_BI_PASSWORD"):
        superset.database_connection("postgresql://postgres@db.local:5433/crm")
    monkeypatch.setenv("CRM_BI_PASSWORD", "p@ss:w/rd")
    uri, extra = superset.database_connection("postgresql://postgres@db.local:5433/crm")
    assert uri == "postgresql+psycopg2://crm_bi_reader:p%40ss%3Aw%2Frd@db.local:5433/crm"
    assert "connect_args" not in extra["engine_params"]  # psycopg2 has no read_only argument


def test_the_kept_admin_password_is_always_one_command_line_argument(tmp_path):
    """`import --password PW` with the password Superset's home keeps: one beginning with "-" would be read as
    an option (a URL-safe token does so one time in 64: 1,000 homes all miss it with odds of e^-15.7)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--password", required=True)
    for n in range(1000):
        password = superset.Superset(home=tmp_path / str(n)).password
        assert len(password) >= 32
        assert parser.parse_args(["--password", password]).password == password
