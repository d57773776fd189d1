# ruff: noqa: E501 - tables of literal file contents read best one case per line
"""The vectorised load path against the per-record path: same rows, same hashes, same quarantine, on hostile files.

The per-record path (CRM_LOAD_FAST=0) is the reference: its rules are tested
value by value in test_normalise.py and test_loader.py. Here the same files
are loaded both ways into two warehouses and compared row for row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from crm_pipeline.load import fast
from crm_pipeline.load.loader import load_landing
from crm_pipeline.load.specs import SPECS
from crm_pipeline.load.warehouse import Warehouse, parse_url

RUN = dt.date(2026, 11, 22)
ENTITIES = [e for e in SPECS if e != "deletion_requests"]

# Values a source really sends, good and bad, per field type: the strict subset the fast path
# takes, and the neighbours it must leave to the per-record path (unicode spaces, full-width
# digits, odd timestamp shapes, DST gaps and folds in New York, controls, quotes, backslashes).
TEXT = ["质量很好，物流也快", "hello", "", "   ", "\u3000", 'say "hi"', "back\\slash", "tab\there", "ctl\x01x",
        "🎉", " lead", "trail ", "？", "x,y", "\u00a0", "a\u2028b", "C000001", "0"]  # fmt: skip
INT = ["5", "+5", "-5", "007", "5.0", "５", " 5 ", "", "1e3", "99999999999999999999", "0", "1", "3"]
AMOUNT = ["12.5", "12.345", "¥12", "1,299.00", "0", "-3", ".5", "１２", "12.", "abc", "", "1299.00", "7", "￥1979.10",
          "¥1,869.15", "３９８．００", "1299元", "1,2,3", "¥¥1", "1元元", "￥1,299.005", ",", "¥.5", "1,.5", "¥ 12", "RMB12",
          "１２３４５６７８９０１２３４５６７８"]  # fmt: skip
TIMESTAMP = ["2024-03-10 02:30:00", "2024-11-03 01:30:00", "2024-03-10T03:30:00", "2025-01-01T08:00:00Z",
             "2025-01-01T08:00:00.5+05:30", "2025-01-01 08:00", "2025-02-30 01:00:00", "2025-01-01T24:00:00",
             "20250101T080000", "2025-01-01", " 2025-01-01 08:00:00", "2025-01-01T08:00:00.1234567",
             "0999-01-01 00:00:00", "2025-06-01 12:00:00", "2025-06-01T12:00:00-04:00", "2025-06-01 23:59:59.000001",
             "2025-01-01T08:00:00+0800", "2025-01-01t08:00:00"]  # fmt: skip
DATE = ["2025-01-01", "2025-1-1", "2025-02-30", "20250101", "２０２５-01-01", "", "2024-02-29"]
BOOL = ["true", "T", "是", "否", "yes", "maybe", "", " true", "FALSE", "0"]


def _value(rng: random.Random, field, typed: bool):
    if field.enum is not None:
        pool = [*field.enum, " " + field.enum[0], field.enum[0].upper(), "unknown"]
    else:
        pool = {"text": TEXT, "int": INT, "amount": AMOUNT, "timestamp": TIMESTAMP, "date": DATE, "bool": BOOL}[
            field.type
        ]
    # Mostly values the fast path accepts, so both paths are exercised in one file.
    value = pool[0] if rng.random() < 0.5 and field.type != "timestamp" else rng.choice(pool)
    if field.type == "timestamp" and rng.random() < 0.5:
        value = rng.choice(
            ["2025-06-01 12:00:00", "2024-03-10 02:30:00", "2024-11-03 01:30:00", "2025-01-01T08:00:00Z"]
        )
    if typed:  # JSON Lines carry numbers, booleans, nulls, objects, and leave keys out
        roll = rng.random()
        if roll < 0.05:
            return rng.choice([5, -5, 0, 5.0, 1e20, 2**70, True, False, None, {"a": 1}, [1]])
        if roll < 0.08:
            return KeyError  # the key is absent
    return value


def _records(rng: random.Random, entity: str, n: int, typed: bool) -> list[dict]:
    out = []
    for _ in range(n):
        rec = {}
        for f in SPECS[entity].fields:
            v = _value(rng, f, typed)
            if v is not KeyError:
                rec[f.name] = v
        out.append(rec)
    return out


def _write(landing: Path, entity: str, fmt: str, records: list[dict], encoding: str = "utf-8") -> None:
    folder = landing / entity
    folder.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in SPECS[entity].fields]
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(names)
        w.writerows([[r.get(n, "") for n in names] for r in records])
        text = buf.getvalue()
    (folder / f"{entity}_{fmt}.{fmt}").write_text(text, encoding=encoding, newline="")


def _load(landing: Path, db: Path, tz: ZoneInfo, monkeypatch, fast_on: bool) -> None:
    monkeypatch.setenv("CRM_LOAD_FAST", "1" if fast_on else "0")
    wh = Warehouse(parse_url(f"duckdb:///{db}"))
    try:
        for entity in ENTITIES:
            load_landing(wh, entity, landing, RUN, tz)
    finally:
        wh.close()


def _differences(a: Path, b: Path) -> dict[str, tuple[int, int, int]]:
    """Per table: (rows, rows only in a, rows only in b), ignoring load times."""
    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    out = {}
    tables = [("raw", e) for e in ENTITIES] + [("audit", "quarantine"), ("audit", "load_batches")]
    for schema, table in tables:
        cols = [
            c
            for (c,) in con.execute(
                "select column_name from information_schema.columns "
                "where table_catalog = 'a' and table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            if c not in ("_loaded_at", "quarantined_at", "loaded_at")
        ]
        sel = ", ".join(f'"{c}"' for c in cols)
        rel = f"{schema}.{table}"
        count = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        out[rel] = (
            count(f"select count(*) from a.{rel}"),
            count(f"select count(*) from (select {sel} from a.{rel} except all select {sel} from b.{rel})"),
            count(f"select count(*) from (select {sel} from b.{rel} except all select {sel} from a.{rel})"),
        )
    return out


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
def test_fast_and_per_record_paths_load_the_same_rows(tmp_path, monkeypatch, zone):
    rng = random.Random(zone)
    landing = tmp_path / "landing"
    for i, entity in enumerate(ENTITIES):
        _write(landing, entity, "csv", _records(rng, entity, 400, typed=False), ["utf-8", "gb18030", "utf-16"][i % 3])
        _write(landing, entity, "jsonl", _records(rng, entity, 400, typed=True))
    tz = ZoneInfo(zone)
    _load(landing, tmp_path / "fast.duckdb", tz, monkeypatch, fast_on=True)
    _load(landing, tmp_path / "slow.duckdb", tz, monkeypatch, fast_on=False)
    diffs = _differences(tmp_path / "fast.duckdb", tmp_path / "slow.duckdb")
    assert {k: v for k, v in diffs.items() if v[1] or v[2]} == {}
    # Not vacuous: both outcomes occur, and most rows of the chat CSV were taken column-wise.
    assert diffs["raw.orders"][0] > 50 and diffs["audit.quarantine"][0] > 500
    text = (landing / "chat_messages" / "chat_messages_csv.csv").read_bytes().decode("gb18030")
    batch = fast.try_fast(SPECS["chat_messages"], "csv", text, tz)
    assert batch is not None and batch.good.num_rows > 0 and batch.slow


STRUCTURE = {
    # name: (file text, whether the vectorised reading may take the file)
    "clean": ("order_id,customer_id,ordered_at,status,total_amount\no1,c1,2025-01-01 08:00:00,paid,10\n", True),
    "quoted comma": ('order_id,customer_id,ordered_at,status,total_amount\no1,"c,1",2025-01-01 08:00:00,paid,"10"\n', True),
    "quote inside a field": ('order_id,customer_id,ordered_at,status,total_amount\no1,c"1,2025-01-01 08:00:00,paid,10\n', None),
    "text after a closing quote": ('order_id,customer_id,ordered_at,status,total_amount\no1,"c"1,2025-01-01 08:00:00,paid,10\n', None),
    "blank line": ("order_id,customer_id,ordered_at,status,total_amount\n\no1,c1,2025-01-01 08:00:00,paid,10\n", False),
    "row of empty cells": ("order_id,customer_id,ordered_at,status,total_amount\n,,,,\no1,c1,2025-01-01 08:00:00,paid,10\n", True),
    "record over two lines": ('order_id,customer_id,ordered_at,status,total_amount\no1,"c\n1",2025-01-01 08:00:00,paid,10\n', False),
    "short row": ("order_id,customer_id,ordered_at,status,total_amount\no1,c1,2025-01-01 08:00:00,paid\n", False),
    "CR line ends": ("order_id,customer_id,ordered_at,status,total_amount\ro1,c1,2025-01-01 08:00:00,paid,10\r", True),
    "unterminated quote": ('order_id,customer_id,ordered_at,status,total_amount\no1,"c1,2025-01-01 08:00:00,paid,10\n', False),
    "repeated header": ("order_id,order_id,customer_id,ordered_at,status,total_amount\no0,o1,c1,2025-01-01 08:00:00,paid,10\n", False),
    "missing required column": ("order_id,ordered_at,status,total_amount\no1,2025-01-01 08:00:00,paid,10\n", False),
    "NUL": ("order_id,customer_id,ordered_at,status,total_amount\no1,c\x001,2025-01-01 08:00:00,paid,10\n", False),
    "extra column": ("order_id,customer_id,ordered_at,status,total_amount,shop\no1,c1,2025-01-01 08:00:00,paid,10,x\n", True),
    "doubled quotes inside quotes": ('order_id,customer_id,ordered_at,status,total_amount\no1,"say ""hi""",2025-01-01 08:00:00,paid,""\n', True),
    "space before an opening quote": ('order_id,customer_id,ordered_at,status,total_amount\no1, "c1",2025-01-01 08:00:00,paid,10\n', None),
    "space after a closing quote": ('order_id,customer_id,ordered_at,status,total_amount\no1,"c1" ,2025-01-01 08:00:00,paid,10\n', None),
    "odd quotes in a quoted field": ('order_id,customer_id,ordered_at,status,total_amount\no1,"c""1",2025-01-01 08:00:00,paid,"1"0\n', None),
    "header with spaces and BOM": ("\ufeff order_id ,customer_id,ordered_at,status,total_amount\no1,c1,2025-01-01 08:00:00,paid,10\n", True),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(STRUCTURE))
