"""Late, out-of-order, edited and deleted forum posts across two deliveries, on both engines."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from crm_pipeline.load.loader import ensure_tables, load_landing
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.transform.dbt import run_dbt

pytestmark = pytest.mark.e2e
D, D1 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)


def _post(post_id, created, content, updated=None, deleted=False):
    return {
        "post_id": post_id,
        "topic_id": "t1",
        "user_id": "u1",
        "created_at": created,
        "content": content,
        "updated_at": updated or created,
        "is_deleted": deleted,
    }


DELIVERY_D = [_post("p1", "2026-11-20 10:00:00", "first text"), _post("p2", "2026-11-20 11:00:00", "to be deleted")]
DELIVERY_D1 = [
    _post("p3", "2026-11-20 23:30:00", "late: written on D, delivered with D+1"),
    _post("p4", "2026-11-21 09:00:00", "written on D+1"),
    _post("p0", "2026-11-17 08:00:00", "out of order: three days old"),
    _post("p1", "2026-11-20 10:00:00", "edited text", updated="2026-11-21 08:00:00"),
    _post("p2", "2026-11-20 11:00:00", "to be deleted", updated="2026-11-21 08:30:00", deleted=True),
]


def _write(folder, name, rows):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _staged(url, as_of):
    run_dbt(["run", "--select", "stg_forum__posts"], as_of, url=url)
    with Warehouse.from_url(url) as wh:
        return wh.fetchall("select post_id, post_text, is_deleted from staging.stg_forum__posts order by post_id")


def test_late_edited_and_deleted_posts_count_on_their_own_day_exactly_once(crm_env):
    landing, url, tz = crm_env["landing"], crm_env["url"], crm_env["tz"]
    folder = landing / "forum_posts"
    _write(folder, "posts_d.jsonl", DELIVERY_D)
    with Warehouse.from_url(url) as wh:
        ensure_tables(wh)
        load_landing(wh, "forum_posts", landing, D, tz)
    assert _staged(url, D) == [("p1", "first text", False), ("p2", "to be deleted", False)]

    _write(folder, "posts_d1.jsonl", DELIVERY_D1)
    with Warehouse.from_url(url) as wh:
        results = load_landing(wh, "forum_posts", landing, D1, tz)
        assert [(r.source, r.skipped) for r in results] == [
            ("forum_posts/posts_d.jsonl", True),
            ("forum_posts/posts_d1.jsonl", False),
        ]
        assert load_landing(wh, "forum_posts", landing, D1, tz)[1].skipped  # D+1 rerun: nothing new
        assert wh.fetchone("select count(*) from raw.forum_posts")[0] == 7

    # Day D rebuilt after D+1's delivery: the late post and the old one count, once;
    # the edit and the deletion happened on D+1, so D still sees the first versions.
    assert _staged(url, D) == [
        ("p0", "out of order: three days old", False),
        ("p1", "first text", False),
        ("p2", "to be deleted", False),
        ("p3", "late: written on D, delivered with D+1", False),
    ]
    expected_d1 = [
        ("p0", "out of order: three days old", False),
        ("p1", "edited text", False),
        ("p2", "to be deleted", True),
        ("p3", "late: written on D, delivered with D+1", False),
        ("p4", "written on D+1", False),
    ]
    assert _staged(url, D1) == expected_d1
    assert _staged(url, D1) == expected_d1  # rerun of D+1: unchanged
