"""Shared DAG wiring: default_args, assets, tags and the failure callback."""

from __future__ import annotations

import datetime as dt
import logging

import pendulum
from airflow.sdk import Asset

from crm_pipeline.config import settings

SETTINGS = settings()  # read when the DAG files are parsed
TIMEZONE = SETTINGS.timezone
# The earliest as-of day a run may have: Airflow runs no task for a logical date before a DAG's
# start_date, so it is far back (brands keep years of history). catchup=False: the scheduler
# never fills the years between on its own; `make backfill` runs the days asked for.
START_DATE = pendulum.datetime(*SETTINGS.earliest_date.timetuple()[:3], tz=TIMEZONE)
TAGS = ["crm"]

# One asset per source system's raw tables; the transform DAG waits on them.
RAW_SHOP = Asset("crm://raw/shop")
RAW_FORUM = Asset("crm://raw/forum")
RAW_CHAT = Asset("crm://raw/chat")
RAW_EVENTS = Asset("crm://raw/events")
RAW_ASSETS = [RAW_SHOP, RAW_FORUM, RAW_CHAT, RAW_EVENTS]
MARTS = Asset("crm://marts")

log = logging.getLogger("crm_pipeline.dags")


def on_failure(context) -> None:
    """A task failed for good (retries exhausted or not retryable): one alert, unless a check already sent one."""
    ti = context.get("task_instance")
    dag_id, task_id, run_id = (getattr(ti, k, "?") for k in ("dag_id", "task_id", "run_id"))
    exc = context.get("exception")
    log.error("task failed: dag=%s task=%s run=%s", dag_id, task_id, run_id)
    if str(exc).startswith("quality gate:"):
        return  # the failed check has alerted, with the check's details
    try:
        from crm_pipeline.alerts import task_problem
        from crm_pipeline.pipeline import record_task_alert

        logical = context.get("logical_date")
        # The exception's class and first line only: a message could quote data.
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if exc else "unknown"
        record_task_alert(task_problem(dag_id, task_id, run_id, logical and logical.date().isoformat(), error))
    except Exception:  # alerting must never mask the task's own failure
        log.exception("could not send the task-failure alert")


def on_success(context) -> None:
    """Resolve an open task-failure alert once the task succeeds again."""
    ti = context.get("task_instance")
    try:
        from crm_pipeline.pipeline import resolve_task_alert

        resolve_task_alert(getattr(ti, "dag_id", "?"), getattr(ti, "task_id", "?"))
    except Exception:
        log.exception("could not resolve the task alert")


DEFAULT_ARGS = {
    "owner": "crm-data",
    "retries": SETTINGS.task_retries,
    "retry_delay": dt.timedelta(seconds=SETTINGS.retry_delay_seconds),
    "on_failure_callback": on_failure,
    "on_success_callback": on_success,
}


def daily_timetable():
    """Daily at local midnight; a run's logical date is the start of the day it covers.

    CRM_EXTRACT_SCHEDULE=manual: no schedule, the extracts run only when triggered (by an outside
    orchestrator, or a test that must not get the run Airflow creates on unpause).
    """
    from airflow.timetables.interval import CronDataIntervalTimetable

    if settings().extract_schedule == "manual":
        return None
    return CronDataIntervalTimetable("0 0 * * *", timezone=TIMEZONE)
