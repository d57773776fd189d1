"""Deletion requests: erase a person from raw, scores, audit and published marts, and keep them out.

A request lands as a file under `$CRM_LANDING_DIR/deletion_requests/`
(`request_id`, `requested_at`, and a `customer_id` or a `phone`). The next
`crm_transform` run applies it before anything is built:

1. The request names accounts: the shop customer with that id, or every shop
   customer and forum user whose phone normalises to the same 11 digits. A
   phone that more than one shop customer holds (a family's phone) names
   nobody for sure: the request is recorded `ambiguous` and nothing is
   erased; resend it with the customer id.
2. Those accounts grow to the whole person through the last identity
   resolution (`intermediate.int_identity__resolved`): their forum and chat
   accounts go too, and events registered with any of their keys.
3. Their rows are deleted from every raw table (orders with their items and
   refunds), from `scoring.text_scores` and `scoring.customer_value`, from quarantine rows that name
   them, and from every published mart, tier history included, by
   `customer_key`. The run then rebuilds staging and marts without them.
4. Their identifiers are kept only as hashes (crm_pipeline.load.suppression) in `private.erased_identifiers`,
   keyed with a random salt of their own (`private.erasure_salt`, not
   CRM_KEY_SECRET, so rotating that secret lets nobody back). The loader
   quarantines any later record that carries one (reason `erased on
   request`, raw record not kept), so a changed file or a re-read window
   cannot bring them back.
5. `audit.deletions` says what was done: request, status, accounts and rows
   per table, never an identifier. The request's own identifiers are blanked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re

from crm_pipeline.load.suppression import ensure_tables as ensure_suppression_tables
from crm_pipeline.load.suppression import (
    erasure_salt,
    identifier_hash,
    normalise,
    normalise_phone,
)
from crm_pipeline.load.warehouse import Warehouse

log = logging.getLogger(__name__)
# An account's node in the identity graph, as dbt's macro account_node writes it (macros/account_node.sql);
# tests/plugins/test_phone_rule.py holds the two to the same output.
ACCOUNT_PREFIXES = {"customer": "1customer:", "forum": "2forum:", "chat": "3chat:"}


def account_node(kind: str, account_id: str) -> str:
    return ACCOUNT_PREFIXES[kind] + account_id


DELETIONS_DDL = [
    ("request_id", "text"),
    ("requested_at", "timestamp"),
    ("applied_at", "timestamp"),
    ("status", "text"),  # erased | ambiguous | not_found
    ("reason", "text"),  # why nothing was erased
    ("accounts", "int"),
    ("rows_deleted", "text"),  # JSON: table -> rows
]


def _secret(wh: Warehouse) -> str:
    row = (
        wh.fetchone("select secret from private.pseudonym_key") if wh.table_exists("private", "pseudonym_key") else None
    )
    return row[0] if row else ""


def ensure_tables(wh: Warehouse) -> None:
    wh.create_table("audit.deletions", DELETIONS_DDL)
    ensure_suppression_tables(wh)


def _in(column: str, values: list[str]) -> tuple[str, list[str]]:
    return f"{column} in ({', '.join(['%s'] * len(values))})", values


KEYWORD_HITS = "intermediate.int_feedback__keyword_hits"


def _delete(
    wh: Warehouse, table: str, column: str, values: list[str], counts: dict, source: tuple[str, str] | None = None
) -> None:
    # A base table: staging models built before they were incremental are views, with nothing to delete.
    if not values or not wh.table_exists(*table.split("."), base_only=True):
        return
    clause, params = _in(column, values)
    if source is not None:  # scores: ids are unique within a source only; (source column, source)
        clause, params = f"{source[0]} = %s and {clause}", [source[1], *params]
    n = wh.fetchone(f"select count(*) from {table} where {clause}", params)[0]
    if n:
        wh.execute(f"delete from {table} where {clause}", params)
        counts[table] = counts.get(table, 0) + n


def _matched_accounts(wh: Warehouse, customer_id: str | None, phone: str | None) -> tuple[set, str | None]:
    """(account nodes the request names, or a reason it names nobody for sure)."""
    accounts: set[tuple[str, str]] = set()
    if not customer_id and not phone:
        return set(), "the request names no customer_id or phone"
    if customer_id and wh.fetchone("select count(*) from raw.customers where customer_id = %s", (customer_id,))[0]:
        accounts.add(("customer", customer_id))
    digits = normalise_phone(phone)
    if phone and digits is None:
        return set(), "the phone is not a mainland mobile number"
    if digits:
        holders = {
            c for c, p in wh.fetchall("select distinct customer_id, phone from raw.customers where phone is not null")
            if normalise_phone(p) == digits
        }  # fmt: skip
        if len(holders) > 1:
            return set(), f"the phone is held by {len(holders)} shop customers"
        accounts |= {("customer", c) for c in holders}
        accounts |= {
            ("forum", u)
            for u, p in wh.fetchall("select distinct user_id, phone from raw.forum_users where phone is not null")
            if normalise_phone(p) == digits
        }
    return accounts, None if accounts else "no account matches"


def _whole_person(wh: Warehouse, accounts: set[tuple[str, str]]) -> tuple[set[tuple[str, str]], set[str]]:
    """Every account of the people these accounts belong to, and those people's ids (last resolution)."""
    if not wh.table_exists("intermediate", "int_identity__resolved"):
        return accounts, {f"{t}:{i}" for t, i in accounts}
    nodes = [f"{t}:{i}" for t, i in accounts]
    clause, params = _in("account_type || ':' || account_id", nodes)
    persons = {
        p for (p,) in wh.fetchall(f"select person_id from intermediate.int_identity__resolved where {clause}", params)
    }
    if not persons:
        return accounts, set(nodes)
    clause, params = _in("person_id", sorted(persons))
    rows = wh.fetchall(
        f"select account_type, account_id from intermediate.int_identity__resolved where {clause}", params
    )
    return accounts | set(rows), persons | set(nodes)


