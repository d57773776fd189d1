"""Business alerts from the published conditions: once when they open, silence while they hold, a resolution,
the daily digest, backfills leaving them alone, on both engines at a real local webhook."""

from __future__ import annotations

import datetime as dt

import pytest

from alert_receivers import HttpReceiver
from crm_pipeline.alerts.business import reconcile_day
from crm_pipeline.alerts.channels import WebhookChannel
from crm_pipeline.load.loader import ensure_tables
from crm_pipeline.load.warehouse import Warehouse

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
SPIKE = ("business:negative_spike:product:P1", None, "negative_spike", "warning", "product", "P1", 6, 0.5, 7.8, None)
AT_RISK = (
    "business:valuable_at_risk:k1",
    "k1",
    "valuable_at_risk",
    "warning",
    "customer",
    "partner",
    2,
    None,
    None,
    1299,
)
QUIET = ("business:fan_gone_quiet:k2", "k2", "fan_gone_quiet", "warning", "core_fan", "member", 20, None, None, None)
FIRE = (
    "business:critical_complaint:forum:p9",
    "k3",
    "critical_complaint",
    "critical",
    "forum",
    "P1",
    1,
    None,
    None,
    None,
)


@pytest.fixture
def http():
    r = HttpReceiver()
    yield r
    r.close()


def _publish(wh, day: dt.date, rows: list[tuple]) -> None:
    """What the day's publish leaves in marts.fct_business_alerts."""
    wh.execute("create schema if not exists marts")
    wh.execute("drop table if exists marts.fct_business_alerts")
    wh.execute(
        "create table marts.fct_business_alerts (alert_key varchar, customer_key varchar, rule varchar, "
        "severity varchar, subject_type varchar, subject_id varchar, observed integer, expected decimal(18, 2), "
        "z_score decimal(18, 2), value_at_stake decimal(18, 2), look_at varchar, since_date date, as_of_date date)"
    )
    for r in rows:
        wh.execute(
            "insert into marts.fct_business_alerts values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (*r, f"marts.x where key = '{r[0]}'", day, day),
        )


def _bodies(http) -> list[tuple]:
    return [(r["body"]["status"], r["body"].get("alert_key") or r["body"].get("fingerprint")) for r in http.requests]


def test_each_condition_is_said_once_then_resolved(warehouse_url, http):
    hook = [WebhookChannel(http.url + "/hook")]
    with Warehouse.from_url(warehouse_url) as wh:
        ensure_tables(wh, [])
        _publish(wh, D1, [SPIKE, AT_RISK])
        assert reconcile_day(wh, D1, "r1", channels=hook)["opened"] == 2
        _publish(wh, D2, [SPIKE, AT_RISK, FIRE])  # the same spike the next day: only the new complaint
        assert reconcile_day(wh, D2, "r2", channels=hook) == {
            "opened": 1, "repeated": 2, "resolved": 0, "delivery_errors": []
        }  # fmt: skip
        _publish(wh, D3, [AT_RISK, FIRE])  # the spike is over
        reconcile_day(wh, D3, "r3", channels=hook)
    assert _bodies(http) == [
        ("firing", SPIKE[0]),
        ("firing", AT_RISK[0]),
        ("firing", FIRE[0]),
        ("resolved", SPIKE[0]),
    ]
    first = http.requests[1]["body"]
    assert first["title"] == "A partner is at risk: k1, 1299.00 at stake" and first["severity"] == "warning"
    assert first["customer_key"] == "k1" and first["look_at"] == "marts.x where key = 'business:valuable_at_risk:k1'"
    assert http.requests[0]["body"]["title"] == (
        "Negative feedback spike on product P1: 6 since 2026-11-20, 0.50 expected (z 7.80)"
    )


def test_a_backfilled_day_leaves_the_alerts_alone(warehouse_url, http):
    hook = [WebhookChannel(http.url + "/hook")]
    with Warehouse.from_url(warehouse_url) as wh:
        ensure_tables(wh, [])
        _publish(wh, D3, [AT_RISK])
        reconcile_day(wh, D3, "r3", channels=hook)
        _publish(wh, D1, [SPIKE])  # an earlier day, run after: its conditions are history
        assert reconcile_day(wh, D1, "r1", channels=hook) == {"skipped": "2026-11-20 is before 2026-11-22"}
        states = wh.fetchall("select fingerprint, status from audit.alerts")
    assert _bodies(http) == [("firing", AT_RISK[0])] and states == [(AT_RISK[0], "open")]


def test_the_digest_sends_one_message_a_day_and_critical_complaints_at_once(warehouse_url, http):
    hook = [WebhookChannel(http.url + "/hook")]
    with Warehouse.from_url(warehouse_url) as wh:
        ensure_tables(wh, [])
        _publish(wh, D1, [SPIKE, AT_RISK, QUIET, FIRE])
        reconcile_day(wh, D1, "r1", digest=True, channels=hook)
        _publish(wh, D2, [SPIKE, AT_RISK, QUIET, FIRE])  # nothing new: no digest
        reconcile_day(wh, D2, "r2", digest=True, channels=hook)
        _publish(wh, D3, [AT_RISK, QUIET])
        reconcile_day(wh, D3, "r3", digest=True, channels=hook)
        still_open = wh.fetchone("select count(*) from audit.alerts where status = 'open'")[0]
    bodies = [r["body"] for r in http.requests]
    assert [(b["status"], b.get("alert")) for b in bodies] == [
        ("firing", "business/critical_complaint"),
        ("digest", "business/digest"),
        ("resolved", None),  # the complaint's own resolution, at once too
        ("digest", "business/digest"),
    ]
    assert bodies[1]["title"] == "CRM business alerts for 2026-11-20: 3 new, 0 resolved, 4 open"
    assert bodies[1]["new"].count("; ") == 2 and "k1" in bodies[1]["new"] and "k2" in bodies[1]["new"]
    assert bodies[3]["title"] == "CRM business alerts for 2026-11-22: 0 new, 1 resolved, 2 open"
    assert bodies[3]["resolved"].startswith("Negative feedback spike on product P1")
    assert still_open == 2


def test_one_channel_lookup_a_day_whatever_the_rules(warehouse_url, monkeypatch):
    """A lookup asks Airflow for five connections: a day opening alerts of every rule looks them up once."""
    import crm_pipeline.alerts.business as business

    lookups = []
    monkeypatch.setattr(business, "configured", lambda: lookups.append(1) or [])
    with Warehouse.from_url(warehouse_url) as wh:
        ensure_tables(wh, [])
        _publish(wh, D1, [SPIKE, AT_RISK, QUIET, FIRE])
        assert reconcile_day(wh, D1, "r1")["opened"] == 4
        _publish(wh, D2, [SPIKE, AT_RISK, QUIET, FIRE])
        reconcile_day(wh, D2, "r2")  # nothing new: no lookup
    assert lookups == [1]
