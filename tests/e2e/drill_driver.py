"""`make run`'s entry point with one fault injected into the real code, for the fault drills.

    python tests/e2e/drill_driver.py FAULT [--date D ...]

`dag.test()` runs every task in this process, so patching here reaches the
tasks. Faults (set by CRM_DRILL_* variables, read here and nowhere else):

- CRM_DRILL_KILL_AT_APPEND=N: SIGKILL this process right after the N-th bulk
  append into a raw table, inside that batch's transaction (the batches
  before it have committed).
- CRM_DRILL_TRANSIENT_AT_APPEND=N: the N-th bulk append into a raw table
  raises the engine's own connection error after writing its rows, once.
- CRM_DRILL_DBT_PROJECT=DIR: dbt runs this copy of the project.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _patch_appends() -> None:
    from crm_pipeline.load.warehouse import Warehouse

    kill_at = int(os.environ.get("CRM_DRILL_KILL_AT_APPEND", "0"))
    fail_at = int(os.environ.get("CRM_DRILL_TRANSIENT_AT_APPEND", "0"))
    if not (kill_at or fail_at):
        return
    original = Warehouse.append_arrow
    calls = {"n": 0}

    def append_arrow(self, qualified_table, table):
        original(self, qualified_table, table)
        if not qualified_table.startswith("raw.") or table.num_rows == 0:
            return
        calls["n"] += 1
        if calls["n"] == kill_at:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback: the machine died
        if calls["n"] == fail_at:
            if self.kind == "duckdb":
                import duckdb

                raise duckdb.IOException("drill: the disk went away for a moment")
            import psycopg2

            raise psycopg2.OperationalError("drill: server closed the connection unexpectedly")

    Warehouse.append_arrow = append_arrow


def _patch_dbt_project() -> None:
    project = os.environ.get("CRM_DRILL_DBT_PROJECT")
    if project:
        import crm_pipeline.transform.dbt as dbt

        dbt.DBT_PROJECT_DIR = Path(project)


if __name__ == "__main__":
    _patch_appends()
    _patch_dbt_project()
    from crm_pipeline.run import main

    sys.exit(main(sys.argv[1:]))
