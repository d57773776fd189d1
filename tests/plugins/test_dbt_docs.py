"""`make docs` (crm_pipeline.dbt_docs): dbt's site for the warehouse, from a clean checkout, with no data
and no service, and without opening the pipeline's own warehouse (a run may be writing it)."""

from __future__ import annotations

import json

from crm_pipeline.config import mart_names
from crm_pipeline.dbt_docs import build_docs


def test_make_docs_writes_one_page_with_every_mart_its_columns_and_lineage(tmp_path, monkeypatch):
    pipelines_own = tmp_path / "pipeline" / "warehouse.duckdb"
    monkeypatch.setenv("CRM_WAREHOUSE_URL", f"duckdb:///{pipelines_own}")
    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", str(tmp_path / "dbt"))
    page = build_docs(tmp_path / "docs")

    assert not pipelines_own.parent.exists()  # never opened, never created
    manifest = json.loads((tmp_path / "docs" / "manifest.json").read_text(encoding="utf-8"))
    catalog = json.loads((tmp_path / "docs" / "catalog.json").read_text(encoding="utf-8"))
    html = page.read_text(encoding="utf-8")
    marts = mart_names()
    assert len(marts) >= 12
    for mart in marts:
        node = manifest["nodes"][f"model.crm_warehouse.{mart}"]
        assert node["description"].strip(), mart
        # Lineage: what the mart is built from, back to the raw sources.
        assert node["depends_on"]["nodes"], mart
        documented = {name: c["description"].strip() for name, c in node["columns"].items()}
        assert documented and all(documented.values()), mart
        # The catalog read the built (empty) relation: the same columns, each with its type.
        built = catalog["nodes"][f"model.crm_warehouse.{mart}"]["columns"]
        assert sorted(c.lower() for c in built) == sorted(documented), mart
        assert all(c["type"] for c in built.values()), mart
        # The page carries them: it opens from disk, with no manifest beside it.
        assert f"model.crm_warehouse.{mart}" in html and node["description"].strip()[:40] in html, mart
    sources = {n["source_name"] for n in manifest["sources"].values()}
    assert {"shop", "forum", "chat"} <= sources
    # Each Superset dashboard is an exposure, with the marts it reads upstream of it.
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert sorted(exposures) == ["community_health", "customer_value", "customers_at_risk", "voice_of_the_customer"]
    assert "model.crm_warehouse.fct_customer_risk" in exposures["customers_at_risk"]["depends_on"]["nodes"]
    assert all("exposure.crm_warehouse." + name in html for name in exposures)
