"""The forum API path against a local HTTP server replaying recorded pages: 429, 500, malformed, incremental."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sources.discourse import (
    ForumApiClient,
    ForumApiConfig,
    ForumApiError,
    MalformedPageError,
    extract,
)
from forum_api_server import ScriptedApi

SH = ZoneInfo("Asia/Shanghai")
RUN = dt.date(2026, 11, 22)
POSTS, USERS = "/posts.json", "/admin/users/list/active.json"


def _client(api, sleeps, **kw):
    cfg = ForumApiConfig(api.url, api_key="k-123", api_username="system", backoff_seconds=0.5, **kw)
    return cfg, ForumApiClient(cfg, sleep=sleeps.append)


def _users(api):
    api.on(USERS, "page=1", (200, "users_200_page1.json", {}))
    api.on(USERS, "page=2", (200, "users_200_empty.json", {}))


def _full_history(api):
    """Posts 105..101 over two pages, then an empty page."""
    api.on(POSTS, "", (200, "posts_200_page1.json", {}))
    api.on(POSTS, "before=103", (200, "posts_200_page2.json", {}))
    api.on(POSTS, "before=101", (200, "posts_200_empty.json", {}))


def _state(wh):
    return (
        wh.fetchall("select post_id from raw.forum_posts order by post_id"),
        wh.fetchall("select watermark from audit.watermarks"),
    )


def test_pages_through_a_429_and_a_500(warehouse_url):
    sleeps: list[float] = []
    with ScriptedApi() as api, Warehouse.from_url(warehouse_url) as wh:
        _users(api)
        api.on(POSTS, "", (429, "429_rate_limited.json", {"Retry-After": "2"}), (200, "posts_200_page1.json", {}))
        api.on(POSTS, "before=103", (500, "500_internal_error.html", {}), (200, "posts_200_page2.json", {}))
        api.on(POSTS, "before=101", (200, "posts_200_empty.json", {}))
        cfg, client = _client(api, sleeps)
        users, posts = extract(wh, cfg, RUN, SH, client=client)

        assert sleeps == [2.0, 0.5]  # Retry-After honoured; first backoff step for the 500
        assert [(s, q) for _, q, s, _ in api.log if s != 200] == [(429, ""), (500, "before=103")]
        assert {key for *_, key in api.log} == {"k-123"}  # the API key is sent with every request
        assert (users.loaded_rows, posts.loaded_rows, posts.quarantined_rows) == (3, 5, 0)
        assert _state(wh) == ([("101",), ("102",), ("103",), ("104",), ("105",)], [(json.dumps({"max_id": 105}),)])
        row = wh.fetchone(
            "select topic_id, post_number, reply_to_post_number, like_count, content "
            "from raw.forum_posts where post_id = '104'"
        )
        assert row == ("2", 2, 1, 3, "post 104 内容 😀")

    # Thread structure: replies name a post number in their topic; staging resolves it to the post.
    from crm_pipeline.transform.dbt import run_dbt

    run_dbt(["run", "--select", "stg_forum__posts"], RUN, url=warehouse_url)
    with Warehouse.from_url(warehouse_url) as wh:
        replies = wh.fetchall("select post_id, reply_to_post_id from staging.stg_forum__posts order by post_id")
    assert replies == [("101", None), ("102", "101"), ("103", None), ("104", "103"), ("105", "103")]


def test_incremental_run_loads_only_new_and_edited_posts(tmp_path):
    sleeps: list[float] = []
    with ScriptedApi() as api, Warehouse.from_url(f"duckdb:///{tmp_path}/w.duckdb") as wh:
        _users(api)
        _full_history(api)
        cfg, client = _client(api, sleeps, refetch_ids=2)
        extract(wh, cfg, RUN, SH, client=client)

        # Next day: post 106 is new and 104 was edited; watermark 105 - 2 = 103 stops the walk.
        api.on(POSTS, "", (200, "posts_200_page1_after_edit.json", {}))
        users, posts = extract(wh, cfg, RUN, SH, client=client)
        assert (posts.extracted_rows, posts.loaded_rows, posts.reread_rows) == (2, 2, 1)
        assert (users.loaded_rows, users.reread_rows) == (0, 3)
        versions = wh.fetchall("select content from raw.forum_posts where post_id = '104' order by _loaded_at")
        assert [v[0] for v in versions] == ["post 104 内容 😀", "edited: 质量其实还行"]
        assert _state(wh)[1] == [(json.dumps({"max_id": 106}),)]

        # Watermark 106 - 2 = 104: posts 106 and 105 are read again and recognised.
        again = extract(wh, cfg, RUN, SH, client=client)[1]
        assert (again.loaded_rows, again.reread_rows) == (0, 2)


def test_a_malformed_page_mid_run_writes_nothing(tmp_path):
    with ScriptedApi() as api, Warehouse.from_url(f"duckdb:///{tmp_path}/w.duckdb") as wh:
        _users(api)
        api.on(POSTS, "", (200, "posts_200_page1.json", {}))
        api.on(POSTS, "before=103", (200, "200_malformed_page.html", {}))
        cfg, client = _client(api, [])
        with pytest.raises(MalformedPageError, match="not JSON"):
            extract(wh, cfg, RUN, SH, client=client)
        assert _state(wh) == ([], [])
        assert wh.fetchone("select count(*) from audit.load_batches")[0] == 0


def test_a_page_that_keeps_failing_raises_a_retryable_error_and_keeps_the_watermark(tmp_path):
    sleeps: list[float] = []
    with ScriptedApi() as api, Warehouse.from_url(f"duckdb:///{tmp_path}/w.duckdb") as wh:
        _users(api)
        _full_history(api)
        cfg, client = _client(api, sleeps, max_attempts=3)
        extract(wh, cfg, RUN, SH, client=client)
        before = _state(wh)

        api.on(POSTS, "", (503, "500_internal_error.html", {}))
        with pytest.raises(ForumApiError, match="still failing after 3 attempts \\(HTTP 503\\)"):
            extract(wh, cfg, RUN, SH, client=client)
        assert sleeps == [0.5, 1.0]  # exponential backoff between the three attempts
        assert _state(wh) == before


def _latest(wh, entity: str, key: str) -> list[tuple]:
    """Each key's latest loaded version (staging's order), as text, independent of the loader's own query."""
    cols = [c for c in wh.columns("raw", entity) if not c.startswith("_")]
    rows = wh.fetchall(
        f"select {', '.join(cols)} from (select *, row_number() over (partition by {key} "
        "order by _loaded_at desc, coalesce(_line_no, 0) desc, _row_hash desc) as n "
        f"from raw.{entity}) as v where n = 1"
    )
    return sorted(tuple(str(v) for v in r) for r in rows)


