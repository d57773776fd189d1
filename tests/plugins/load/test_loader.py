"""The loader on both engines: quarantine with reasons, batch accounting, reruns that change nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from crm_pipeline.load.loader import ensure_tables, load_landing
from crm_pipeline.load.specs import SPECS
from crm_pipeline.load.warehouse import Warehouse

SH = ZoneInfo("Asia/Shanghai")
RUN = dt.date(2026, 11, 22)

ORDERS_CSV = (
    "order_id,customer_id,ordered_at,status,total_amount,currency\n"
    "o1,c1,2026-11-01 10:00:00,paid,¥1,299.00,CNY\n"  # line 2: unquoted comma -> 7 fields
    'o2,c1,2026-11-01 10:00:00,paid,"¥1,299.00",CNY\n'  # line 3: good
    "o3,c2,2026-11-02T10:00:00+08:00,pending,10.00,CNY\n"  # line 4: unknown enum
    "o4,c2,not-a-date,paid,10.00,CNY\n"  # line 5: unparseable timestamp
    ",c3,2026-11-03,paid,10.00,CNY\n"  # line 6: missing key
    "o6,c3,2026-11-03,completed,12.5x,CNY\n"  # line 7: unparseable amount
    "o7,c3,2026-11-03,completed,-3,CNY\n"  # line 8: negative amount
    "o8,c4,2026-11-04,completed,１２９９元,CNY\n"  # line 9: good, full-width
)


def _batches(wh):
    return wh.fetchall(
        "select entity, source, extracted_rows, loaded_rows, quarantined_rows from audit.load_batches order by source"
    )


def test_each_bad_input_class_is_quarantined_with_its_reason(crm_env):
    landing = crm_env["landing"]
    (landing / "orders").mkdir()
    (landing / "orders" / "orders_a.csv").write_text(ORDERS_CSV, encoding="utf-8")
    (landing / "orders" / "orders_b.csv").write_bytes(
        b"order_id,customer_id,ordered_at,status,total_amount\n"
        b"o9,c5,2026-11-05,paid,5.00\n"
        b"o10,c5,2026-11-05,paid,\xff\xfe5.00\n"  # line 3: invalid UTF-8 bytes
    )
    (landing / "refunds").mkdir()
    (landing / "refunds" / "r.jsonl").write_text(
        '{"refund_id": "r1", "order_id": "o2", "refunded_at": "2026-11-05", "amount": "100"}\n{broken\n',
        encoding="utf-8",
    )
    (landing / "customers").mkdir()
    # A renamed required column: every row is quarantined, none loads with NULLs.
    (landing / "customers" / "c.csv").write_text("cust_id,registered_at\nc1,2026-01-01\nc2,2026-01-02\n")

    with Warehouse.from_url(crm_env["url"]) as wh:
        for entity in ("orders", "refunds", "customers"):
            load_landing(wh, entity, landing, RUN, SH)
        reasons = {
            (src, line): reason
            for src, line, reason in wh.fetchall("select source, line_no, reason from audit.quarantine")
        }
        assert reasons[("orders/orders_a.csv", 2)] == "expected 6 fields, got 7"
        assert reasons[("orders/orders_a.csv", 4)].startswith("status: unknown value 'pending'")
        assert reasons[("orders/orders_a.csv", 5)].startswith("ordered_at: not an ISO-8601 timestamp")
        assert reasons[("orders/orders_a.csv", 6)] == "missing required field 'order_id'"
        assert reasons[("orders/orders_a.csv", 7)] == "total_amount: not an amount: '12.5x'"
        assert reasons[("orders/orders_a.csv", 8)] == "total_amount: negative amount: '-3'"
        # header 52 bytes + line 2 (27) + "o10,c5,2026-11-05,paid," (23) = offset 102
        assert reasons[("orders/orders_b.csv", 3)] == "invalid utf-8 bytes at byte offset 102"
        assert reasons[("refunds/r.jsonl", 2)].startswith("invalid JSON")
        assert reasons[("customers/c.csv", 2)] == "missing required column(s) in header: customer_id"
        assert len(reasons) == 10

        assert _batches(wh) == [
            ("customers", "customers/c.csv", 2, 0, 2),
            ("orders", "orders/orders_a.csv", 8, 2, 6),
            ("orders", "orders/orders_b.csv", 2, 1, 1),
            ("refunds", "refunds/r.jsonl", 2, 1, 1),
        ]
        loaded = wh.fetchall("select order_id, total_amount, ordered_at from raw.orders order by order_id")
        assert loaded == [
            ("o2", Decimal("1299.00"), dt.datetime(2026, 11, 1, 2, 0)),
            ("o8", Decimal("1299.00"), dt.datetime(2026, 11, 3, 16, 0)),
            ("o9", Decimal("5.00"), dt.datetime(2026, 11, 4, 16, 0)),
        ]
        raw_record = wh.fetchone("select raw_record from audit.quarantine where line_no = 7 and entity = 'orders'")[0]
        assert "12.5x" in raw_record


def test_rerun_changes_nothing_and_a_changed_file_is_a_new_batch(crm_env):
    landing = crm_env["landing"]
    (landing / "orders").mkdir()
    path = landing / "orders" / "o.csv"
    path.write_text(ORDERS_CSV, encoding="utf-8")
    with Warehouse.from_url(crm_env["url"]) as wh:
        first = load_landing(wh, "orders", landing, RUN, SH)
        snapshot = (
            wh.fetchall("select count(*) from raw.orders"),
            wh.fetchall("select count(*) from audit.quarantine"),
            _batches(wh),
        )
        again = load_landing(wh, "orders", landing, RUN + dt.timedelta(days=1), SH)
        assert [r.skipped for r in again] == [True]
        assert (
            wh.fetchall("select count(*) from raw.orders"),
            wh.fetchall("select count(*) from audit.quarantine"),
            _batches(wh),
        ) == snapshot
        assert first[0].extracted_rows == first[0].loaded_rows + first[0].quarantined_rows == 8

        path.write_text(ORDERS_CSV + "o99,c9,2026-11-09,paid,1.00,CNY\n", encoding="utf-8")
        changed = load_landing(wh, "orders", landing, RUN, SH)
        assert [(r.skipped, r.extracted_rows, r.loaded_rows) for r in changed] == [(False, 9, 3)]
        batches = wh.fetchall("select extracted_rows, loaded_rows, quarantined_rows from audit.load_batches")
        assert all(e == lo + q for e, lo, q in batches)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_encodings_land_identical_rows(crm_env, encoding):
    landing = crm_env["landing"]
    (landing / "reviews").mkdir()
    text = (
        "review_id,customer_id,rating,created_at,content\n"
        "v1,c1,2,2026-11-01 10:00:00,物流太慢😭 質量差 𠀀\n"
        "v2,c2,5,2026-11-02 10:00:00,Great quality!\n"
    )
    (landing / "reviews" / "r.csv").write_bytes(text.encode(encoding))
    with Warehouse.from_url(crm_env["url"]) as wh:
        (result,) = load_landing(wh, "reviews", landing, RUN, SH)
        assert result.loaded_rows == 2
        rows = wh.fetchall("select review_id, content from raw.reviews order by review_id")
    assert rows == [("v1", "物流太慢😭 質量差 𠀀"), ("v2", "Great quality!")]


def test_a_wechat_backup_csv_lands_in_the_same_table(crm_env):
    landing = crm_env["landing"]
    (landing / "chat_messages").mkdir()
    text = (
        "localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,NickName,Sender,StrTalker\n"
        '1,3,10000,0,0,1763690000,2,"""阿明""加入了群聊",2025-11-21 09:53:20,,阿明,wxid_a,g@chatroom\n'
        "2,3,1,0,0,1763690400,2,质量太差了,2025-11-21 10:00:00,,阿明,wxid_a,g@chatroom\n"
        "3,3,999,0,0,1763690500,2,?,2025-11-21 10:01:40,,阿明,wxid_a,g@chatroom\n"
    )
    (landing / "chat_messages" / "wechat_backup.csv").write_bytes(text.encode("gb18030"))
    with Warehouse.from_url(crm_env["url"]) as wh:
        (result,) = load_landing(wh, "chat_messages", landing, RUN, SH)
        assert (result.encoding, result.loaded_rows, result.quarantined_rows) == ("gb18030", 2, 1)
        rows = wh.fetchall("select msg_id, msg_type, content, sent_at from raw.chat_messages order by msg_id")
        reason = wh.fetchone("select reason from audit.quarantine")[0]
    assert rows == [
        ("g@chatroom:1", "system", '"阿明"加入了群聊', dt.datetime(2025, 11, 21, 1, 53, 20)),
        ("g@chatroom:2", "text", "质量太差了", dt.datetime(2025, 11, 21, 2, 0)),
    ]
    assert reason == "cannot map record: unknown WeChat message Type '999'"


