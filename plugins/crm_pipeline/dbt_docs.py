"""`make docs`: dbt's documentation site for the warehouse, as one static page.

Every model, source, seed and test with its description (the marts' and their columns' come from
the YAML under dbt_project/models), its SQL and its lineage graph, and the catalog's column types.
dbt reads column types from a warehouse, so the site is generated against one of its own: a new
DuckDB file in a temporary directory, built with `--empty` (every relation, no rows). It never
opens the pipeline's warehouse, which a run may be writing (DuckDB allows one writer), and needs
no data and no service.

    python -m crm_pipeline.dbt_docs [--out data/docs]

writes OUT/index.html (dbt's `--static` page: it opens from disk, no server) and beside it the
manifest.json and catalog.json it was made from.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path
from unittest import mock

from crm_pipeline.config import REPO_ROOT

ARTIFACTS = ("manifest.json", "catalog.json")


def build_docs(out: Path) -> Path:
    """Generate the site into OUT; returns the page's path."""
    from crm_pipeline.load.warehouse import parse_url
    from crm_pipeline.pipeline import prepare_warehouse
    from crm_pipeline.transform.dbt import artifacts_dir, run_dbt

    day = dt.date.today()
    with tempfile.TemporaryDirectory(prefix="crm-docs-") as tmp:
        # Named as the pipeline's own default file, so the site's database name is the one users see.
        url = f"duckdb:///{tmp}/warehouse.duckdb"
        env = {"CRM_WAREHOUSE_URL": url, "CRM_DBT_ARTIFACTS_DIR": str(Path(tmp) / "dbt")}
        with mock.patch.dict(os.environ, env):
            prepare_warehouse()
            build = ["build", "--empty", "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"]
            run_dbt(build, day)
            run_dbt(["docs", "generate", "--static"], day)
            target = artifacts_dir(parse_url(url)) / "target"
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target / "static_index.html", out / "index.html")
            for name in ARTIFACTS:
                shutil.copyfile(target / name, out / name)
    return out / "index.html"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "data" / "docs")
    args = ap.parse_args(argv)
    page = build_docs(args.out)
    print(f"dbt docs: {page} (open it in a browser; no server needed)")


if __name__ == "__main__":
    main()
