"""What the end-to-end tests share: run `make run`'s entry point, its environment, the marts' checksums."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, SECRET
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.quality.gate import MARTS

END = dt.date(2026, 11, 22)  # the sample's last day, and a run's as-of day unless a test says another


def run_main(env: dict, as_of: dt.date | None, extra: list[str] = ()) -> subprocess.CompletedProcess:
    """`make run`'s entry point in a fresh process (Airflow reads its settings at import)."""
    return subprocess.run(
        [sys.executable, "-m", "crm_pipeline.run", "--date", (as_of or END).isoformat(), *extra],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


def pipeline_env(crm_env, airflow_db: Path) -> dict:
    """The pipeline's environment; ground truth goes to tmp/truth, beside the landing dir's parent, unread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        CRM_LANDING_DIR=str(crm_env["landing"]),
        CRM_WAREHOUSE_URL=crm_env["url"],
        CRM_KEY_SECRET=SECRET,
        CRM_DBT_ARTIFACTS_DIR=str(crm_env["tmp"] / "dbt"),
        CRM_REPORTS_DIR=str(crm_env["tmp"] / "reports"),
        CRM_TIMEZONE="Asia/Shanghai",
        AIRFLOW_HOME=str(airflow_db),
        PYTHONPATH=f"{REPO / 'plugins'}:{REPO / 'dags'}",
    )
    return env


def checksums(url: str) -> dict[str, str]:
    """Every published mart's content, as one digest each (row order ignored)."""
    out = {}
    with Warehouse.from_url(url) as wh:
        for mart in MARTS:
            rows = sorted(
                json.dumps(r, default=str, ensure_ascii=False) for r in wh.fetchall(f"select * from marts.{mart}")
            )
            out[mart] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out