DRIFTED_ORDERS = (
    "order_id,customer_id,ordered_at,status,total_amount,coupon_code,sales_channel\n"
    "o1,c1,2026-11-01 10:00:00,paid,10.00,SAVE5,jd\n"
    "o2,c1,2026-11-01 11:00:00,paid,20.00,,tmall\n"
)


@pytest.mark.parametrize("policy", ["", "ignore", "carry", "ignore,orders:carry", "carry,orders:ignore"])
def test_extra_columns_are_ignored_or_carried_as_configured_and_always_noted(crm_env, monkeypatch, policy):
    monkeypatch.setenv("CRM_EXTRA_COLUMNS", policy)
    carried = policy.rsplit(",", 1)[-1].endswith("carry")
    (crm_env["landing"] / "orders").mkdir()
    (crm_env["landing"] / "orders" / "o.csv").write_text(DRIFTED_ORDERS, encoding="utf-8")
    with Warehouse.from_url(crm_env["url"]) as wh:
        (result,) = load_landing(wh, "orders", crm_env["landing"], RUN, SH)
        rows = wh.fetchall("select order_id, total_amount, channel, _extra from raw.orders order by order_id")
        (note,) = wh.fetchone("select note from audit.load_batches")
    assert (result.loaded_rows, result.quarantined_rows) == (2, 0)
    # `channel` was renamed `sales_channel`: an optional column, so it loads as NULL, and the note says why.
    assert note == (
        f"extra column(s) {'carried in _extra' if carried else 'ignored'}: coupon_code, sales_channel; "
        "optional column(s) absent: currency, channel, updated_at (renamed?)"
    )
    if carried:
        assert rows == [
            ("o1", Decimal("10.00"), None, '{"coupon_code": "SAVE5", "sales_channel": "jd"}'),
            ("o2", Decimal("20.00"), None, '{"coupon_code": "", "sales_channel": "tmall"}'),
        ]
    else:
        assert rows == [("o1", Decimal("10.00"), None, None), ("o2", Decimal("20.00"), None, None)]


