"""Incremental extract from a real MariaDB: new and updated rows exactly once, including at the watermark."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sources.sql import extract_entity
from plugins.sources.sql_orders import DDL, execute, insert_order

pytestmark = pytest.mark.mariadb
SH = ZoneInfo("Asia/Shanghai")
RUN = dt.date(2026, 11, 22)


def _raw(wh):
    return sorted(wh.fetchall("select order_id, status, updated_at from raw.orders"))


def test_new_and_updated_rows_load_exactly_once(mariadb_url, warehouse_url):
    execute(mariadb_url, DDL)
    insert_order(mariadb_url, "o1", "paid", 10, "2026-11-01 10:00:00")
    insert_order(mariadb_url, "o2", "paid", 20, "2026-11-01 11:00:00")
    insert_order(mariadb_url, "o3", "paid", 30, "2026-11-01 12:00:00")
    with Warehouse.from_url(warehouse_url) as wh:
        first = extract_entity(wh, mariadb_url, "orders", RUN, SH)
        assert (first.extracted_rows, first.loaded_rows) == (3, 3)
        (watermark,) = wh.fetchone("select watermark from audit.watermarks where entity = 'orders'")
        assert watermark == "2026-11-01T12:00:00"

        # A new row stamped exactly at the watermark, an update to o1 and a
        # row inside the lookback that did not change.
        insert_order(mariadb_url, "o4", "paid", 40, "2026-11-01 12:00:00")
        insert_order(mariadb_url, "o1", "shipped", 10, "2026-11-01 13:00:00")
        second = extract_entity(wh, mariadb_url, "orders", RUN, SH)
        # Re-read since 11:00 (watermark 12:00 - 60 min): o2, o3, o4, o1; o2 and o3 were loaded already.
        assert (second.extracted_rows, second.loaded_rows, second.reread_rows) == (2, 2, 2)

        third = extract_entity(wh, mariadb_url, "orders", RUN, SH)
        # Watermark now 13:00: re-read since 12:00 is o3, o4 (12:00) and o1 (13:00), all known.
        assert (third.loaded_rows, third.reread_rows) == (0, 3)

        # Source times are local (Asia/Shanghai): 10:00 local = 02:00 UTC.
        assert _raw(wh) == [
            ("o1", "paid", dt.datetime(2026, 11, 1, 2, 0)),
            ("o1", "shipped", dt.datetime(2026, 11, 1, 5, 0)),
            ("o2", "paid", dt.datetime(2026, 11, 1, 3, 0)),
            ("o3", "paid", dt.datetime(2026, 11, 1, 4, 0)),
            ("o4", "paid", dt.datetime(2026, 11, 1, 4, 0)),
        ]
        batches = wh.fetchall("select extracted_rows, loaded_rows, quarantined_rows from audit.load_batches")
        assert all(e == lo + q for e, lo, q in batches)
        assert len(batches) == 3


def test_a_failed_load_does_not_advance_the_watermark(mariadb_url, tmp_path, monkeypatch):
    execute(mariadb_url, DDL)
    insert_order(mariadb_url, "o1", "paid", 10, "2026-11-01 10:00:00")
    url = f"duckdb:///{tmp_path}/w.duckdb"
    with Warehouse.from_url(url) as wh:
        extract_entity(wh, mariadb_url, "orders", RUN, SH)
        insert_order(mariadb_url, "o2", "paid", 20, "2026-11-02 10:00:00")

        # The bulk insert fails inside the batch's transaction.
        def broken(*args, **kwargs):
            raise OSError("disk full")

        with monkeypatch.context() as m:
            m.setattr(Warehouse, "append_arrow", broken)
            with pytest.raises(OSError, match="disk full"):
                extract_entity(wh, mariadb_url, "orders", RUN, SH)
        (watermark,) = wh.fetchone("select watermark from audit.watermarks where entity = 'orders'")
        assert watermark == "2026-11-01T10:00:00"
        retry = extract_entity(wh, mariadb_url, "orders", RUN, SH)
        assert retry.loaded_rows == 1
        assert [r[0] for r in _raw(wh)] == ["o1", "o2"]


def test_a_bad_source_row_is_quarantined(mariadb_url, tmp_path):
    execute(mariadb_url, DDL)
    insert_order(mariadb_url, "o1", "on_hold", 10, "2026-11-01 10:00:00")
    with Warehouse.from_url(f"duckdb:///{tmp_path}/w.duckdb") as wh:
        result = extract_entity(wh, mariadb_url, "orders", RUN, SH)
        assert (result.loaded_rows, result.quarantined_rows) == (0, 1)
        source, reason = wh.fetchone("select source, reason from audit.quarantine")
    assert source.startswith("sql:") and source.endswith("/orders") and "root" not in source
    assert reason.startswith("status: unknown value 'on_hold'")
