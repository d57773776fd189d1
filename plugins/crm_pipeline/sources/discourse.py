"""Forum users and posts from a Discourse-compatible HTTP API, paged and incremental.

Posts: `GET /posts.json[?before=<id>]` returns `latest_posts`, newest first;
pages walk down by id until they reach the stored watermark id minus a
lookback of ids (so recent edits and deletions are seen again). Users:
`GET /admin/users/list/active.json?page=N&show_emails=true` until an empty
page. Rows already loaded are recognised by their row hash and not loaded
twice; an edited or deleted post differs, so it lands as a new version.

A 429 waits for Retry-After and a 5xx or connection error backs off and
retries, up to `max_attempts`; a page that still fails raises
`ForumApiError` (Airflow retries the task), a page of the wrong shape raises
`MalformedPageError` (a data problem). Either way nothing is written and the
watermark stays where it was.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from crm_pipeline.config import settings
from crm_pipeline.load.loader import BatchResult, ensure_tables, load_extract, read_watermark
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sources.files import RawRecord

log = logging.getLogger(__name__)


class ForumApiError(RuntimeError):
    """The API kept failing (network, 429, 5xx) after every retry: transient, retry the task."""


class MalformedPageError(ValueError):
    """A page arrived but is not what the API promises: a data problem, do not retry."""


@dataclass
class ForumApiConfig:
    base_url: str
    api_key: str = ""
    api_username: str = "system"
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 60.0
    timeout_seconds: float = 30.0
    refetch_ids: int = 200  # ids below the watermark read again, to catch edits and deletions


def config_from_connection(conn_id: str = "crm_forum_api") -> ForumApiConfig | None:
    """The Airflow connection (host = base URL, login = API username, password = API key), if defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:  # no connection defined: this brand has no forum API
        return None
    host = conn.host or ""
    if conn.schema and "://" not in host:
        host = f"{conn.schema}://{host}"
    elif "://" not in host:
        host = f"https://{host}"
    if conn.port:
        host = f"{host.rstrip('/')}:{conn.port}"
    extra = conn.extra_dejson or {}
    return ForumApiConfig(
        base_url=host.rstrip("/"),
        api_key=conn.password or "",
        api_username=conn.login or "system",
        max_attempts=int(extra.get("max_attempts", 5)),
        backoff_seconds=float(extra.get("backoff_seconds", 1.0)),
        refetch_ids=int(extra.get("refetch_ids", 200)),
    )


class ForumApiClient:
    def __init__(self, cfg: ForumApiConfig, sleep=time.sleep):
        import requests

        self.cfg = cfg
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers.update(
            {"Api-Key": cfg.api_key, "Api-Username": cfg.api_username, "Accept": "application/json"}
        )
        self.requests_made = 0

    def get_json(self, path: str, params: dict | None = None):
        import requests

        url = f"{self.cfg.base_url}{path}"
        last = "no attempt made"
        for attempt in range(1, self.cfg.max_attempts + 1):
            self.requests_made += 1
            try:
                resp = self.session.get(url, params=params, timeout=self.cfg.timeout_seconds)
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}"
                wait = self.cfg.backoff_seconds * 2 ** (attempt - 1)
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError as exc:
                        raise MalformedPageError(f"{path} {params or ''}: response is not JSON") from exc
                last = f"HTTP {resp.status_code}"
                if resp.status_code == 429:
                    wait = _retry_after(resp.headers.get("Retry-After"), self.cfg.backoff_seconds)
                elif resp.status_code >= 500:
                    wait = self.cfg.backoff_seconds * 2 ** (attempt - 1)
                else:
                    raise ForumApiError(f"{path} {params or ''}: {last}")
            if attempt < self.cfg.max_attempts:
                wait = min(wait, self.cfg.max_wait_seconds)
                log.warning("forum API %s %s: %s, retry %d in %.1fs", path, params or "", last, attempt, wait)
                self.sleep(wait)
        raise ForumApiError(f"{path} {params or ''}: still failing after {self.cfg.max_attempts} attempts ({last})")


def _retry_after(header: str | None, default: float) -> float:
    try:
        return max(0.0, float(header))
    except (TypeError, ValueError):
        return default


