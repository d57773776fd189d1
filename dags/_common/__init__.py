"""Shared DAG wiring: default_args, assets, tags and the failure callback."""

from __future__ import annotations

import datetime as dt
import logging
import os

import pendulum
from airflow.sdk import Asset

TIMEZONE = os.environ.get("CRM_TIMEZONE", "Asia/Shanghai")
START_DATE = pendulum.datetime(2024, 1, 1, tz=TIMEZONE)
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
    """Log the failing task; alert channels are wired in here by the quality issue."""
    ti = context.get("task_instance")
    log.error(
        "task failed: dag=%s task=%s run=%s",
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        getattr(ti, "run_id", "?"),
    )


DEFAULT_ARGS = {
    "owner": "crm-data",
    "retries": int(os.environ.get("CRM_TASK_RETRIES", "2")),
    "retry_delay": dt.timedelta(seconds=int(os.environ.get("CRM_RETRY_DELAY_SECONDS", "300"))),
    "on_failure_callback": on_failure,
}


def daily_timetable():
    """Daily at local midnight; a run's logical date is the start of the day it covers."""
    from airflow.timetables.interval import CronDataIntervalTimetable

    return CronDataIntervalTimetable("0 0 * * *", timezone=TIMEZONE)