def _identifiers(wh: Warehouse, accounts: set[tuple[str, str]]) -> dict[str, set[str]]:
    """The kinds and values to erase and suppress: account ids, their orders, and their keys."""
    ids: dict[str, set[str]] = {k: set() for k in ("customer_id", "forum", "chat", "order_id", "phone", "email",
                                                     "wechat_unionid", "member_id")}  # fmt: skip
    for account_type, account_id in accounts:
        ids["customer_id" if account_type == "customer" else account_type].add(account_id)
    customers, forum = sorted(ids["customer_id"]), sorted(ids["forum"])
    if customers:
        clause, params = _in("customer_id", customers)
        ids["order_id"] = {
            o for (o,) in wh.fetchall(f"select distinct order_id from raw.orders where {clause}", params)
        }
        for row in wh.fetchall(
            f"select phone, email, wechat_unionid, member_id from raw.customers where {clause}", params
        ):
            for kind, value in zip(("phone", "email", "wechat_unionid", "member_id"), row, strict=True):
                if (v := normalise(kind, value)) is not None:
                    ids[kind].add(v)
    if forum:
        clause, params = _in("user_id", forum)
        for row in wh.fetchall(
            f"select phone, email, wechat_unionid, member_id from raw.forum_users where {clause}", params
        ):
            for kind, value in zip(("phone", "email", "wechat_unionid", "member_id"), row, strict=True):
                if (v := normalise(kind, value)) is not None:
                    ids[kind].add(v)
    if ids["chat"] and wh.table_exists("raw", "chat_messages"):
        clause, params = _in("sender_id", sorted(ids["chat"]))
        ids["wechat_unionid"] |= {
            u
            for (u,) in wh.fetchall(f"select distinct sender_unionid from raw.chat_messages where {clause}", params)
            if u
        }
    if ids["chat"] and wh.table_exists("raw", "chat_members"):  # what the rosters say of them
        clause, params = _in("sender_id", sorted(ids["chat"]))
        for row in wh.fetchall(f"select phone, wechat_unionid, member_id from raw.chat_members where {clause}", params):
            for kind, value in zip(("phone", "wechat_unionid", "member_id"), row, strict=True):
                if (v := normalise(kind, value)) is not None:
                    ids[kind].add(v)
    return ids


