"""crm_extract_forum run by Airflow (dag.test in a fresh process): a malformed page is not retried, a failing API is."""

from __future__ import annotations

import json

import pytest

from crm_pipeline.load.warehouse import Warehouse
from e2e.helpers import pipeline_env, run_main
from forum_api_server import ScriptedApi

POSTS, USERS = "/posts.json", "/admin/users/list/active.json"
pytestmark = pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)


def _run_forum_dag(crm_env, airflow_db, api_url):
    env = pipeline_env(crm_env, airflow_db)
    env.update(
        AIRFLOW_CONN_CRM_FORUM_API=json.dumps(
            {
                "conn_type": "http",
                "host": api_url,
                "login": "system",
                "password": "k",
                "extra": {"max_attempts": 2, "backoff_seconds": 0},
            }
        ),
        CRM_TASK_RETRIES="1",
        CRM_RETRY_DELAY_SECONDS="1",
    )
    (crm_env["landing"] / "forum_posts").mkdir(exist_ok=True)  # not empty: no sample generated
    (crm_env["landing"] / "forum_posts" / "none.jsonl").write_text("")
    return run_main(env, None, ["--dags", "crm_extract_forum"])


@pytest.fixture
def forum_api():
    with ScriptedApi() as api:
        api.on(USERS, "page=1", (200, "users_200_page1.json", {}))
        api.on(USERS, "page=2", (200, "users_200_empty.json", {}))
        api.on(POSTS, "", (200, "posts_200_page1.json", {}))
        yield api


def _post_requests(api):
    return sum(1 for path, *_ in api.log if path == POSTS)


def test_a_malformed_page_fails_the_task_once(crm_env, airflow_db, forum_api):
    forum_api.on(POSTS, "before=103", (200, "200_malformed_page.html", {}))
    proc = _run_forum_dag(crm_env, airflow_db, forum_api.url)
    assert proc.returncode == 1
    assert "DAG crm_extract_forum: failed (failed tasks: extract_api)" in proc.stdout
    # One attempt of the task: page 1, then the malformed page; no Airflow retry.
    assert _post_requests(forum_api) == 2
    with Warehouse.from_url(crm_env["url"]) as wh:
        assert wh.fetchall("select * from audit.watermarks") == []


def test_a_failing_api_is_retried_by_airflow(crm_env, airflow_db, forum_api):
    forum_api.on(POSTS, "before=103", (500, "500_internal_error.html", {}))
    proc = _run_forum_dag(crm_env, airflow_db, forum_api.url)
    assert "DAG crm_extract_forum: failed (failed tasks: extract_api)" in proc.stdout
    # Two task tries (retries=1), each: page 1 + two attempts at the failing page.
    assert _post_requests(forum_api) == 2 * (1 + 2)
