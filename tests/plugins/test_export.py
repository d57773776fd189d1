"""The CSV export: formula cells neutralised, numbers untouched, only published marts."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal

import pytest

from crm_pipeline.export import export_mart, neutralise
from crm_pipeline.load.warehouse import Warehouse


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("杭州市", "杭州市"),
        ("a=b", "a=b"),  # a formula only at the start of a cell
        (None, ""),
        (Decimal("-12.50"), Decimal("-12.50")),  # a number stays a number, sign and all
        (-3, -3),
        (dt.date(2026, 11, 22), dt.date(2026, 11, 22)),
    ],
)
def test_neutralise(value, cell):
    assert neutralise(value) == cell


def test_export_writes_every_row_and_refuses_what_is_not_a_published_mart(warehouse_url, tmp_path):
    with Warehouse.from_url(warehouse_url) as wh:
        wh.execute("create schema if not exists marts")
        wh.execute("create schema if not exists raw")
        wh.execute("create table marts.demo (customer_key text, city text, monetary_amount decimal(18, 2))")
        wh.execute("insert into marts.demo values ('k1', '=1+1', -5.00), ('k2', '上海市', 10.00)")
        wh.execute("create table raw.customers (phone text)")
        assert export_mart(wh, "demo", tmp_path / "demo.csv") == 2
        for name in ("customers", "demo; drop table marts.demo"):
            with pytest.raises(ValueError, match="no published mart"):
                export_mart(wh, name, tmp_path / "x.csv")
        assert wh.fetchone("select count(*) from marts.demo")[0] == 2
    with (tmp_path / "demo.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert list(csv.reader(fh)) == [
            ["customer_key", "city", "monetary_amount"],
            ["k1", "'=1+1", "-5.00"],
            ["k2", "上海市", "10.00"],
        ]
