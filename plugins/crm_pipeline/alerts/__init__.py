"""One alert per problem: open it when a check or task first fails, stay quiet while it
persists (retries, daily reruns), say when it is resolved.

State lives in `audit.alerts` (one row per fingerprint: open or resolved).
A fingerprint names the problem, not the occurrence: a check's suite,
expectation and columns; a task's DAG and task id. Messages carry the DAG,
run, date, check, observed vs expected, counts and the report path; never a
row value, text, phone number or email.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from crm_pipeline.alerts.channels import Channel, Message, configured
from crm_pipeline.load.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass
class Problem:
    fingerprint: str
    severity: str  # critical / warning / error
    title: str
    dag_id: str
    fields: dict = field(default_factory=dict)


@dataclass
class Outcome:
    opened: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    delivery_errors: list[str] = field(default_factory=list)


def check_problem(
    result, dag_id: str, run_id: str, run_date: dt.date, report: str | None, source: str | None
) -> Problem:
    """A failed expectation as a problem; the fingerprint ignores the batch, so a daily repeat is one problem."""
    kwargs = json.loads(result.expected or "{}")
    columns = kwargs.get("column") or kwargs.get("column_list") or [kwargs.get("column_A"), kwargs.get("column_B")]
    cols = ",".join(c for c in ([columns] if isinstance(columns, str) else columns) if c)
    return Problem(
        fingerprint=f"check:{result.relation}:{result.suite}:{result.expectation}:{cols}",
        severity=result.severity,
        title=f"{result.suite}: {result.expectation}({cols}) failed",
        dag_id=dag_id,
        fields={
            "dag_id": dag_id,
            "run_id": run_id,
            "run_date": run_date.isoformat(),
            "check": f"{result.suite} / {result.expectation}",
            "relation": result.relation,
            "observed": result.observed,
            "expected": result.expected,
            "counts": {"rows": result.element_count, "unexpected": result.unexpected_count},
            "batch": source or result.batch_id,
            "report": report,
        },
    )


_LONG_NUMBER = re.compile(r"\d{7,}")
_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(\.[\w-]+)+")


def scrub(text: str) -> str:
    """An error message may quote data: mask emails and long digit runs (phones, ids)."""
    return _LONG_NUMBER.sub("<number>", _EMAIL.sub("<email>", text))


def task_problem(dag_id: str, task_id: str, run_id: str, run_date: str | None, error: str) -> Problem:
    return Problem(
        fingerprint=f"task:{dag_id}.{task_id}",
        severity="error",
        title=f"task {dag_id}.{task_id} failed",
        dag_id=dag_id,
        fields={"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "run_date": run_date, "error": scrub(error)},
    )


def _send(channels: Callable[[], list[Channel]], msg: Message, outcome: Outcome) -> list[str]:
    sent = []
    for ch in channels():
        try:
            ch.send(msg)
            sent.append(ch.name)
        except Exception as exc:  # an unreachable channel must not hide the data problem
            log.error("alert channel %s failed: %s", ch.name, exc)
            outcome.delivery_errors.append(f"{ch.name}: {exc}")
    return sent


def reconcile(
    wh: Warehouse,
    scope: str,
    failing: list[Problem],
    channels: list[Channel] | Callable[[], list[Channel]] | None = None,
    *,
    resolve: bool = True,
) -> Outcome:
    """Open alerts for new problems, stay quiet on known ones, resolve open ones in `scope` that are gone.

    `scope` is a fingerprint prefix: the problems this evaluation could have
    seen (e.g. `check:raw.orders.` for one entity's suites). `channels`: a
    list, or a function giving it when a message first goes out (None: the
    configured channels, looked up then).
    """
    # The channels are looked up only when a message goes out: each lookup asks Airflow for five
    # connections, and most evaluations (every task's success) find nothing new to say.
    if channels is None:
        channels_now = functools.cache(configured)
    elif callable(channels):
        channels_now = channels
    else:
        channels_now = lambda: channels  # noqa: E731
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    outcome = Outcome()
    open_rows = {
        fp: n
        for fp, n in wh.fetchall(
            "select fingerprint, times_seen from audit.alerts where status = 'open' and fingerprint like %s",
            (scope + "%",),
        )
    }
    seen = set()
    for p in failing:
        if p.fingerprint in seen:
            continue
        seen.add(p.fingerprint)
        if p.fingerprint in open_rows:
            wh.execute(
                "update audit.alerts set last_seen_at = %s, times_seen = times_seen + 1 "
                "where fingerprint = %s and status = 'open'",
                (now, p.fingerprint),
            )
            outcome.repeated.append(p.fingerprint)
            continue
        sent = _send(channels_now, Message(p.title, "firing", p.severity, p.fields), outcome)
        wh.execute(
            "insert into audit.alerts (fingerprint, status, severity, title, dag_id, opened_at, last_seen_at, "
            "times_seen, channels) values (%s, 'open', %s, %s, %s, %s, %s, 1, %s)",
            (p.fingerprint, p.severity, p.title, p.dag_id, now, now, ",".join(sent)),
        )
        outcome.opened.append(p.fingerprint)
    if resolve:
        for fp in set(open_rows) - seen:
            title, severity, dag_id = wh.fetchone(
                "select title, severity, dag_id from audit.alerts where fingerprint = %s and status = 'open'", (fp,)
            )
            _send(
                channels_now,
                Message(
                    title, "resolved", severity, {"dag_id": dag_id, "fingerprint": fp, "resolved_at": now.isoformat()}
                ),
                outcome,
            )
            wh.execute(
                "update audit.alerts set status = 'resolved', resolved_at = %s "
                "where fingerprint = %s and status = 'open'",
                (now, fp),
            )
            outcome.resolved.append(fp)
    return outcome
