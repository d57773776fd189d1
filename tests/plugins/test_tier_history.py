"""Tier history from each day's changes: a day's rerun, days out of order and legacy rows, on both engines."""

from __future__ import annotations

import datetime as dt

from crm_pipeline import tier_history
from crm_pipeline.load.warehouse import Warehouse

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)

# What marts.dim_customers says on each day: (previous_tier, community_tier) per person.
DAYS = {
    D1: {"k1": ("prospect", "customer"), "k2": ("customer", "customer"), "k3": ("member", "customer")},
    D2: {"k1": ("customer", "member"), "k2": ("customer", "customer"), "k3": ("customer", "customer")},
    D3: {"k1": ("member", "member"), "k2": ("customer", "member"), "k3": ("customer", "customer")},
}
# By hand: k1 became a customer on D1 and a member on D2; k2 a member on D3; k3 fell from member on D1.
CHANGES = [
    ("k1", D1, "prospect", "customer"),
    ("k1", D2, "customer", "member"),
    ("k2", D3, "customer", "member"),
    ("k3", D1, "member", "customer"),
]
HISTORY = [
    ("k1", "prospect", None, D1, False),
    ("k1", "customer", D1, D2, False),
    ("k1", "member", D2, None, True),
    ("k2", "customer", None, D3, False),
    ("k2", "member", D3, None, True),
    ("k3", "member", None, D1, False),
    ("k3", "customer", D1, None, True),
]


def _publish(wh, day: dt.date, tiers: dict | None = None):
    wh.execute("create schema if not exists marts")
    wh.execute("drop table if exists marts.dim_customers")
    wh.execute("create table marts.dim_customers (customer_key varchar, previous_tier varchar, community_tier varchar)")
    for k, (before, now) in (tiers or DAYS[day]).items():
        wh.execute("insert into marts.dim_customers values (%s, %s, %s)", (k, before, now))
    return tier_history.update(wh, day)


def _state(wh):
    history = wh.fetchall(
        "select customer_key, community_tier, valid_from, valid_to, is_current from marts.dim_customer_tier_history "
        "order by customer_key, valid_from nulls first"
    )
    changes = wh.fetchall(
        "select customer_key, change_date, from_tier, to_tier from marts.fct_tier_changes order by 1, 2"
    )
    return history, changes


def _reset(wh):
    wh.execute("create schema if not exists marts")
    wh.execute("drop table if exists marts.dim_customer_tier_history")
    wh.execute("drop table if exists marts.fct_tier_changes")


def test_history_is_the_same_whatever_order_the_days_run_in(warehouse_url):
    with Warehouse.from_url(warehouse_url) as wh:
        _reset(wh)
        assert _publish(wh, D1) == {"changes": 2, "history_rows": 4}
        assert _publish(wh, D1) == {"changes": 2, "history_rows": 4}  # a rerun adds nothing
        _publish(wh, D2)
        _publish(wh, D3)
        in_order = _state(wh)
        for order in ((D3, D1, D2), (D2, D3, D1, D3, D2)):  # out of order, and days run twice
            _reset(wh)
            for day in order:
                _publish(wh, day)
            assert _state(wh) == in_order
    assert in_order == (HISTORY, CHANGES)


def test_a_rerun_with_corrected_tiers_replaces_that_days_changes(warehouse_url):
    with Warehouse.from_url(warehouse_url) as wh:
        _reset(wh)
        for day in (D1, D2, D3):
            _publish(wh, day)
        # D2 again after a late order: k1 went straight to partner, and k3 did not move.
        _publish(wh, D2, {**DAYS[D2], "k1": ("customer", "partner")})
        history, changes = _state(wh)
    assert ("k1", D2, "customer", "partner") in changes and ("k1", D2, "customer", "member") not in changes
    assert [h for h in history if h[0] == "k1"][-1] == ("k1", "partner", D2, None, True)


def test_events_from_nothing_of_the_old_history_are_dropped(warehouse_url):
    with Warehouse.from_url(warehouse_url) as wh:
        _reset(wh)
        tier_history.ensure_tables(wh)
        wh.execute("insert into marts.fct_tier_changes values ('k9', %s, null, 'customer')", (D1,))
        _publish(wh, D2)
        history, changes = _state(wh)
    assert not any(c[0] == "k9" for c in changes) and not any(h[0] == "k9" for h in history)
    assert {c[1] for c in changes} == {D2}
