"""Incremental builds equal full refreshes (issue: benchmark and incremental processing).

Two warehouses load the same landing files, day after day: A builds the way
the pipeline does (incremental whenever crm_pipeline.transform.incremental
finds it exact, every data test run), B does a full refresh of the models
every day after the first (no tests: it is the yardstick; on the first day
A's build is a full refresh itself, so B only loads). After each of five
incremental days, every mart in marts_build and every incremental staging
table must have the same content in A and B (count and order-independent
digest). The days carry what makes incremental processing hard: updated
records, late records (one older than the version already chosen), soft
deletions, recalls (one before its message arrives), a reply before its
parent post, versions stamped for a later day, a complaint edited out of and
back into a safety keyword, and a deletion request, which hard-deletes raw
rows and must turn the next build into a full refresh.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from conftest import PARSE_CACHE, SECRET, pg_database
from crm_pipeline.bench import write_delta
from crm_pipeline.load.specs import SPECS
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.quality.gate import BUILD_SCHEMA, MARTS, content_md5
from crm_pipeline.sample.generate import generate
from crm_pipeline.sources.files import read_records

pytestmark = pytest.mark.e2e
D0 = dt.date(2026, 11, 18)
DAYS = [D0 + dt.timedelta(days=k) for k in range(6)]
STAGING = [
    "stg_shop__customers",
    "stg_shop__orders",
    "stg_shop__order_items",
    "stg_shop__reviews",
    "stg_shop__refunds",
    "stg_forum__users",
    "stg_forum__posts",
    "stg_chat__messages",
    "stg_scoring__text_scores",
    "stg_events__attendance",
]
INTERMEDIATE = [
    "int_feedback__touchpoints",
    "int_feedback__catalogue",
    "int_feedback__keyword_hits",
    "int_engagement__activities_by_account",
]
# When a row was built or scored differs between two warehouses built at different times.
NOT_CONTENT = {"_built_at", "scored_at"}
NEW_PRODUCT = "极光手表 Z9"


def _records(landing: Path, entity: str) -> list[dict]:
    out = []
    for path in sorted((landing / entity).glob("*")):
        if path.is_file():
            out += [r.record for r in read_records(path)[2] if r.record]
    return out


def _write(landing: Path, entity: str, name: str, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with (landing / entity / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _ts(day: dt.date, hh: int) -> str:
    return f"{day} {hh:02d}:00:00"


def write_day(landing: Path, k: int) -> None:
    """Day k's new files (k = 1..5): see the module docstring."""
    day = DAYS[k]
    write_delta(landing, day, share=0.05)  # updated, new and late orders; new chat and posts; post edits
    customers, orders = _records(landing, "customers"), _records(landing, "orders")
    posts = [p for p in _records(landing, "forum_posts") if not p["post_id"].startswith(("DP", "XP"))]
    chat = [m for m in _records(landing, "chat_messages") if m.get("msg_type") == "text"]
    if k == 1:  # a chat reply to a message recalled tomorrow: a reply received today, none from day 2
        other = next(m for m in chat if m["sender_id"] != chat[40]["sender_id"])
        reply = {**other, "msg_id": "XRE1", "sent_at": _ts(day, 6), "reply_to_msg_id": chat[40]["msg_id"]}
        _write(landing, "chat_messages", f"reply_{day}", [reply])
    if k == 2:  # a post names a product no order has yet
        author = posts[9]
        post = {**author, "post_id": "XCAT", "topic_id": "XCT", "created_at": _ts(day, 7), "updated_at": "",
                "reply_to_post_id": "", "post_number": "1", "reply_to_post_number": "", "is_deleted": "false",
                "content": f"{NEW_PRODUCT} 什么时候上市"}  # fmt: skip
        _write(landing, "forum_posts", f"catalogue_{day}", [post])
    if k in (2, 3, 5):  # a complaint about fire, edited into one without (day 3) and back (day 5)
        text = {2: "充电器充电时起火了，太可怕了，质量太差", 3: "充电器坏了，质量太差，很失望",
                5: "充电器又起火了，太可怕了，质量太差"}[k]  # fmt: skip
        template = min(posts, key=lambda p: p["post_id"])  # the same author every day, not staff
        merging = _merging_user(landing)["user_id"]  # read once, not for every user tried
        author = next(u["user_id"] for u in sorted(_records(landing, "forum_users"), key=lambda u: u["user_id"])
                      if not any(w in u.get("username", "") for w in ("admin", "moderator", "system"))
                      and u["user_id"] != merging)  # fmt: skip
        post = {**template, "user_id": author, "post_id": "XFIRE", "topic_id": "XFT", "created_at": _ts(DAYS[2], 6),
                "updated_at": "" if k == 2 else _ts(day, 6), "reply_to_post_id": "", "post_number": "1",
                "reply_to_post_number": "", "is_deleted": "false", "content": text}  # fmt: skip
        _write(landing, "forum_posts", f"fire_{day}", [post])
    if k == 3:  # the product enters the catalogue
        items = _records(landing, "order_items")
        _write(landing, "order_items", f"new_product_{day}",
               [{**items[0], "line_no": "99", "product_id": "XZ9", "product_name": NEW_PRODUCT}])  # fmt: skip
    if k == 2:  # a forum account gives a customer's email (one person from now on)
        user = _merging_user(landing)
        _write(landing, "forum_users", f"merge_{day}", [{**user, "email": _merging_customer(landing)["email"]}])
    if k in (1, 3):  # a customer moves
        c = customers[k * 7]
        _write(landing, "customers", f"move_{day}", [{**c, "city": f"Moved{k}", "updated_at": _ts(day, 9)}])
    if k == 1:  # events: one today, one dated day 3, landed now (visible only from day 3)
        _write(
            landing,
            "events",
            f"events_{day}",
            [
                {"event_id": "XE1", "event_date": str(day), "city": "Shanghai",
                 "attendee_ref": customers[3]["customer_id"], "status": "attended", "event_name": "salon"},
                {"event_id": "XE3", "event_date": str(DAYS[3]), "city": "Shanghai",
                 "attendee_ref": customers[4]["customer_id"], "status": "attended", "event_name": "salon"},
            ],
        )  # fmt: skip
    if k == 2:
        # Soft deletions, cancellations, and a late version older than day 1's update of the same order.
        gone = [{**p, "is_deleted": "true", "updated_at": _ts(day, 10)} for p in posts[5:8]]
        _write(landing, "forum_posts", f"deleted_{day}", gone)
        updated_day1 = [o for o in _records(landing, "orders") if o.get("updated_at") == f"{DAYS[1]} 12:00:00"]
        cancelled = [{**o, "status": "cancelled", "updated_at": _ts(day, 11)} for o in orders[20:23]]
        stale = [{**o, "status": "created", "updated_at": _ts(DAYS[0], 1)} for o in updated_day1[:2]]
        future = [{**orders[30], "status": "refunded", "updated_at": _ts(DAYS[3], 12)}]  # visible from day 3
        _write(landing, "orders", f"changes_{day}", cancelled + stale + future)
        # Recalls: two of older messages, one of a message that lands only tomorrow.
        recalls = [
            {**m, "msg_id": f"XR{day:%d}{i}", "msg_type": "system", "content": "recalled", "sent_at": _ts(day, 13),
             "action": "recall", "recalled_msg_id": target, "reply_to_msg_id": ""}
            for i, (m, target) in enumerate(
                [(chat[40], chat[40]["msg_id"]), (chat[41], chat[41]["msg_id"]), (chat[42], "XLATE1")]
            )
        ]  # fmt: skip
        _write(landing, "chat_messages", f"recalls_{day}", recalls)
        # A reply to post number 900 of a topic, before that post exists.
        reply = {**posts[0], "post_id": "XP2", "topic_id": "XT", "created_at": _ts(day, 14), "updated_at": "",
                 "reply_to_post_id": "", "post_number": "901", "reply_to_post_number": "900",
                 "is_deleted": "false"}  # fmt: skip
        _write(landing, "forum_posts", f"reply_{day}", [reply])
    if k == 3:
        # Yesterday's missing pieces arrive late: the parent post and the recalled message.
        parent = {**posts[1], "post_id": "XP1", "topic_id": "XT", "created_at": _ts(DAYS[2], 8), "updated_at": "",
                  "reply_to_post_id": "", "post_number": "900", "reply_to_post_number": "",
                  "is_deleted": "false"}  # fmt: skip
        _write(landing, "forum_posts", f"parent_{day}", [parent])
        late = {**chat[43], "msg_id": "XLATE1", "sent_at": _ts(DAYS[2], 8), "reply_to_msg_id": ""}
        _write(landing, "chat_messages", f"late_{day}", [late])
    if k == 4:  # a person asks to be erased: raw rows are deleted, so the next build must be a full refresh
        victim = next(c for c in customers if c.get("phone"))
        _write(
            landing,
            "deletion_requests",
            f"requests_{day}",
            [{"request_id": "XDEL1", "requested_at": _ts(day, 8), "customer_id": victim["customer_id"]}],
        )