def test_a_bad_extra_columns_setting_is_an_error_not_a_guess(crm_env, monkeypatch):
    monkeypatch.setenv("CRM_EXTRA_COLUMNS", "orders:keep")
    (crm_env["landing"] / "orders").mkdir()
    (crm_env["landing"] / "orders" / "o.csv").write_text(DRIFTED_ORDERS, encoding="utf-8")
    with Warehouse.from_url(crm_env["url"]) as wh, pytest.raises(ValueError, match="'orders:keep' is not one of"):
        load_landing(wh, "orders", crm_env["landing"], RUN, SH)


def test_a_renamed_required_key_in_json_lines_quarantines_every_record(crm_env):
    (crm_env["landing"] / "refunds").mkdir()
    (crm_env["landing"] / "refunds" / "r.jsonl").write_text(
        '{"refund_id": "r1", "order_id": "o1", "refund_time": "2026-11-05", "amount": "1"}\n'
        '{"refund_id": "r2", "order_id": "o2", "refund_time": "2026-11-06", "amount": "2"}\n',
        encoding="utf-8",
    )
    with Warehouse.from_url(crm_env["url"]) as wh:
        (result,) = load_landing(wh, "refunds", crm_env["landing"], RUN, SH)
        reasons = {r for (r,) in wh.fetchall("select reason from audit.quarantine")}
        loaded = wh.fetchone("select count(*) from raw.refunds")[0]
    assert (result.extracted_rows, result.loaded_rows, result.quarantined_rows, loaded) == (2, 0, 2, 0)
    assert reasons == {"missing required field 'refunded_at'"}


