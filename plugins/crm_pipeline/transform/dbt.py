"""Run dbt against the warehouse named by CRM_WAREHOUSE_URL, for one as-of day."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from crm_pipeline.config import DBT_PROJECT_DIR, as_of_bounds_utc, settings
from crm_pipeline.load.warehouse import WarehouseTarget, parse_url, writer_lock


class DbtError(RuntimeError):
    """dbt exited non-zero; `failures` names the failing nodes (empty when none ran to a verdict)."""

    def __init__(self, message: str, failures: list[str]):
        super().__init__(message)
        self.failures = failures


@dataclass
class DbtResult:
    returncode: int
    failures: list[str]
    output: str


# DuckDB's buffer for dbt, unless CRM_DUCKDB_MEMORY_LIMIT says otherwise: 80% of RAM (DuckDB's own
# default) but at most this, so a scale-L build stays under 8 GB on any machine (it spills beyond it).
DUCKDB_MEMORY_CAP_BYTES = 6_000_000_000


def ram_bytes() -> int:
    """Physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def duckdb_memory_limit() -> str:
    """CRM_DUCKDB_MEMORY_LIMIT when set, else the smaller of 80% of RAM and DUCKDB_MEMORY_CAP_BYTES."""
    explicit = settings().duckdb_memory_limit
    if explicit:
        return explicit
    return f"{min(int(0.8 * ram_bytes()), DUCKDB_MEMORY_CAP_BYTES) // 2**20}MiB"


# PostgreSQL's sort and hash memory for dbt's sessions, unless CRM_PG_WORK_MEM says otherwise. The
# server default (4MB) sends the marts' sorts and distinct counts to disk: fct_community_engagement
# took 32 s alone at the M with it, 7.3 s with 256MB. Per sort or hash node, per session: dbt
# has two threads.
PG_WORK_MEM = "256MB"


def dbt_env(target: WarehouseTarget) -> dict[str, str]:
    env = dict(os.environ)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"
    env["DO_NOT_TRACK"] = "1"
    if target.kind == "duckdb":
        env["CRM_DBT_TARGET"] = "duckdb"
        env["CRM_DUCKDB_PATH"] = str(target.path)
        env["CRM_DUCKDB_MEMORY_LIMIT"] = duckdb_memory_limit()
    else:
        env.update(
            CRM_DBT_TARGET="postgres",
            CRM_PG_HOST=target.host,
            CRM_PG_PORT=str(target.port),
            CRM_PG_USER=target.user,
            CRM_PG_PASSWORD=target.password,
            CRM_PG_DATABASE=target.database,
            PGTZ="UTC",
            # libpq's session options (the profile passes none of its own): dbt's sessions only.
            PGOPTIONS=" ".join(
                filter(None, [env.get("PGOPTIONS"), f"-c work_mem={settings().pg_work_mem or PG_WORK_MEM}"])
            ),
        )
    return env


def artifacts_dir(target: WarehouseTarget) -> Path:
    """Per-warehouse dbt target/log dirs, so two warehouses never share compiled state."""
    base = settings().dbt_artifacts_dir
    name = target.path.stem if target.kind == "duckdb" else f"pg_{target.database}"
    # Two warehouses with the same file name (or database name on two hosts) must not share compiled state.
    return base / f"{name}-{hashlib.sha1(target.label.encode()).hexdigest()[:8]}"


def run_vars(as_of: dt.date, tz: str) -> dict[str, str]:
    """What changes from run to run. It reaches the models in CRM_DBT_RUN_VARS (macro run_var), not in
    --vars: a change of --vars makes dbt parse the whole project again (about 5 s a run here)."""
    _, end = as_of_bounds_utc(as_of, tz)
    return {"as_of_date": as_of.isoformat(), "as_of_end_utc": end.isoformat(sep=" ")}


def run_dbt(
    command: list[str],
    as_of: dt.date,
    *,
    url: str | None = None,
    check: bool = True,
    extra_vars: dict | None = None,
) -> DbtResult:
    """`dbt COMMAND` for the as-of day `as_of`; `extra_vars` are more run values (the incremental window)."""
    cfg = settings()
    target = parse_url(url or cfg.warehouse_url)
    out = artifacts_dir(target)
    dbt_bin = Path(sys.executable).parent / "dbt"
    args = [
        str(dbt_bin),
        "--no-use-colors",
        *command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(out / "target"),
        "--log-path",
        str(out / "logs"),
        # Settings only: the same every run, so the parse dbt saved last time stays valid.
        "--vars",
        json.dumps({"timezone": cfg.timezone}),
    ]
    env = dbt_env(target) | {"CRM_DBT_RUN_VARS": json.dumps(run_vars(as_of, cfg.timezone) | (extra_vars or {}))}
    with writer_lock(target):
        proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=DBT_PROJECT_DIR)
    output = proc.stdout + proc.stderr
    failures = _failures(out / "target" / "run_results.json") if proc.returncode else []
    result = DbtResult(proc.returncode, failures, output)
    if check and proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        raise DbtError(f"dbt {' '.join(command)} failed: {', '.join(failures) or 'see output'}\n{tail}", failures)
    return result


def _failures(path: Path) -> list[str]:
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return []
    return [r["unique_id"] for r in results if r.get("status") in ("error", "fail")]
