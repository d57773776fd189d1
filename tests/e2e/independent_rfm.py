"""RFM recomputed straight from the landing files with the standard library and pandas only.

Deliberately shares no code with crm_pipeline: it is the yardstick the marts
are checked against (the RFM rules of docs/architecture.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import re
import unicodedata
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

UTC = dt.UTC
COUNTED = {"paid", "shipped", "completed"}


def _amount(text: str) -> Decimal:
    cleaned = re.sub(r"[¥,\s]|元|RMB|CNY", "", unicodedata.normalize("NFKC", text))
    return Decimal(cleaned).quantize(Decimal("0.01"))


def _ts(text: str, tz: ZoneInfo) -> dt.datetime:
    value = dt.datetime.fromisoformat(unicodedata.normalize("NFKC", text).strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _rows(folder: Path):
    for path in sorted(folder.glob("*")):
        if path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as fh:
                yield from (json.loads(line) for line in fh if line.strip())
        else:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                yield from csv.DictReader(fh)


def compute(landing: Path, as_of: dt.date, tz_name: str, secret: str, segments_csv: Path) -> pd.DataFrame:
    per_customer = _per_customer(landing, as_of, tz_name)
    df = pd.DataFrame(
        [
            {
                "customer_id": cid,
                "frequency_orders": c["f"],
                "monetary_amount": c["m"],
                "recency_days": (as_of - c["last"]).days,
            }
            for cid, c in per_customer.items()
        ]
    )
    return _scored(df, secret, segments_csv)


def _per_customer(landing: Path, as_of: dt.date, tz_name: str) -> dict[str, dict]:
    """Each customer's counted orders as of the day: count, net value, last local day, net value per local day."""
    tz = ZoneInfo(tz_name)
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tz).astimezone(UTC)

    latest: dict[str, tuple] = {}
    for position, row in enumerate(_rows(landing / "orders")):
        ordered = _ts(row["ordered_at"], tz)
        stamp = _ts(row["updated_at"], tz) if row.get("updated_at") else ordered
        if stamp >= end:
            continue  # this version was not known at the end of the as-of day
        key = (stamp, position)
        if row["order_id"] not in latest or key > latest[row["order_id"]][0]:
            latest[row["order_id"]] = (key, row, ordered)

    refunds: dict[str, Decimal] = {}
    for row in _rows(landing / "refunds"):
        if _ts(row["refunded_at"], tz) < end:
            refunds[row["order_id"]] = refunds.get(row["order_id"], Decimal(0)) + _amount(row["amount"])

    per_customer: dict[str, dict] = {}
    for _, row, ordered in latest.values():
        if row["status"] not in COUNTED or ordered >= end:
            continue
        c = per_customer.setdefault(row["customer_id"], {"f": 0, "m": Decimal(0), "last": None, "days": {}})
        c["f"] += 1
        net = _amount(row["total_amount"]) - refunds.get(row["order_id"], Decimal(0))
        c["m"] += net
        local_day = ordered.astimezone(tz).date()
        c["last"] = max(c["last"], local_day) if c["last"] else local_day
        c["days"][local_day] = c["days"].get(local_day, Decimal(0)) + net
    return per_customer


def _scored(df: pd.DataFrame, secret: str, segments_csv: Path) -> pd.DataFrame:
    n = len(df)

    def score(better_is_higher: pd.Series) -> pd.Series:
        rank = better_is_higher.rank(method="min", ascending=True)
        return rank.map(lambda r: 1 + math.floor(5 * (r - 1) / n)).astype(int)

    df["r_score"] = score(-df["recency_days"])
    df["f_score"] = score(df["frequency_orders"])
    df["m_score"] = score(df["monetary_amount"].astype(float))
    grid = {}
    with segments_csv.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            grid[(int(row["r_score"]), int(row["fm_score"]))] = row["rfm_segment"]
    df["rfm_segment"] = [
        grid[(r, (f + m + 1) // 2)] for r, f, m in zip(df.r_score, df.f_score, df.m_score, strict=True)
    ]
    df["customer_key"] = [
        hashlib.sha256(f"{secret}:customer:{cid}".encode()).hexdigest()[:32] for cid in df["customer_id"]
    ]
    return df


def value_summaries(landing: Path, as_of: dt.date, tz_name: str, secret: str) -> dict[str, tuple]:
    """customer_key -> (x, t_x, T, mean repeat value) for the lifetime-value models: a purchase is a
    local day with counted orders, its value net of refunds; weeks."""
    out = {}
    for cid, c in _per_customer(landing, as_of, tz_name).items():
        days = sorted(c["days"])
        repeat = [c["days"][d] for d in days[1:]]
        out[hashlib.sha256(f"{secret}:customer:{cid}".encode()).hexdigest()[:32]] = (
            len(days) - 1,
            (days[-1] - days[0]).days / 7,
            (as_of - days[0]).days / 7,
            float(sum(repeat) / len(repeat)) if repeat else None,
        )
    return out