def _merging_customer(landing: Path) -> dict:
    emails = [c.get("email") for c in _records(landing, "customers")]
    return next(c for c in _records(landing, "customers") if c.get("email") and emails.count(c["email"]) == 1)


def _merging_user(landing: Path) -> dict:
    """A forum user with posts and none of the keys that could link them to anyone already."""
    authors = {p["user_id"] for p in _records(landing, "forum_posts")}
    return next(
        u
        for u in _records(landing, "forum_users")
        if u["user_id"] in authors and not any(u.get(k) for k in ("member_id", "phone", "email", "wechat_unionid"))
    )


def run_day(
    monkeypatch, env: dict, day: dt.date, full_refresh: bool, score: bool = True, build: bool = True
) -> dict | None:
    """The day's loads and scoring as the pipeline does them; then the pipeline's build (A), or for the
    yardstick (B) a plain full-refresh build of the models alone (none with build=False): B's content is
    what is compared, and A's build runs every data test on what the incremental path produced."""
    from crm_pipeline import pipeline

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("CRM_DBT_FULL_REFRESH", "")
    pipeline.prepare_warehouse()
    for entity in SPECS:
        if entity != "deletion_requests":
            pipeline.load_entity_files(entity, day)
    pipeline.apply_deletion_requests(day)
    if score:
        pipeline.score_texts()
    if not build:
        return None
    if full_refresh:  # in the pipeline's two halves, around the lifetime-value fit
        command = ["build", "--full-refresh", "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"]
        pipeline.build_in_halves(command, day)
        return None
    return pipeline.build_marts(day, f"test-{day}")


