"""When a dbt build may be incremental, and when it must be a full refresh (crm_pipeline.transform.incremental).

The end-to-end proof that incremental builds equal full refreshes is
tests/e2e/test_incremental.py; this covers every reason for a full refresh
on both engines without running dbt.
"""

from __future__ import annotations

import datetime as dt
import shutil
from zoneinfo import ZoneInfo

import pytest

from crm_pipeline.config import DBT_PROJECT_DIR
from crm_pipeline.load.loader import ensure_tables, load_batch
from crm_pipeline.load.specs import SPECS
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sources.files import RawRecord
from crm_pipeline.transform import incremental

SH = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 11, 20)
END = dt.datetime(2026, 11, 20, 16, 0)


def _load(wh: Warehouse, batch_id: str, order_ids: list[str]) -> None:
    rows = [
        {"order_id": o, "customer_id": "C1", "ordered_at": "2026-11-20 10:00:00", "status": "paid", "total_amount": "1"}
        for o in order_ids
    ]
    load_batch(
        wh,
        SPECS["orders"],
        batch_id,
        f"{batch_id}.csv",
        [RawRecord(i + 1, r, str(r)) for i, r in enumerate(rows)],
        DAY,
        SH,
    )


@pytest.fixture
def wh(warehouse_url):
    with Warehouse.from_url(warehouse_url) as w:
        ensure_tables(w)
        _load(w, "b1", ["O1", "O2"])
        yield w


def _plan(wh, day=DAY, end=END, project=DBT_PROJECT_DIR):
    return incremental.plan(wh, day, end, project)


def test_first_build_is_full_then_incremental_from_its_snapshot(wh):
    first = _plan(wh)
    assert first.full_refresh and first.reason == "no previous build recorded"
    assert first.dbt_args() == ["--full-refresh"] and first.dbt_vars() == {}
    assert first.snapshot["orders"].raw_rows == 2
    incremental.record(wh, first, "build-1")

    _load(wh, "b2", ["O3"])  # new rows after the build: incremental, counted from the first snapshot
    nxt = _plan(wh, DAY + dt.timedelta(days=1), END + dt.timedelta(days=1))
    assert not nxt.full_refresh, nxt.reason
    assert nxt.dbt_args() == []
    window = nxt.dbt_vars()["incremental"]
    seen = first.snapshot["orders"].loaded_through
    assert window["loaded_after"]["orders"] == seen.isoformat(sep=" ", timespec="microseconds")
    assert window["prev_as_of_date"] == "2026-11-20" and window["prev_as_of_end_utc"].startswith("2026-11-20 16:00:00")
    assert nxt.snapshot["orders"].raw_rows == 3


def test_deleted_replaced_or_held_rows_force_a_full_refresh(wh):
    incremental.record(wh, _plan(wh), "build-1")
    wh.execute("delete from raw.orders where order_id = 'O1'")  # e.g. a deletion request
    p = _plan(wh)
    assert p.full_refresh and "raw.orders had 2 rows up to the last build and has 1 now" in p.reason

    incremental.record(wh, _plan(wh), "build-2")
    _load(wh, "b1", ["O1", "O2"])  # the same batch loaded again replaces its rows, with a new _loaded_at
    assert "raw.orders had 1 rows" in _plan(wh).reason

    incremental.record(wh, _plan(wh), "build-3")
    wh.execute("update audit.load_batches set quality_status = 'held' where batch_id = 'b1'")
    assert "raw.orders had 2 rows up to the last build and has 0 now" in _plan(wh).reason