def _erase(wh: Warehouse, ids: dict[str, set[str]], persons: set[str], secret: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    customers, orders = sorted(ids["customer_id"]), sorted(ids["order_id"])
    # Scores of their texts, found before the texts go.
    from crm_pipeline.text.score import DUCKDB_WORK_TABLES, TEXT_SOURCES

    owner = {"forum": ("user_id", ids["forum"]), "chat": ("sender_id", ids["chat"]),
             "review": ("customer_id", ids["customer_id"]), "refund": ("order_id", ids["order_id"])}  # fmt: skip
    for source, (table, id_col, _, _) in TEXT_SOURCES.items():
        column, values = owner[source]
        if values and wh.table_exists("raw", table) and wh.table_exists("scoring", "text_scores"):
            clause, params = _in(column, sorted(values))
            records = sorted({r for (r,) in wh.fetchall(f"select {id_col} from raw.{table} where {clause}", params)})
            _delete(wh, "scoring.text_scores", "record_id", records, counts, source=("source", source))
            # Their staged scores: an incremental table too.
            _delete(wh, "staging.stg_scoring__text_scores", "record_id", records, counts, ("feedback_source", source))
    # A scoring run killed outright (not stopped: that drops it) leaves its work tables of texts,
    # theirs among them, until the next run; the next run stages them anew.
    for work in DUCKDB_WORK_TABLES:
        wh.execute(f"drop table if exists {work}")
    # Raw, and the incremental staging tables built from it (crm_pipeline.transform.incremental):
    # the next build is a full refresh anyway (raw rows went), but the copies go now.
    for raw, staged, column, values in (
        ("order_items", "stg_shop__order_items", "order_id", orders),
        ("refunds", "stg_shop__refunds", "order_id", orders),
        ("reviews", "stg_shop__reviews", "customer_id", customers),
        ("orders", "stg_shop__orders", "customer_id", customers),
        ("customers", "stg_shop__customers", "customer_id", customers),
        ("forum_posts", "stg_forum__posts", "user_id", sorted(ids["forum"])),
        ("forum_users", "stg_forum__users", "user_id", sorted(ids["forum"])),
        ("chat_messages", "stg_chat__messages", "sender_id", sorted(ids["chat"])),
        ("chat_members", "stg_chat__members", "sender_id", sorted(ids["chat"])),
    ):
        _delete(wh, f"raw.{raw}", column, values, counts)
        _delete(wh, f"staging.{staged}", column, values, counts)
    # Their lifetime-value predictions (rewritten every build; gone now, before any rebuild).
    _delete(wh, "scoring.customer_value", "person_id", sorted(persons), counts)
    # The incremental intermediate tables keep rows from build to build (their texts, their activities).
    nodes = sorted(
        {account_node("customer", c) for c in customers}
        | {account_node("forum", u) for u in ids["forum"]}
        | {account_node("chat", w) for w in ids["chat"]}
    )
    # Their texts' keyword hits (rows per touchpoint, with the md5 of its text): found by their touchpoints.
    if nodes and wh.table_exists("intermediate", "int_feedback__touchpoints", base_only=True):
        clause, params = _in("account_node", nodes)
        theirs: dict[str, set[str]] = {}
        touchpoints = "select feedback_source, source_record_id from intermediate.int_feedback__touchpoints"
        for source, record in wh.fetchall(f"{touchpoints} where {clause}", params):
            theirs.setdefault(source, set()).add(record)
        for source, records in sorted(theirs.items()):
            _delete(wh, KEYWORD_HITS, "source_record_id", sorted(records), counts, ("feedback_source", source))
    _delete(wh, "intermediate.int_feedback__touchpoints", "account_node", nodes, counts)
    for column in ("account_node", "counterpart_node"):
        _delete(wh, "intermediate.int_engagement__activities_by_account", column, nodes, counts)
    if wh.table_exists("raw", "events"):
        keys = ids["customer_id"] | ids["phone"] | ids["member_id"]
        refs = [
            r
            for (r,) in wh.fetchall("select distinct attendee_ref from raw.events")
            if normalise("attendee", r) in keys
        ]
        _delete(wh, "raw.events", "attendee_ref", refs, counts)
        _delete(wh, "staging.stg_events__attendance", "attendee_ref", sorted({r.strip() for r in refs}), counts)
    # Quarantined lines that name them as a whole word (the raw line may hold their phone or name too).
    for value in sorted(ids["customer_id"] | ids["forum"] | ids["chat"]):
        word = re.compile(rf"(?<![0-9A-Za-z_]){re.escape(value)}(?![0-9A-Za-z_])")
        lines = wh.fetchall(
            "select batch_id, line_no, raw_record from audit.quarantine where raw_record like %s", (f"%{value}%",)
        )
        for batch_id, line_no, _ in [r for r in lines if word.search(r[2])]:
            wh.execute("delete from audit.quarantine where batch_id = %s and line_no = %s", (batch_id, line_no))
            counts["audit.quarantine"] = counts.get("audit.quarantine", 0) + 1
    # Published marts, now: BI stops seeing them before the rebuild, even if the rebuild fails.
    keys = sorted(hashlib.sha256(f"{secret}:{p}".encode()).hexdigest()[:32] for p in persons)
    for (table,) in wh.fetchall("select table_name from information_schema.tables where table_schema = 'marts'"):
        if "customer_key" in wh.columns("marts", table):
            _delete(wh, f"marts.{table}", "customer_key", keys, counts)
    # Business alerts about them (each names its person's customer_key), open or resolved.
    if keys and wh.table_exists("audit", "alerts"):
        about = " or ".join(["title like %s"] * len(keys))
        where, params = f"fingerprint like 'business:%%' and ({about})", [f"%{k}%" for k in keys]
        gone = wh.fetchone(f"select count(*) from audit.alerts where {where}", params)[0]
        if gone:
            wh.execute(f"delete from audit.alerts where {where}", params)
            counts["audit.alerts"] = gone
    return counts


def apply_pending(wh: Warehouse, now: dt.datetime | None = None) -> list[dict]:
    """Apply every deletion request not applied yet; one audit row each."""
    ensure_tables(wh)
    if not wh.table_exists("raw", "deletion_requests"):
        return []
    pending = wh.fetchall(
        "select request_id, min(requested_at), max(customer_id), max(phone) from raw.deletion_requests "
        "where request_id not in (select request_id from audit.deletions) group by request_id order by 2, 1"
    )
    secret, salt, now = _secret(wh), erasure_salt(wh), now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    done = []
    for request_id, requested_at, customer_id, phone in pending:
        with wh.transaction():
            accounts, problem = _matched_accounts(wh, customer_id, phone)
            counts: dict[str, int] = {}
            if problem is None:
                accounts, persons = _whole_person(wh, accounts)
                ids = _identifiers(wh, accounts)
                counts = _erase(wh, ids, persons, secret)
                for kind, values in ids.items():
                    for value in sorted(values):
                        wh.execute(
                            "insert into private.erased_identifiers values (%s, %s, %s)",
                            (kind, identifier_hash(salt, kind, value), request_id),
                        )
            status = "erased" if problem is None else "ambiguous" if "held by" in problem else "not_found"
            row = {"request_id": request_id, "status": status, "reason": problem, "accounts": len(accounts)}
            wh.execute(
                "insert into audit.deletions (request_id, requested_at, applied_at, status, reason, accounts, "
                "rows_deleted) values (%s, %s, %s, %s, %s, %s, %s)",
                (request_id, requested_at, now, status, problem, len(accounts), json.dumps(counts, sort_keys=True)),
            )
            # The request's own identifiers are not kept once it is applied.
            wh.execute(
                "update raw.deletion_requests set customer_id = null, phone = null where request_id = %s", (request_id,)
            )
        log.info("deletion request %s: %s, %d account(s), rows %s", request_id, status, len(accounts), counts)
        done.append({**row, "rows_deleted": counts})
    if any(d["status"] == "erased" for d in done):
        from crm_pipeline.bi_access import refresh_bi_copy

        refresh_bi_copy(wh)  # BI's copy of the marts (DuckDB) loses them now too
    return done
