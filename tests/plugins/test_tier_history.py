"""Tier history across runs (valid from / valid to, one current row, no overlaps), on both engines."""

from __future__ import annotations

import datetime as dt
import itertools

from crm_pipeline import tier_history
from crm_pipeline.load.warehouse import Warehouse

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)


def _publish(wh, tiers: dict[str, str]):
    wh.execute("create schema if not exists marts")
    wh.execute("drop table if exists marts.dim_customers")
    wh.execute("create table marts.dim_customers (customer_key varchar, community_tier varchar)")
    for k, t in tiers.items():
        wh.execute("insert into marts.dim_customers values (%s, %s)", (k, t))


def _history(wh):
    return wh.fetchall(
        "select customer_key, community_tier, valid_from, valid_to, is_current from marts.dim_customer_tier_history "
        "order by customer_key, valid_from"
    )


def _changes(wh):
    return wh.fetchall("select customer_key, change_date, from_tier, to_tier from marts.fct_tier_changes order by 1, 2")


def test_history_moves_forward_and_a_rerun_adds_nothing(warehouse_url):
    with Warehouse.from_url(warehouse_url) as wh:
        _publish(wh, {"k1": "customer", "k2": "member"})
        assert tier_history.update(wh, D1) == {"skipped": False, "rows_added": 2, "changes_added": 2}
        assert tier_history.update(wh, D1)["rows_added"] == 0  # same day, no change: nothing

        _publish(wh, {"k1": "member", "k3": "prospect"})  # k1 promoted, k2 gone, k3 new
        tier_history.update(wh, D2)
        assert tier_history.update(wh, D2) == {"skipped": False, "rows_added": 0, "changes_added": 0}
        assert _history(wh) == [
            ("k1", "customer", D1, D2, False),
            ("k1", "member", D2, None, True),
            ("k2", "member", D1, D2, False),
            ("k3", "prospect", D2, None, True),
        ]
        assert _changes(wh) == [
            ("k1", D1, None, "customer"),
            ("k1", D2, "customer", "member"),
            ("k2", D1, None, "member"),
            ("k3", D2, None, "prospect"),
        ]

        # The same day rerun with corrected data: today's row and event are fixed in place.
        _publish(wh, {"k1": "partner", "k3": "prospect"})
        tier_history.update(wh, D2)
        assert ("k1", "partner", D2, None, True) in _history(wh)
        assert ("k1", D2, "customer", "partner") in _changes(wh)

        # A backfill of an earlier day leaves the history alone.
        before = _history(wh)
        assert tier_history.update(wh, D1)["skipped"] is True
        assert _history(wh) == before

        tier_history.update(wh, D3)  # unchanged tiers: nothing
        rows = _history(wh)
    assert rows == before
    current = [r for r in rows if r[4]]
    assert len({r[0] for r in current}) == len(current)  # one current row per person
    by_key: dict[str, list] = {}
    for key, _, start, end, _ in rows:
        by_key.setdefault(key, []).append((start, end))
    for spans in by_key.values():
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end is not None and end <= start  # no overlaps
