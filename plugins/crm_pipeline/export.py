"""Export a published mart to CSV for spreadsheet users, with formula cells neutralised.

    python -m crm_pipeline.export fct_customer_risk [--out risk.csv]

Only tables of the `marts` schema can be exported (they hold no PII). Text a
customer wrote can reach a mart column (a city typed into a shop profile),
and a spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return as a formula (CSV injection). Such text cells get a leading
`'`, which spreadsheets show as text; numbers and dates are written as they
are. The file is UTF-8 with a BOM, so Excel opens Chinese text correctly.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import sys
from pathlib import Path

from crm_pipeline.config import settings
from crm_pipeline.load.warehouse import Warehouse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A cell as a spreadsheet should read it: text that would start a formula is prefixed with `'`."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | decimal.Decimal | dt.date | dt.datetime):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_mart(wh: Warehouse, mart: str, out: Path) -> int:
    """Write marts.<mart> to `out`; returns the number of rows written."""
    known = {t for (t,) in wh.fetchall("select table_name from information_schema.tables where table_schema = 'marts'")}
    if mart not in known:
        raise ValueError(f"no published mart {mart!r}; known: {', '.join(sorted(known)) or 'none'}")
    columns = wh.columns("marts", mart)
    rows = wh.fetchall(f'select * from marts."{mart}" order by 1')  # the name was checked against the catalogue
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([neutralise(v) for v in row])
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mart", help="a table of the marts schema, e.g. fct_customer_rfm")
    ap.add_argument("--out", type=Path, help="CSV file to write (default: data/exports/<mart>.csv)")
    args = ap.parse_args(argv)
    out = args.out or Path("data") / "exports" / f"{args.mart}.csv"
    with Warehouse.from_url(settings().warehouse_url) as wh:
        try:
            n = export_mart(wh, args.mart, out)
        except ValueError as exc:
            print(f"export: {exc}", file=sys.stderr)
            return 2
    print(f"wrote {n} rows of marts.{args.mart} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