def test_quiet_days_a_change_and_quiet_days_again_lose_nothing(warehouse_url, tmp_path):
    """Issue 21: a second run over an unchanged user list left raw.forum_users empty (the batch id came
    from the content, so the quiet run deleted the batch, then skipped every row as re-read)."""
    with ScriptedApi() as api, Warehouse.from_url(warehouse_url) as wh:
        cfg, client = _client(api, [], refetch_ids=2)
        _users(api)
        _full_history(api)
        entities = (("forum_users", "user_id"), ("forum_posts", "post_id"))
        kept: dict[str, set] = {"forum_users": set(), "forum_posts": set()}
        for day in range(1, 7):
            if day == 4:  # a user renamed, a user joined, a post edited and a post written
                api.on(USERS, "page=1", (200, "users_200_page1_after_change.json", {}))
                api.on(POSTS, "", (200, "posts_200_page1_after_edit.json", {}))
            extract(wh, cfg, RUN + dt.timedelta(days=day), SH, client=client)
            with Warehouse.from_url(f"duckdb:///{tmp_path}/oneshot{day}.duckdb") as fresh:
                extract(fresh, cfg, RUN + dt.timedelta(days=day), SH, client=client)
                expected = {e: _latest(fresh, e, k) for e, k in entities}
            for entity, key in entities:
                hashes = {h for (h,) in wh.fetchall(f"select _row_hash from raw.{entity}")}
                assert kept[entity] <= hashes, f"day {day}: {entity} lost rows"
                kept[entity] = hashes
                assert _latest(wh, entity, key) == expected[entity], f"day {day}: {entity}"
        users = dict(wh.fetchall("select user_id, count(*) from raw.forum_users group by user_id"))
        # Three users loaded once, fan1 twice (renamed), fan3 once; every quiet day loaded nothing.
        assert users == {"10": 1, "11": 2, "12": 1, "13": 1}, users
        loaded = wh.fetchall(
            "select run_date, loaded_rows from audit.load_batches where entity = 'forum_users' order by run_date"
        )
        assert [n for _, n in loaded] == [3, 0, 0, 2, 0, 0], loaded
