"""The DAGs' failure and success callbacks: one alert when a task fails for good, none twice, resolved on success."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from _common import on_failure, on_success
from alert_receivers import HttpReceiver
from crm_pipeline.load.warehouse import Warehouse


@pytest.fixture
def hook(monkeypatch, crm_env):
    r = HttpReceiver()
    monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", r.url + "/hook")
    yield r
    r.close()


def _context(exc):
    ti = SimpleNamespace(dag_id="crm_extract_shop", task_id="load_files", run_id="scheduled__2026-11-22")
    return {"task_instance": ti, "exception": exc, "logical_date": dt.datetime(2026, 11, 22, tzinfo=dt.UTC)}


def test_task_failure_alerts_once_and_success_resolves(crm_env, hook):
    err = ConnectionError("could not connect to server 13812345678@db\\nsecond line")
    on_failure(_context(err))
    on_failure(_context(err))  # the next run fails the same way: no second alert
    assert len(hook.requests) == 1
    body = hook.requests[0]["body"]
    assert body["status"] == "firing" and body["task_id"] == "load_files" and body["run_date"] == "2026-11-22"
    assert body["error"].startswith("ConnectionError: ") and "13812345678" not in body["error"]
    on_success(_context(None))
    assert [r["body"]["status"] for r in hook.requests] == ["firing", "resolved"]
    on_success(_context(None))  # nothing open: nothing sent
    assert len(hook.requests) == 2
    with Warehouse.from_url(crm_env["url"]) as wh:
        assert wh.fetchall("select status, times_seen from audit.alerts") == [("resolved", 2)]


def test_a_quality_gate_failure_is_not_alerted_twice(crm_env, hook):
    on_failure(_context(RuntimeError("quality gate: 1 critical check(s) failed (raw.orders.critical/...)")))
    assert hook.requests == []  # the failed check sent its own alert, with the details


def test_successes_read_the_open_alerts_once_per_process(crm_env, hook, monkeypatch):
    """`make run` runs every task in one process: 30 successes open the warehouse once, not 30 times; an
    alert another process opened before is still resolved, and so is one this process records."""
    import crm_pipeline.pipeline as pipeline
    from crm_pipeline.alerts import task_problem

    on_failure(_context(ConnectionError("down")))  # an earlier process's failure
    monkeypatch.setattr(pipeline, "_OPEN_TASK_ALERTS", {})  # a new process
    opened = []
    real = pipeline.Warehouse
    monkeypatch.setattr(pipeline, "Warehouse", lambda *a, **k: opened.append(1) or real(*a, **k))
    for n in range(30):
        ti = SimpleNamespace(dag_id="crm_transform", task_id=f"t{n}", run_id="r")
        on_success({"task_instance": ti, "exception": None})
    assert opened == [1]
    on_success(_context(None))  # load_files succeeds: its open alert resolves
    pipeline.record_task_alert(task_problem("crm_transform", "t3", "r", "2026-11-22", "boom"))
    on_success({"task_instance": SimpleNamespace(dag_id="crm_transform", task_id="t3", run_id="r"), "exception": None})
    assert [r["body"]["status"] for r in hook.requests] == ["firing", "resolved", "firing", "resolved"]
    assert len(opened) == 4  # the first success, the resolution, the failure, its resolution
