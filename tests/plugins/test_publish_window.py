"""One publish per as-of day (crm_pipeline.publish_window): who the build waits for, and when it is skipped.

The scheduler runs it in tests/e2e/test_celery_scale_out.py; these cover every rule on both engines.
"""

from __future__ import annotations

import datetime as dt

import pytest

from crm_pipeline import publish_window as pw
from crm_pipeline.load.loader import ensure_tables
from crm_pipeline.load.warehouse import Warehouse

D = dt.date(2026, 11, 22)
UTC = dt.UTC


@pytest.fixture
def wh(warehouse_url, monkeypatch):
    monkeypatch.delenv("CRM_PUBLISH_SOURCES", raising=False)
    monkeypatch.delenv("CRM_PUBLISH_CUTOFF", raising=False)
    monkeypatch.delenv("CRM_DBT_FULL_REFRESH", raising=False)
    with Warehouse.from_url(warehouse_url) as w:
        ensure_tables(w, [])
        yield w


def test_the_cut_off_is_local_time_the_day_after(monkeypatch):
    assert pw.cutoff(D, "Asia/Shanghai") == dt.datetime(2026, 11, 22, 22, 0, tzinfo=UTC)  # 06:00 +08:00 on the 23rd
    monkeypatch.setenv("CRM_PUBLISH_CUTOFF", "02:30")
    assert pw.cutoff(D, "America/Sao_Paulo") == dt.datetime(2026, 11, 23, 5, 30, tzinfo=UTC)


def test_the_build_waits_for_the_sources_seen_lately_until_the_cut_off(wh, monkeypatch):
    before = dt.datetime(2026, 11, 22, 18, 0, tzinfo=UTC)  # 02:00 on the 23rd, Shanghai: before the cut-off
    for dag in ("crm_extract_shop", "crm_extract_chat"):  # both reported three days ago
        pw.record_source_run(wh, D - dt.timedelta(days=3), dag, "r0", "passed")
    pw.record_source_run(wh, D, "crm_extract_shop", "r1", "passed")
    ready, why = pw.sources_ready(wh, D, "Asia/Shanghai", now=before)
    assert not ready and why.startswith("waiting for crm_extract_chat until 2026-11-22T22:00:00+00:00"), why
    # Past the cut-off the build goes ahead without the missing source, and says so.
    ready, why = pw.sources_ready(wh, D, "Asia/Shanghai", now=before + dt.timedelta(hours=4))
    assert ready and "building without crm_extract_chat" in why
    # A held batch is a source that had its chance: it counts as reported.
    pw.record_source_run(wh, D, "crm_extract_chat", "r2", "held")
    assert pw.sources_ready(wh, D, "Asia/Shanghai", now=before)[0]
    # A source last seen 15 days ago is no longer expected; a configured list overrides history.
    pw.record_source_run(wh, D - dt.timedelta(days=15), "crm_extract_forum", "r3", "passed")
    assert pw.expected_sources(wh, D) == {"crm_extract_shop", "crm_extract_chat"}
    monkeypatch.setenv("CRM_PUBLISH_SOURCES", "crm_extract_shop,crm_extract_events")
    ready, why = pw.sources_ready(wh, D, "Asia/Shanghai", now=before)
    assert not ready and "crm_extract_events" in why


def _publish(wh, day, at, code=None):
    wh.execute(
        "insert into audit.publishes (as_of_date, run_id, mart, row_count, content_md5, published_at, code_hash) "
        "values (%s, 'r', 'dim_customers', 1, 'x', %s, %s)",
        (day, at, code or pw.project_hash()),
    )


def _batch(wh, at):
    wh.execute(
        "insert into audit.load_batches (batch_id, entity, source, loaded_at, run_date) "
        "values ('b', 'orders', 's', %s, %s)",
        (at, D),
    )


def test_a_publish_is_skipped_only_when_the_marts_hold_the_day_and_nothing_arrived(wh, monkeypatch):
    t = dt.datetime(2026, 11, 23, 1, 0)
    assert pw.needs_publish(wh, D) == (True, "nothing published yet")
    _batch(wh, t - dt.timedelta(minutes=5))
    _publish(wh, D, t)
    assert pw.needs_publish(wh, D) == (False, f"the marts already hold {D}'s publish and nothing arrived since")
    # Another day is in the marts now (a backfill published it): this day must publish again.
    assert pw.needs_publish(wh, D + dt.timedelta(days=1))[0]
    # A late batch re-publishes the day.
    _batch(wh, t + dt.timedelta(minutes=1))
    assert pw.needs_publish(wh, D) == (True, f"a batch was loaded since the last publish of {D}")
    _publish(wh, D, t + dt.timedelta(minutes=2))
    assert not pw.needs_publish(wh, D)[0]
    # New code, or a forced refresh, publishes too.
    _publish(wh, D, t + dt.timedelta(minutes=3), code="old")
    assert pw.needs_publish(wh, D)[1] == "the dbt project or the quality suites changed since the last publish"
    _publish(wh, D, t + dt.timedelta(minutes=4))
    monkeypatch.setenv("CRM_DBT_FULL_REFRESH", "1")
    assert pw.needs_publish(wh, D)[0]
