"""The SQL source on a SQLite file: timestamps stored as text, soft deletes, key reconciliation (issue 21).

No service needed: SQLite is the source and DuckDB the warehouse (the e2e test
tests/e2e/test_quiet_extracts.py runs the same on MariaDB, PostgreSQL and both
warehouse engines).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from zoneinfo import ZoneInfo

import pytest

from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sources.sql import as_timestamp, extract_entity, is_soft_deleted, since_param

SH = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 11, 2)


@pytest.fixture
def shop(tmp_path):
    path = tmp_path / "shop.sqlite"
    con = sqlite3.connect(path)
    con.execute("create table refunds (refund_id text, order_id text, refunded_at text, amount text, reason text)")
    con.execute(
        "create table customers (customer_id text, registered_at text, phone text, city text, updated_at text, "
        "is_deleted integer)"
    )
    con.commit()
    yield con, f"sqlite:///{path}"
    con.close()


@pytest.fixture
def wh(tmp_path):
    with Warehouse.from_url(f"duckdb:///{tmp_path}/w.duckdb") as w:
        yield w


def _refund(con, rid, at, amount="10"):
    con.execute("insert into refunds values (?, 'o1', ?, ?, 'x')", (rid, at, amount))
    con.commit()


def _live(wh, entity, key):
    rows = wh.fetchall(
        f"select {key}, _deleted from (select *, row_number() over (partition by {key} order by _loaded_at desc) "
        f"as n from raw.{entity}) as v where n = 1 order by 1"
    )
    return [k for k, deleted in rows if not deleted]


def test_helpers_read_text_stamps_and_soft_delete_values():
    assert as_timestamp("2026-11-01T10:00:00") == dt.datetime(2026, 11, 1, 10)
    assert as_timestamp("2026-11-01 10:00:00.250") == dt.datetime(2026, 11, 1, 10, 0, 0, 250000)
    assert as_timestamp("2026-11-01T10:00:00+08:00") == dt.datetime(2026, 11, 1, 10)  # the wall clock as written
    assert as_timestamp("2026-11-01T10:00:00Z") == dt.datetime(2026, 11, 1, 10)
    assert as_timestamp(dt.date(2026, 11, 1)) == dt.datetime(2026, 11, 1)
    assert as_timestamp("yesterday") is None and as_timestamp(None) is None
    # Floored to the second, with a space: never later than the bound, so nothing at it is skipped.
    assert since_param(dt.datetime(2026, 11, 1, 9, 59, 59, 900000)) == "2026-11-01 09:59:59"
    assert [is_soft_deleted(v) for v in (None, 0, 1, True, False, "", "0", "false", "N", "1", "2026-11-01")] == [
        False, False, True, True, False, False, False, False, False, True, True,
    ]  # fmt: skip


def test_text_timestamps_extract_incrementally(shop, wh):
    con, url = shop
    _refund(con, "r1", "2026-11-01T10:00:00")
    _refund(con, "r2", "2026-11-01 11:00:00")
    _refund(con, "r3", "2026-11-01 12:00:00+08:00")
    _refund(con, "bad", "yesterday")
    first = extract_entity(wh, url, "refunds", DAY, SH)
    assert (first.loaded_rows, first.quarantined_rows) == (3, 1)
    assert wh.fetchone("select watermark from audit.watermarks where entity = 'refunds'") == ("2026-11-01T12:00:00",)

    _refund(con, "r4", "2026-11-01T11:30:00")
    second = extract_entity(wh, url, "refunds", DAY, SH)
    # Since 11:00 as text: r2, r3, r4 and r1 (a 'T' sorts after the space) and the bad row again; only r4 is new,
    # and the bad row, quarantined before for the same reason, is not quarantined twice.
    assert (second.loaded_rows, second.quarantined_rows, second.reread_rows) == (1, 0, 4)
    assert wh.fetchone("select count(*) from audit.quarantine")[0] == 1
    assert _live(wh, "refunds", "refund_id") == ["r1", "r2", "r3", "r4"]
    # Text written with an offset is UTC in raw like any other: 12:00+08:00 is 04:00 UTC.
    assert wh.fetchone("select refunded_at from raw.refunds where refund_id = 'r3'") == (dt.datetime(2026, 11, 1, 4),)


def _customer(con, cid, updated, deleted=0, city="上海"):
    con.execute("delete from customers where customer_id = ?", (cid,))
    con.execute("insert into customers values (?, '2026-01-01 09:00:00', null, ?, ?, ?)", (cid, city, updated, deleted))
    con.commit()


def test_a_soft_delete_is_a_tombstone_and_an_undelete_revives(shop, wh, monkeypatch):
    con, url = shop
    monkeypatch.setenv("CRM_SQL_RECONCILE_DAYS", "0")
    _customer(con, "c1", "2026-11-01 09:00:00")
    _customer(con, "c2", "2026-11-01 09:00:00")
    extract_entity(wh, url, "customers", DAY, SH)
    _customer(con, "c2", "2026-11-02 09:00:00", deleted=1)
    gone = extract_entity(wh, url, "customers", DAY, SH)
    assert gone.loaded_rows == 1 and _live(wh, "customers", "customer_id") == ["c1"]
    again = extract_entity(wh, url, "customers", DAY, SH)  # the tombstone read again in the lookback
    assert (again.loaded_rows, again.reread_rows) == (0, 1)
    _customer(con, "c2", "2026-11-03 09:00:00", deleted=0, city="杭州")
    extract_entity(wh, url, "customers", DAY, SH)
    assert _live(wh, "customers", "customer_id") == ["c1", "c2"]
    # The soft-delete column is the source's bookkeeping, not a contract field: no drift note for it.
    notes = [n for (n,) in wh.fetchall("select note from audit.load_batches")]
    assert all("extra column" not in n and n.endswith("soft deletes from is_deleted") for n in notes), notes


def test_key_reconciliation_marks_vanished_keys_on_its_schedule(shop, wh, monkeypatch):
    con, url = shop
    monkeypatch.setenv("CRM_SQL_RECONCILE_DAYS", "7")
    for rid in ("r1", "r2", "r3"):
        _refund(con, rid, "2026-11-01 10:00:00")
    extract_entity(wh, url, "refunds", DAY, SH)  # no reconciliation yet: this one reconciles
    con.execute("delete from refunds where refund_id = 'r2'")
    con.commit()
    extract_entity(wh, url, "refunds", DAY + dt.timedelta(days=3), SH)  # 3 days later: not due
    assert _live(wh, "refunds", "refund_id") == ["r1", "r2", "r3"]
    extract_entity(wh, url, "refunds", DAY + dt.timedelta(days=7), SH)  # due
    assert _live(wh, "refunds", "refund_id") == ["r1", "r3"]
    runs = wh.fetchall(
        "select run_date, source_keys, live_keys, tombstoned from audit.reconciliations order by run_date"
    )
    assert runs == [(DAY, 3, 3, 0), (DAY + dt.timedelta(days=7), 2, 3, 1)]
    # The tombstone is a batch of its own, with extracted = loaded, and a hash unlike its content's.
    batch = wh.fetchone("select extracted_rows, loaded_rows, quarantined_rows, note from audit.load_batches "
                        "where note like 'key reconciliation%'")  # fmt: skip
    assert batch[:3] == (1, 1, 0) and "1 key(s)" in batch[3]
    hashes = wh.fetchall("select _row_hash, _deleted from raw.refunds where refund_id = 'r2' order by _loaded_at")
    assert len(hashes) == 2 and hashes[0][0] != hashes[1][0] and [d for _, d in hashes] == [False, True]
    # Reconciling again changes nothing; the key inserted again in the source is alive again.
    extract_entity(wh, url, "refunds", DAY + dt.timedelta(days=8), SH, reconcile=True)
    assert wh.fetchone("select count(*) from raw.refunds")[0] == 4
    _refund(con, "r2", "2026-11-01 10:00:00")
    con.execute("update refunds set refunded_at = '2026-11-09 10:00:00' where refund_id = 'r2'")
    con.commit()
    extract_entity(wh, url, "refunds", DAY + dt.timedelta(days=9), SH)
    assert _live(wh, "refunds", "refund_id") == ["r1", "r2", "r3"]
