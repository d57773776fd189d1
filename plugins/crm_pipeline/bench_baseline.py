"""The baseline users commonly write instead of this pipeline, for `make bench` to compare against.

pandas `read_csv` / `read_json` of every landed file, `DataFrame.to_sql` into
a database (SQLite, in the standard library), then RFM by a pandas groupby:
latest version of each order, counted statuses, refunds netted, recency from
the local day, quintile scores with ties sharing the lowest rank. It has no
quarantine, no identity resolution, no engagement or text, no checks: the
ratio is flattering to it.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import time
from pathlib import Path

ENTITIES = [
    "customers",
    "orders",
    "order_items",
    "refunds",
    "reviews",
    "forum_users",
    "forum_posts",
    "chat_messages",
    "events",
]
ENCODINGS = ("utf-8-sig", "gb18030", "utf-16")  # what a user tries, in order, until one reads
COUNTED = ("paid", "shipped", "completed")


def _read(path: Path):
    import pandas as pd

    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    for encoding in ENCODINGS:
        try:
            return pd.read_csv(path, dtype=str, encoding=encoding, keep_default_na=False)
        except (UnicodeError, ValueError):
            continue
    raise ValueError(f"cannot read {path}")


def _amount(series):
    import pandas as pd

    text = series.astype(str).str.normalize("NFKC").str.replace(r"[¥,\s]|元|RMB|CNY", "", regex=True)
    return pd.to_numeric(text)


def _utc(series, tz: str):
    """ISO-8601 text -> UTC; values without an offset are local time in `tz`."""
    import pandas as pd

    text = series.astype(str).str.normalize("NFKC").str.strip()
    has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if has_offset.any():
        out[has_offset] = pd.to_datetime(text[has_offset], utc=True, format="ISO8601")
    if (~has_offset).any():
        naive = pd.to_datetime(text[~has_offset], format="ISO8601")
        out[~has_offset] = naive.dt.tz_localize(tz).dt.tz_convert("UTC")
    return out


def rfm(orders, refunds, as_of: dt.date, tz: str):
    """The pandas groupby users write: one row per customer with counted orders, R/F/M and 1-5 scores."""
    import pandas as pd

    end = pd.Timestamp(dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()), tz=tz).tz_convert("UTC")
    orders = orders.assign(ordered=_utc(orders["ordered_at"], tz))
    updated = orders["updated_at"].where(orders["updated_at"].astype(str).str.len() > 0, orders["ordered_at"])
    orders = orders.assign(stamp=_utc(updated, tz), amount=_amount(orders["total_amount"]))
    known = orders[orders["stamp"] < end].sort_values("stamp", kind="stable")
    latest = known.drop_duplicates("order_id", keep="last")
    counted = latest[latest["status"].isin(COUNTED) & (latest["ordered"] < end)]
    refunds = refunds.assign(at=_utc(refunds["refunded_at"], tz), amount=_amount(refunds["amount"]))
    refunded = refunds[refunds["at"] < end].groupby("order_id")["amount"].sum()
    counted = counted.assign(net=counted["amount"] - counted["order_id"].map(refunded).fillna(0))
    counted = counted.assign(local_day=counted["ordered"].dt.tz_convert(tz).dt.date)
    per = counted.groupby("customer_id").agg(
        frequency_orders=("order_id", "count"), monetary_amount=("net", "sum"), last_day=("local_day", "max")
    )
    per["recency_days"] = [(as_of - d).days for d in per["last_day"]]
    n = len(per)

    def score(better):
        return better.rank(method="min").map(lambda r: 1 + math.floor(5 * (r - 1) / n)).astype(int)

    per["r_score"] = score(-per["recency_days"])
    per["f_score"] = score(per["frequency_orders"])
    per["m_score"] = score(per["monetary_amount"])
    return per.reset_index()


def run(landing: Path, as_of: dt.date, tz: str, db_path: Path) -> dict:
    """Time the baseline's three steps; returns seconds per step, rows read and customers scored."""
    import pandas as pd

    db_path.unlink(missing_ok=True)
    timings, rows, frames = {}, 0, {}
    t0 = time.perf_counter()
    for entity in ENTITIES:
        parts = [_read(p) for p in sorted((landing / entity).glob("*")) if p.is_file()]
        if parts:
            frames[entity] = pd.concat(parts, ignore_index=True)
            rows += len(frames[entity])
    timings["read_csv"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with sqlite3.connect(db_path) as conn:
        for entity, frame in frames.items():
            frame.astype(str).to_sql(entity, conn, if_exists="replace", index=False, chunksize=50_000)
    timings["to_sql"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scored = rfm(frames["orders"], frames["refunds"], as_of, tz)
    timings["groupby RFM"] = time.perf_counter() - t0
    return {"seconds": timings, "rows": rows, "customers_scored": len(scored)}