def test_file_shapes_the_vectorised_reading_is_unsure_of_go_record_by_record(tmp_path, monkeypatch, case):
    text, taken = STRUCTURE[case]
    tz = ZoneInfo("Asia/Shanghai")
    batch = fast.try_fast(SPECS["orders"], "csv", text, tz)
    if taken is not None:
        assert (batch is not None) is taken
    landing = tmp_path / "landing"
    (landing / "orders").mkdir(parents=True)
    (landing / "orders" / "o.csv").write_text(text, encoding="utf-8", newline="")
    _load(landing, tmp_path / "fast.duckdb", tz, monkeypatch, fast_on=True)
    _load(landing, tmp_path / "slow.duckdb", tz, monkeypatch, fast_on=False)
    diffs = _differences(tmp_path / "fast.duckdb", tmp_path / "slow.duckdb")
    assert {k: v for k, v in diffs.items() if v[1] or v[2]} == {}


JSON_LINES = {
    "trailing comma (DuckDB reads it, json.loads does not)": '{"refund_id": "r1", "order_id": "o1", "refunded_at": "2025-01-01 08:00:00", "amount": "1",}\n',
    "repeated key": '{"refund_id": "r1", "refund_id": "r2", "order_id": "o1", "refunded_at": "2025-01-01 08:00:00", "amount": "1"}\n',
    "not an object": '["r1"]\n',
    "surrogate escape": '{"refund_id": "r1", "order_id": "o1", "refunded_at": "2025-01-01 08:00:00", "amount": "1", "reason": "\\ud83c\\udf89"}\n',
    "escapes": '{"refund_id": "r\\"1\\\\", "order_id": "o\\n1", "refunded_at": "2025-01-01 08:00:00", "amount": 12, "reason": "a\\tb"}\n',
    "float amount": '{"refund_id": "r1", "order_id": "o1", "refunded_at": "2025-01-01 08:00:00", "amount": 12.5}\n',
    "blank lines": '\n   \n{"refund_id": "r1", "order_id": "o1", "refunded_at": "2025-01-01 08:00:00", "amount": "1"}\n\n',
    "raw tab between tokens (json.loads reads it)": '{"refund_id":\t"r1", "order_id": "o1", "refunded_at": "2025-01-01 08:00:00", "amount": "1"}\n',
    "raw tab in a value (json.loads does not read it)": '{"refund_id": "r\t1", "order_id": "o1", "refunded_at": "2025-01-01 08:00:00", "amount": "1"}\n',
    "raw control in a value": '{"refund_id": "r1", "order_id": "o\x011", "refunded_at": "2025-01-01 08:00:00", "amount": "1"}\n',
    "NaN": '{"refund_id": "r1", "order_id": "o1", "refunded_at": "2025-01-01 08:00:00", "amount": NaN}\n',
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(JSON_LINES))
def test_json_lines_the_vectorised_reading_is_unsure_of_go_record_by_record(tmp_path, monkeypatch, case):
    landing = tmp_path / "landing"
    (landing / "refunds").mkdir(parents=True)
    good = '{"refund_id": "r0", "order_id": "o0", "refunded_at": "2025-01-01T08:00:00Z", "amount": "3.50"}\n'
    (landing / "refunds" / "r.jsonl").write_text(good + JSON_LINES[case], encoding="utf-8", newline="")
    tz = ZoneInfo("Asia/Shanghai")
    _load(landing, tmp_path / "fast.duckdb", tz, monkeypatch, fast_on=True)
    _load(landing, tmp_path / "slow.duckdb", tz, monkeypatch, fast_on=False)
    diffs = _differences(tmp_path / "fast.duckdb", tmp_path / "slow.duckdb")
    assert {k: v for k, v in diffs.items() if v[1] or v[2]} == {}
    assert diffs["raw.refunds"][0] >= 1


