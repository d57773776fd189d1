"""Business alerts: what the marts say a CRM manager should act on today.

`marts.fct_business_alerts` (dbt; rules and thresholds in the
`business_alert_rules` seed) holds the conditions true as of the published
day, each named by an `alert_key` that does not contain the day. After each
publish they are reconciled with `audit.alerts` like check alerts: a key seen
for the first time opens an alert and sends one message, a key still there
the next day sends nothing, and an open key that is gone sends a resolution.
Messages carry the customer_key (a pseudonym), never a name, phone or text,
and say where to look.

With `CRM_BUSINESS_ALERT_DIGEST=1` the day's openings and resolutions go out
as one digest message instead; a critical complaint still goes out at once.
Alerts only move forward: a run for a day before the latest day reconciled
(a backfill of the past) publishes its marts but leaves the alerts alone, so
an old day cannot reopen what a later day resolved.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable

from crm_pipeline.alerts import Outcome, Problem, reconcile
from crm_pipeline.alerts.channels import Channel, Message, configured
from crm_pipeline.load.warehouse import Warehouse

log = logging.getLogger(__name__)
MART = "marts.fct_business_alerts"
DAYS = "audit.business_alert_days"
RULES = ("critical_complaint", "negative_spike", "valuable_at_risk", "fan_gone_quiet")
AT_ONCE = {"critical_complaint"}  # never held for the digest
COLUMNS = (
    "alert_key, rule, severity, subject_type, subject_id, customer_key, observed, expected, z_score, "
    "value_at_stake, since_date, look_at"
)
ROLES = {
    "core_fan": "core fan",
    "opinion_leader": "opinion leader",
    "core_fan_and_opinion_leader": "core fan and opinion leader",
}


def ensure_tables(wh: Warehouse) -> None:
    wh.create_table(DAYS, [("as_of_date", "date"), ("run_id", "text"), ("reconciled_at", "timestamp")])


def _title(r: dict) -> str:
    if r["rule"] == "negative_spike":
        return (
            f"Negative feedback spike on {r['subject_type']} {r['subject_id']}: {r['observed']} since "
            f"{r['since_date']}, {r['expected']} expected (z {r['z_score']})"
        )
    if r["rule"] == "valuable_at_risk":
        return f"A {r['subject_id']} is at risk: {r['customer_key']}, {r['value_at_stake']} at stake"
    if r["rule"] == "fan_gone_quiet":
        role = ROLES.get(r["subject_type"], r["subject_type"])
        return f"A {role} has gone quiet: {r['customer_key']}, no activity for {r['observed']} days"
    return f"Critical complaint ({r['subject_type']}) about {r['subject_id']}: {r['customer_key']}"


def problems(wh: Warehouse, as_of: dt.date, run_id: str) -> list[Problem]:
    """The published conditions as alert problems, one per alert_key."""
    rows = [dict(zip([c.strip() for c in COLUMNS.split(",")], r, strict=True))
            for r in wh.fetchall(f"select {COLUMNS} from {MART} order by alert_key")]  # fmt: skip
    out = []
    for r in rows:
        fields = {"alert": f"business/{r['rule']}", "alert_key": r["alert_key"], "run_id": run_id}
        fields["run_date"] = as_of.isoformat()
        fields.update({k: r[k] for k in ("subject_type", "subject_id", "customer_key", "observed") if r[k] is not None})
        for k in ("expected", "z_score", "value_at_stake"):
            if r[k] is not None:
                fields[k] = str(r[k])
        fields.update(since=str(r["since_date"]), look_at=r["look_at"])
        out.append(Problem(r["alert_key"], r["severity"], _title(r), "crm_transform", fields))
    return out


def reconcile_day(
    wh: Warehouse, as_of: dt.date, run_id: str, *, digest: bool = False, channels: list[Channel] | None = None
) -> dict:
    """Open, keep quiet or resolve the business alerts of the published day (call after the publish)."""
    ensure_tables(wh)
    latest = wh.fetchone(f"select max(as_of_date) from {DAYS}")[0]
    if latest is not None and as_of < latest:
        log.info("business alerts left alone: %s is before %s, the latest day reconciled", as_of, latest)
        return {"skipped": f"{as_of} is before {latest}"}
    found = problems(wh, as_of, run_id)
    total = Outcome()
    # One lookup of the configured channels for every rule, and only if a message goes out.
    send_to = functools.cache(configured) if channels is None else (lambda: channels)
    for rule in RULES:
        held = digest and rule not in AT_ONCE
        outcome = reconcile(
            wh,
            f"business:{rule}:",
            [p for p in found if p.fingerprint.startswith(f"business:{rule}:")],
            [] if held else send_to,
        )
        for k in ("opened", "repeated", "resolved", "delivery_errors"):
            getattr(total, k).extend(getattr(outcome, k))
    if digest:
        _send_digest(wh, as_of, total, send_to)
    wh.execute(f"insert into {DAYS} values (%s, %s, %s)", (as_of, run_id, dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    summary = {k: len(getattr(total, k)) for k in ("opened", "repeated", "resolved")}
    summary["delivery_errors"] = total.delivery_errors
    log.info("business alerts for %s: %s", as_of, summary)
    return summary


def _send_digest(wh: Warehouse, as_of: dt.date, outcome: Outcome, channels: Callable[[], list[Channel]]) -> None:
    new = [fp for fp in outcome.opened if fp.split(":")[1] not in AT_ONCE]
    gone = [fp for fp in outcome.resolved if fp.split(":")[1] not in AT_ONCE]
    if not new and not gone:
        return
    titles = dict(wh.fetchall("select fingerprint, title from audit.alerts where fingerprint like 'business:%%'"))
    still = wh.fetchone("select count(*) from audit.alerts where status = 'open' and fingerprint like 'business:%%'")[0]
    msg = Message(
        f"CRM business alerts for {as_of}: {len(new)} new, {len(gone)} resolved, {still} open",
        "digest",
        "info",
        {
            "alert": "business/digest",
            "run_date": as_of.isoformat(),
            "new": "; ".join(titles.get(fp, fp) for fp in new),
            "resolved": "; ".join(titles.get(fp, fp) for fp in gone),
            "look_at": MART,
        },
    )
    for ch in channels():
        try:
            ch.send(msg)
        except Exception as exc:  # the day's state is recorded; a lost digest is logged, not fatal
            log.error("alert channel %s failed on the digest: %s", ch.name, exc)
            outcome.delivery_errors.append(f"{ch.name}: {exc}")
