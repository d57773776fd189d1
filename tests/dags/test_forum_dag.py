"""crm_extract_forum through dag.test(): a malformed API page is not retried, a failing API is."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import REPO
from crm_pipeline.load.warehouse import Warehouse
from forum_api_server import ScriptedApi

POSTS, USERS = "/posts.json", "/admin/users/list/active.json"


def _run_forum_dag(monkeypatch, api_url):
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRM_FORUM_API",
        json.dumps(
            {
                "conn_type": "http",
                "host": api_url,
                "login": "system",
                "password": "k",
                "extra": {"max_attempts": 2, "backoff_seconds": 0},
            }
        ),
    )
    monkeypatch.setenv("CRM_TASK_RETRIES", "1")
    monkeypatch.setenv("CRM_RETRY_DELAY_SECONDS", "1")
    from crm_pipeline.run import run_dags

    return run_dags(dt.date(2026, 11, 22), ["crm_extract_forum"])


@pytest.fixture
def forum_api():
    with ScriptedApi() as api:
        api.on(USERS, "page=1", (200, "users_200_page1.json", {}))
        api.on(USERS, "page=2", (200, "users_200_empty.json", {}))
        api.on(POSTS, "", (200, "posts_200_page1.json", {}))
        yield api


def _post_requests(api):
    return sum(1 for path, *_ in api.log if path == POSTS)


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
def test_a_malformed_page_fails_the_task_once(crm_env, airflow_db, monkeypatch, forum_api):
    forum_api.on(POSTS, "before=103", (200, "200_malformed_page.html", {}))
    [(dag_id, state, failed)] = _run_forum_dag(monkeypatch, forum_api.url)
    assert (dag_id, state, failed) == ("crm_extract_forum", "failed", ["extract_api"])
    # One attempt of the task: page 1, then the malformed page; no Airflow retry.
    assert _post_requests(forum_api) == 2
    with Warehouse.from_url(crm_env["url"]) as wh:
        assert wh.fetchall("select * from audit.watermarks") == []


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
def test_a_failing_api_is_retried_by_airflow(crm_env, airflow_db, monkeypatch, forum_api):
    forum_api.on(POSTS, "before=103", (500, "500_internal_error.html", {}))
    [(_, state, failed)] = _run_forum_dag(monkeypatch, forum_api.url)
    assert (state, failed) == ("failed", ["extract_api"])
    # Two task tries (retries=1), each: page 1 + two attempts at the failing page.
    assert _post_requests(forum_api) == 2 * (1 + 2)