def test_a_table_with_an_empty_first_chunk_is_appended_as_its_rows(crm_env):
    """pyarrow 26 writes NUL bytes as CSV for such a table; PostgreSQL's COPY then refuses the batch."""
    import pyarrow as pa

    table = pa.concat_tables([pa.table({"v": pa.array([], pa.string())}), pa.table({"v": pa.array(["x", "y"])})])
    with Warehouse.from_url(crm_env["url"]) as wh:
        wh.execute("create schema if not exists raw")
        wh.execute("create table raw.chunks (v text)")
        wh.append_arrow("raw.chunks", table)
        assert wh.fetchall("select v from raw.chunks order by v") == [("x",), ("y",)]


def test_a_field_longer_than_the_csv_modules_default_limit_loads(crm_env, monkeypatch):
    landing = crm_env["landing"]
    (landing / "reviews").mkdir()
    long_text = "很长的评论" * 40_000  # 200,000 characters, quoted because of the commas
    text = f'review_id,customer_id,rating,created_at,content\nv1,c1,2,2026-11-01 10:00:00,"{long_text},,"\n'
    (landing / "reviews" / "r.csv").write_text(text, encoding="utf-8")
    monkeypatch.setenv("CRM_LOAD_FAST", "0")  # the per-record path, where the csv module reads the field
    with Warehouse.from_url(crm_env["url"]) as wh:
        (result,) = load_landing(wh, "reviews", landing, RUN, SH)
        assert result.loaded_rows == 1
        assert wh.fetchall("select length(content) from raw.reviews") == [(200_002,)]


@pytest.mark.parametrize("group_rows", ["1", "1000000"])
def test_a_failed_write_keeps_no_part_of_its_group_and_a_rerun_loads_everything(crm_env, monkeypatch, group_rows):
    """Files are written in groups, one transaction each: a group is there whole or not at all."""
    landing = crm_env["landing"]
    (landing / "orders").mkdir()
    for i in range(3):
        (landing / "orders" / f"o{i}.csv").write_text(
            f"order_id,customer_id,ordered_at,status,total_amount\no{i},c1,2026-11-01 10:00:00,paid,1\n",
            encoding="utf-8",
        )
    monkeypatch.setenv("CRM_LOAD_GROUP_ROWS", group_rows)
    real = Warehouse.append_arrow

    def failing_on_o1(self, table_name, table):
        if table_name == "raw.orders" and "o1" in table.column("order_id").to_pylist():
            raise RuntimeError("disk full")  # the database refuses the write of the group holding o1
        return real(self, table_name, table)

    with Warehouse.from_url(crm_env["url"]) as wh:
        monkeypatch.setattr(Warehouse, "append_arrow", failing_on_o1)
        with pytest.raises(RuntimeError, match="disk full"):
            load_landing(wh, "orders", landing, RUN, SH)
        kept = wh.fetchall("select order_id from raw.orders order by 1")
        # File by file, the first group (o0) committed before the failure; as one group, nothing did.
        assert kept == ([("o0",)] if group_rows == "1" else [])
        assert len(wh.fetchall("select batch_id from audit.load_batches")) == len(kept)
        monkeypatch.setattr(Warehouse, "append_arrow", real)
        again = load_landing(wh, "orders", landing, RUN, SH)
        assert [r.skipped for r in again] == [group_rows == "1", False, False]
        assert wh.fetchall("select order_id from raw.orders order by 1") == [("o0",), ("o1",), ("o2",)]
        assert wh.fetchall("select count(*) from audit.load_batches") == [(3,)]