def _digest(wh: Warehouse, schema: str, table: str) -> tuple[int, str]:
    cols = ", ".join(c for c in wh.columns(schema, table) if c not in NOT_CONTENT)
    return tuple(content_md5(wh, f"(select {cols} from {schema}.{table})"))


def contents(url: str) -> dict[str, tuple[int, str]]:
    with Warehouse.from_url(url) as wh:
        out = {f"marts_build.{m}": tuple(content_md5(wh, f"{BUILD_SCHEMA}.{m}")) for m in MARTS}
        out |= {f"staging.{s}": _digest(wh, "staging", s) for s in STAGING}
        out |= {f"intermediate.{s}": _digest(wh, "intermediate", s) for s in INTERMEDIATE}
    return out


def _feedback_facts(url: str, landing: Path) -> dict:
    user, customer = _merging_user(landing)["user_id"], _merging_customer(landing)["customer_id"]
    with Warehouse.from_url(url) as wh:
        t = "intermediate.int_feedback__touchpoints"
        person_in = "select max(person_id) from {} where account_node = %s"
        return {
            "unscored": wh.fetchone(f"select count(*) from {t} where not is_scored")[0],
            "xcat_product": wh.fetchone(f"select max(product_id) from {t} where source_record_id = 'XCAT'")[0],
            "user_person": wh.fetchone(person_in.format(t), (f"2forum:{user}",))[0],
            "customer_person": wh.fetchone(
                person_in.format("intermediate.int_identity__resolved"), (f"1customer:{customer}",)
            )[0],
            "xfire_safety": wh.fetchall(
                f"select is_safety from {BUILD_SCHEMA}.fct_negative_feedback where source_record_id = 'XFIRE'"
            ),
            "xre1_received": wh.fetchone(
                "select count(*) from intermediate.int_engagement__activities_unioned "
                "where activity_id = 'XRE1' and activity_type = 'reply_received'"
            )[0],
        }


@pytest.fixture(params=["duckdb", "postgres"])
def warehouses(request, tmp_path):
    if request.param == "duckdb":
        yield [f"duckdb:///{tmp_path}/incremental.duckdb", f"duckdb:///{tmp_path}/full.duckdb"]
    else:
        with pg_database("crm_incr") as a, pg_database("crm_full") as b:
            yield [a, b]


