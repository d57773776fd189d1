"""Run dbt against the warehouse named by CRM_WAREHOUSE_URL, for one as-of day."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from crm_pipeline.config import DBT_PROJECT_DIR, as_of_bounds_utc, settings
from crm_pipeline.load.warehouse import WarehouseTarget, duckdb_memory_limit, parse_url, writer_lock
from crm_pipeline.transform import parse_cache

# A build in two halves (pipeline.build_in_halves) keeps the first half's run_results.json under this
# name beside the second's: what each half ran, and how long (the bench reads both).
FIRST_HALF_RESULTS = "run_results_first_half.json"


class DbtError(RuntimeError):
    """dbt exited non-zero; `failures` names the failing nodes (empty when none ran to a verdict)."""

    def __init__(self, message: str, failures: list[str]):
        super().__init__(message)
        self.failures = failures

    def __reduce__(self):
        # Rebuilt with both arguments when it crosses a process boundary (the bench's stages run in a
        # process pool: unpicklable, the error came back as a broken pool and its message was lost).
        return type(self), (str(self), self.failures)


@dataclass
class DbtResult:
    returncode: int
    failures: list[str]
    output: str


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
    """`dbt COMMAND` for the as-of day `as_of`; `extra_vars` are more run values (the incremental window).

    dbt runs in this process (dbt's programmatic entry point, dbtRunner), not in a new interpreter:
    its imports are paid once per process (a task's, or a warm test process's), not once per build.
    Its environment is this process's for the call's length; `output` is what dbt would have printed."""
    cfg = settings()
    target = parse_url(url or cfg.warehouse_url)
    out = artifacts_dir(target)
    cli_vars = {"timezone": cfg.timezone}
    args = [
        "--no-use-colors",
        # Nothing on this process's stdout (what dbt prints is collected into `output`); the file log as before.
        "--log-level",
        "none",
        "--log-level-file",
        cfg.dbt_log_level,
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
        json.dumps(cli_vars),
    ]
    # A build writes no manifest.json (twice per build: after the parse and after the run, about 0.4 s of
    # a core each) nor graph.gpickle: nothing reads them (`make docs` writes its own). run_results.json is
    # written here, from the result: the failures below, build_in_halves and the bench read it.
    lean = command[:1] == ["build"]
    if lean:
        args.append("--no-write-json")
    env = dbt_env(target) | {"CRM_DBT_RUN_VARS": json.dumps(run_vars(as_of, cfg.timezone) | (extra_vars or {}))}
    cache = cfg.dbt_parse_cache
    with writer_lock(target):  # (a run at the same time may have parsed this warehouse a moment ago)
        new = cache is not None and not (out / "target" / parse_cache.PARSE_FILE).exists()
        if new:  # a new warehouse: start from the kept parse (CRM_DBT_PARSE_CACHE)
            with _environment(env):
                new = not parse_cache.seed(cache, out / "target", cli_vars)
        if lean:  # what the last build left must not pass for this one's
            (out / "target" / "run_results.json").unlink(missing_ok=True)
        returncode, output, run_result = _invoke(args, env)
        if lean and hasattr(run_result, "write"):
            run_result.write(str(out / "target" / "run_results.json"))
        if new and returncode == 0:  # it parsed the whole project: keep that for the next new warehouse
            with _environment(env):
                parse_cache.keep(cache, out / "target", cli_vars)
    failures = _failures(out / "target" / "run_results.json") if returncode else []
    result = DbtResult(returncode, failures, output)
    if check and returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        raise DbtError(f"dbt {' '.join(command)} failed: {', '.join(failures) or 'see output'}\n{tail}", failures)
    return result


def _invoke(args: list[str], env: dict[str, str]) -> tuple[int, str, object]:
    """dbt ARGS in this process with `env` as its environment: (exit status as dbt's CLI gives it, its
    printed lines, its result object). dbt-duckdb keeps its database open between invocations; it is
    closed before this returns, so the warehouse file is free again (for this process's own connections
    and others')."""
    from dbt.cli.main import dbtRunner

    from crm_pipeline.transform import dbt_speedups

    dbt_speedups.apply()
    lines: list[str] = []

    @dbt_speedups.ignores_debug
    def printed(event) -> None:
        if event.info.level in ("info", "warn", "error"):
            lines.append(event.info.msg)

    with _environment(env):
        try:
            res = dbtRunner(callbacks=[printed]).invoke(args)
        finally:
            _close_duckdb()
    if res.exception is not None:
        lines.append(f"{type(res.exception).__name__}: {res.exception}")
    return (0 if res.success else 2 if res.exception is not None else 1), "\n".join(lines) + "\n", res.result


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    """This process's environment is `env` inside the block and what it was after it."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _close_duckdb() -> None:
    """Close the database dbt-duckdb holds open after an invocation (its process-wide environment)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager as Manager
    except ImportError:
        return
    with Manager._LOCK:
        if Manager._ENV is not None:
            Manager._ENV.close()
            Manager._ENV = None


def _failures(path: Path) -> list[str]:
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return []
    return [r["unique_id"] for r in results if r.get("status") in ("error", "fail")]