def test_a_later_file_is_loaded_later_however_long_each_takes_to_prepare(crm_env):
    """Staging keeps the version loaded last: files prepared in threads must still be stamped in file order."""
    landing = crm_env["landing"]
    (landing / "orders").mkdir()
    big = "".join(f"o{i},c1,2026-11-01 10:00:00,paid,1\n" for i in range(60_000))  # slow to prepare
    header = "order_id,customer_id,ordered_at,status,total_amount\n"
    (landing / "orders" / "a.csv").write_text(header + big, encoding="utf-8")
    (landing / "orders" / "b.csv").write_text(header + "o1,c1,2026-11-01 10:00:00,completed,1\n", encoding="utf-8")
    (landing / "orders" / "c.csv").write_text(header + "o1,c1,2026-11-01 10:00:00,refunded,1\n", encoding="utf-8")
    with Warehouse.from_url(crm_env["url"]) as wh:
        load_landing(wh, "orders", landing, RUN, SH)
        stamps = wh.fetchall(
            "select _source, min(_loaded_at), max(_loaded_at) from raw.orders group by _source order by _source"
        )
        loaded = wh.fetchall("select source, loaded_at from audit.load_batches order by source")
    assert [s for s, _, _ in stamps] == ["orders/a.csv", "orders/b.csv", "orders/c.csv"]
    assert stamps[0][2] < stamps[1][1] and stamps[1][2] < stamps[2][1]
    assert [t for _, t in loaded] == [lo for _, lo, _ in stamps]


def test_postgres_raw_tables_are_indexed_on_their_batch_for_the_raw_gate(crm_env):
    with Warehouse.from_url(crm_env["url"]) as wh:
        ensure_tables(wh, ["orders", "chat_messages"])
        ensure_tables(wh, ["orders"])  # again: nothing made twice
        if wh.kind == "duckdb":
            assert wh.fetchall("select index_name from duckdb_indexes() where schema_name = 'raw'") == []
            return
        indexes = wh.fetchall("select tablename, indexdef from pg_indexes where schemaname = 'raw' order by 1")
        wh.execute("insert into raw.orders (order_id, _batch_id) select 'o' || i, 'b' || (i % 200) "
                   "from generate_series(1, 20000) i")  # fmt: skip
        wh.execute("analyze raw.orders")
        plan = "\n".join(r[0] for r in wh.fetchall("explain select order_id from raw.orders where _batch_id = 'b7'"))
    assert [(t, d.split(" USING ")[1]) for t, d in indexes] == [
        ("chat_messages", "btree (_batch_id)"),
        ("orders", "btree (_batch_id)"),
    ]
    assert "orders__batch_id" in plan  # one batch's rows found by the index, not by reading the table


def test_tables_are_created_or_given_their_missing_columns_from_one_catalog_read(crm_env):
    with Warehouse.from_url(crm_env["url"]) as wh:
        ensure_tables(wh, ["orders"])
        known = wh.columns_by_table("audit", "raw")
        assert known["raw.orders"] == wh.columns("raw", "orders")  # in order
        assert known["raw.orders"][: len(SPECS["orders"].fields)] == [f.name for f in SPECS["orders"].fields]
        assert "raw.customers" not in known and "audit.load_batches" in known
        wh.execute("alter table raw.orders drop column _extra")
        wh.execute("drop table audit.quarantine")
        ensure_tables(wh, ["orders"])  # the dropped column comes back, last; the dropped table too
        assert wh.columns("raw", "orders") == [c for c in known["raw.orders"] if c != "_extra"] + ["_extra"]
        assert wh.columns("audit", "quarantine") == known["audit.quarantine"]