def test_only_lines_not_well_quoted_are_read_again_by_the_csv_module():
    """A line whose fields are plain or wholly quoted (inner quotes doubled) is not compared field by field."""
    lines = [
        "o1,c1,10\n",  # no quote
        'o1,"c,1","say ""hi"""\r\n',  # well quoted
        'o1,"",""\n',  # empty quoted fields
        'o1,c"1,10\n',  # a quote inside a plain field
        'o1,"c"1,10\n',  # text after a closing quote
        'o1, "c1",10\n',  # a space before an opening quote
        'o1,"c1" ,10\n',  # a space after a closing quote
        'o1,"c1,10\n',  # unterminated
        '"o1",c1,"10"',  # well quoted, no line end
    ]
    assert fast._unsure_quoting(lines) == [3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,2\n",
        "a,b\n1,2",  # no line end at the end
        "a,b\r\n1,2\r\n",
        'a,b\r\n1,"x\r\ny"\r\n2,"""q"""\r\n',  # CRLF only, one inside a quoted value
        "a,b\r\n1,2\r3,4\r\n",  # CRLF and a lone CR
        'a,b\n1,"x\ry"\n',  # a lone CR inside a value ends a line for readlines
        "a\n\n\nb\n",  # blank lines
        '标题,内容\n你好,"说 ""好"""\n😀,é\n',
        "\n",
        "x",
    ],
)
def test_lines_are_split_as_readlines_splits_them(text):
    """The vectorised CSV reading counts and splits lines without a string per line where the file has no CR:
    each line it gives (the LF aside) is readlines(newline="")'s, and so is the count and the first line."""
    expected = io.StringIO(text, newline="").readlines()
    lines = fast._Lines(text, text.encode("utf-8"))
    assert lines.count() == len(expected)
    assert lines.first() == expected[0]
    arr = lines.arrow()
    got = lines.some(arr, list(range(len(arr))))
    assert got == expected
    assert fast._unsure_quoting(arr) == fast._unsure_quoting(expected)