def test_five_incremental_days_equal_full_refreshes(warehouses, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    generate(landing, tmp_path / "truth", customers=120, seed=21, end_date=D0)
    (landing / "deletion_requests").mkdir(exist_ok=True)
    envs = [
        {
            "CRM_WAREHOUSE_URL": url,
            "CRM_LANDING_DIR": str(landing),
            "CRM_KEY_SECRET": SECRET,
            "CRM_DBT_ARTIFACTS_DIR": str(tmp_path / f"dbt_{i}"),
            "CRM_TIMEZONE": "Asia/Shanghai",
            "CRM_DBT_PARSE_CACHE": PARSE_CACHE,
        }
        for i, url in enumerate(warehouses)
    ]
    modes, seen = [], []
    for k, day in enumerate(DAYS):
        if k:
            write_day(landing, k)
        score = k != 1  # day 1's texts are scored on day 2
        incremental = run_day(monkeypatch, envs[0], day, full_refresh=False, score=score)
        # Day 0: A's first build is a full refresh itself (asserted below), so B only loads and scores; from
        # day 1 B builds in full every day from its raw tables, and each day's content is compared.
        run_day(monkeypatch, envs[1], day, full_refresh=True, score=score, build=k > 0)
        seen.append(_feedback_facts(warehouses[0], landing) if k in (1, 2, 3, 5) else None)
        modes.append((day, incremental["full_refresh"], incremental["reason"]))
        if not k:
            continue
        a, b = contents(warehouses[0]), contents(warehouses[1])
        differ = {name: (a[name], b[name]) for name in a if a[name] != b[name]}
        assert not differ, f"day {k} ({day}, {incremental['reason']}): incremental != full refresh: {differ}"
    # Each half of the build (around the value fit) left its run results: the bench reads both.
    from crm_pipeline.load.warehouse import parse_url
    from crm_pipeline.transform.dbt import FIRST_HALF_RESULTS, artifacts_dir

    monkeypatch.setenv("CRM_DBT_ARTIFACTS_DIR", envs[1]["CRM_DBT_ARTIFACTS_DIR"])
    target = artifacts_dir(parse_url(warehouses[1])) / "target"
    halves = [
        {r["unique_id"] for r in json.loads((target / name).read_text())["results"]}
        for name in (FIRST_HALF_RESULTS, "run_results.json")
    ]
    assert "model.crm_warehouse.int_customers__value_summary" in halves[0] - halves[1]
    assert "model.crm_warehouse.fct_customer_value" in halves[1] - halves[0]
    # Day 0 has nothing to build on; day 4's erasure deleted raw rows; the other days are incremental.
    assert [m[1] for m in modes] == [True, False, False, False, True, False], modes
    assert "no previous build" in modes[0][2]
    assert "deleted, replaced or held" in modes[4][2], modes[4]
    # Incremental days 2 and 3: the late scores, the merged person, the recall and the new product reached
    # the touchpoints and activities (one change a day where one could mask another: a catalogue change
    # recomputes every text-linked touchpoint).
    assert seen[1]["unscored"] > 0 and seen[2]["unscored"] == 0, seen
    assert seen[2]["xcat_product"] is None and seen[3]["xcat_product"] == "XZ9", seen
    assert seen[1]["user_person"] != seen[1]["customer_person"], seen
    assert seen[2]["user_person"] == seen[2]["customer_person"], seen
    assert seen[1]["xre1_received"] == 1 and seen[2]["xre1_received"] == 0, seen
    # A text's keyword rules follow its edits on incremental days (int_feedback__keyword_hits).
    assert [seen[k]["xfire_safety"] for k in (2, 3, 5)] == [[(True,)], [(False,)], [(True,)]], seen

    # The hard cases reached the marts' inputs as they should (so the equality above is not vacuous).
    with Warehouse.from_url(warehouses[0]) as wh:
        recalled = dict(
            wh.fetchall("select msg_id, is_recalled from staging.stg_chat__messages where msg_id = 'XLATE1'")
        )
        parent = wh.fetchone("select reply_to_post_id from staging.stg_forum__posts where post_id = 'XP2'")
        deleted = wh.fetchone("select count(*) from staging.stg_forum__posts where is_deleted")[0]
        events = wh.fetchone("select count(*) from staging.stg_events__attendance where event_id in ('XE1', 'XE3')")[0]
        erased = wh.fetchone("select status from audit.deletions where request_id = 'XDEL1'")
    assert recalled == {"XLATE1": True}
    assert parent == ("XP1",)
    assert deleted >= 3
    assert events == 2
    assert erased and erased[0] == "erased", erased