def _post_record(post: dict) -> dict:
    if not isinstance(post, dict) or "id" not in post or "topic_id" not in post:
        raise MalformedPageError(f"a post without id/topic_id: {str(post)[:200]}")
    likes = post.get("like_count")
    if likes is None:
        likes = next((a.get("count", 0) for a in post.get("actions_summary") or [] if a.get("id") == 2), 0)
    return {
        "post_id": str(post["id"]),
        "topic_id": str(post["topic_id"]),
        "user_id": str(post["user_id"]) if post.get("user_id") is not None else None,
        "created_at": post.get("created_at"),
        "content": post.get("raw") if post.get("raw") is not None else post.get("cooked"),
        "category": str(post["category_id"]) if post.get("category_id") is not None else None,
        "title": post.get("topic_title"),
        "like_count": likes,
        "updated_at": post.get("updated_at"),
        "is_deleted": bool(post.get("deleted_at")),
        "post_number": post.get("post_number"),
        "reply_to_post_number": post.get("reply_to_post_number"),
    }


def _user_record(user: dict) -> dict:
    if not isinstance(user, dict) or "id" not in user:
        raise MalformedPageError(f"a user without id: {str(user)[:200]}")
    return {
        "user_id": str(user["id"]),
        "joined_at": user.get("created_at"),
        "username": user.get("username"),
        "email": user.get("email"),
    }


def fetch_posts(client: ForumApiClient, since_id: int) -> list[dict]:
    """Every post with id > since_id, newest first, walking pages down by id."""
    posts: list[dict] = []
    before = None
    while True:
        page = client.get_json("/posts.json", {"before": before} if before else None)
        if not isinstance(page, dict) or not isinstance(page.get("latest_posts"), list):
            raise MalformedPageError(f"/posts.json before={before}: no 'latest_posts' list")
        items = page["latest_posts"]
        if not items:
            return posts
        ids = []
        for post in items:
            rec = _post_record(post)
            ids.append(int(post["id"]))
            if int(post["id"]) > since_id:
                posts.append(rec)
        lowest = min(ids)
        if lowest <= since_id + 1 or (before is not None and lowest >= before):
            return posts
        before = lowest


def fetch_users(client: ForumApiClient) -> list[dict]:
    users: list[dict] = []
    page_no = 1
    while True:
        page = client.get_json("/admin/users/list/active.json", {"page": page_no, "show_emails": "true"})
        if not isinstance(page, list):
            raise MalformedPageError(f"/admin/users/list/active.json page={page_no}: not a list")
        if not page:
            return users
        users.extend(_user_record(u) for u in page)
        page_no += 1


def source_label(cfg: ForumApiConfig) -> str:
    return f"api:{urlparse(cfg.base_url).netloc}"


def extract(wh: Warehouse, cfg: ForumApiConfig, run_date: dt.date, tz: ZoneInfo, client=None) -> list[BatchResult]:
    """Users, then posts, each one batch; the posts watermark moves only with a committed batch."""
    client = client or ForumApiClient(cfg)
    ensure_tables(wh, ["forum_users", "forum_posts"])
    source = source_label(cfg)
    stored = read_watermark(wh, "forum_posts", source)
    last_id = int(json.loads(stored)["max_id"]) if stored else 0
    since_id = max(0, last_id - cfg.refetch_ids) if last_id else 0
    # Fetch everything before writing anything: a page that fails leaves no partial batch.
    users = fetch_users(client)
    posts = fetch_posts(client, since_id)
    results = []
    for entity, rows, watermark, note in (
        ("forum_users", users, None, f"{len(users)} users listed"),
        (
            "forum_posts",
            posts,
            json.dumps({"max_id": max([int(p["post_id"]) for p in posts] + [last_id])}),
            f"since id {since_id}",
        ),
    ):
        records = [RawRecord(None, r, json.dumps(r, ensure_ascii=False, default=str)) for r in rows]
        results.append(load_extract(wh, entity, source, records, watermark, run_date, tz, note=note))
    log.info("forum API: %d requests", client.requests_made)
    return results


def env_config() -> ForumApiConfig | None:
    """CRM_FORUM_API_URL (+ _KEY, _USERNAME) for runs outside Airflow connections."""
    cfg = settings()
    if not cfg.forum_api_url:
        return None
    return ForumApiConfig(cfg.forum_api_url.rstrip("/"), cfg.forum_api_key, cfg.forum_api_username)