def test_scores_since_the_last_build_are_passed_on_and_deleted_scores_force_a_full_refresh(wh):
    wh.execute("create schema if not exists scoring")
    wh.execute("create table scoring.text_scores (source varchar, record_id varchar, scored_at timestamp)")
    wh.execute(
        "insert into scoring.text_scores values "
        "('forum', 'P1', '2026-11-20 17:00:00'), ('forum', 'P2', '2026-11-20 17:00:05.25')"
    )
    incremental.record(wh, _plan(wh), "build-1")
    wh.execute("insert into scoring.text_scores values ('chat', 'M1', '2026-11-21 17:00:00')")
    nxt = _plan(wh, DAY + dt.timedelta(days=1), END + dt.timedelta(days=1))
    assert not nxt.full_refresh, nxt.reason
    assert nxt.dbt_vars()["incremental"]["loaded_after"]["text_scores"] == "2026-11-20 17:00:05.250000"
    incremental.record(wh, nxt, "build-2")
    # A new classifier version rescored P1 and deleted its old score.
    wh.execute("delete from scoring.text_scores where record_id = 'P1' and scored_at < '2026-11-21'")
    wh.execute("insert into scoring.text_scores values ('forum', 'P1', '2026-11-22 17:00:00')")
    p = _plan(wh, DAY + dt.timedelta(days=2), END + dt.timedelta(days=2))
    assert p.full_refresh and "scoring.text_scores had 3 rows up to the last build and has 2 now" in p.reason


def test_a_backfill_a_code_change_a_failed_build_or_the_setting_force_a_full_refresh(wh, tmp_path, monkeypatch):
    incremental.record(wh, _plan(wh), "build-1")
    assert not _plan(wh).full_refresh  # the same day again: incremental

    earlier = _plan(wh, DAY - dt.timedelta(days=1), END - dt.timedelta(days=1))
    assert earlier.full_refresh and "before the last build's" in earlier.reason

    project = tmp_path / "p1"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    assert not _plan(wh, project=project).full_refresh  # a copy is the same code
    macro = project / "macros" / "version_order.sql"
    macro.write_text(macro.read_text() + "\n{# changed #}\n")
    assert "changed since the last build" in _plan(wh, project=project).reason
    # An incremental intermediate model, or the staff list (a seed deciding which touchpoints exist), too.
    for i, changed in enumerate(
        ("models/intermediate/feedback/int_feedback__touchpoints.sql", "seeds/staff_accounts.csv")
    ):
        copy = tmp_path / f"c{i}"
        shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
        (copy / changed).write_text((copy / changed).read_text() + "\n")
        assert "changed since the last build" in _plan(wh, project=copy).reason, changed
    project_only_mart = tmp_path / "p2"
    shutil.copytree(DBT_PROJECT_DIR, project_only_mart, ignore=shutil.ignore_patterns("target", "logs"))
    mart = project_only_mart / "models" / "marts" / "crm" / "fct_customer_rfm.sql"
    mart.write_text(mart.read_text() + "\n")
    assert not _plan(wh, project=project_only_mart).full_refresh  # marts are rebuilt in full anyway

    monkeypatch.setenv("CRM_DBT_FULL_REFRESH", "1")
    assert _plan(wh).reason == "CRM_DBT_FULL_REFRESH is set"
    monkeypatch.delenv("CRM_DBT_FULL_REFRESH")

    incremental.forget(wh)  # what a failed build does
    assert _plan(wh).reason == "no previous build recorded"


def test_a_tombstone_forces_a_full_refresh(wh):
    """A key deleted at the source (raw._deleted) leaves staging: delete+insert on touched keys cannot do that."""
    incremental.record(wh, _plan(wh), "build-1")
    rows = [{"order_id": "O1", "customer_id": "C1", "ordered_at": "2026-11-20 10:00:00", "status": "paid",
             "total_amount": "1"}]  # fmt: skip
    load_batch(wh, SPECS["orders"], "b-del", "sql:shop/orders", [RawRecord(None, rows[0], "o1", deleted=True)], DAY, SH)
    p = _plan(wh, DAY + dt.timedelta(days=1), END + dt.timedelta(days=1))
    assert p.full_refresh and "raw.orders has 1 tombstone(s) since the last build" in p.reason, p.reason
    incremental.record(wh, p, "build-2")
    assert not _plan(wh, DAY + dt.timedelta(days=1), END + dt.timedelta(days=1)).full_refresh
