"""Deletion requests without the DAGs, on both engines: matching, refusals, suppression across a secret rotation."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from crm_pipeline.load.loader import ensure_tables, load_landing, write_pseudonym_key
from crm_pipeline.load.suppression import ERASED_REASON, normalise_phone
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.privacy import apply_pending
from crm_pipeline.privacy import ensure_tables as ensure_privacy_tables

SH = ZoneInfo("Asia/Shanghai")
RUN = dt.date(2026, 11, 22)
CUSTOMERS = (
    "customer_id,registered_at,phone,email\n"
    "C1,2026-01-01,138-1234-5678,one@example.com\n"
    "C2,2026-01-01,+86 139 0000 1111,\n"
    "C3,2026-01-01,１３９００００１１１１,\n"  # C2's phone in full-width digits: a family's shared phone
    "C4,2026-01-01,,four@example.com\n"
)
ORDERS = (
    "order_id,customer_id,ordered_at,status,total_amount\n"
    "O1,C1,2026-11-01,paid,10\nO2,C1,2026-11-02,paid,20\nO3,C4,2026-11-03,paid,30\n"
)


@pytest.mark.parametrize(
    ("value", "digits"),
    [("138-1234-5678", "13812345678"), ("+86 138 1234 5678", "13812345678"), ("8613812345678", "13812345678"),
     ("１３８１２３４５６７８", "13812345678"), ("𝟏𝟑𝟖𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖", None), ("12345", None), ("", None), (None, None)],
)  # fmt: skip
def test_phones_normalise_as_the_dbt_macro_does(value, digits):
    assert normalise_phone(value) == digits


def _land(landing, entity, name, text):
    (landing / entity).mkdir(exist_ok=True)
    (landing / entity / name).write_text(text, encoding="utf-8")


def test_requests_erase_refuse_or_miss_and_the_erased_stay_out_after_a_secret_rotation(crm_env):
    landing = crm_env["landing"]
    _land(landing, "customers", "c.csv", CUSTOMERS)
    _land(landing, "orders", "o.csv", ORDERS)
    _land(
        landing,
        "reviews",
        "rv.csv",
        "review_id,customer_id,rating,created_at,order_id,product_id,content\n"
        "RV1,C1,1,2026-11-05,O1,,broken\nRV2,C4,5,2026-11-05,O3,,fine\n",
    )
    _land(
        landing,
        "deletion_requests",
        "r.csv",
        "request_id,requested_at,customer_id,phone\n"
        "R1,2026-11-20,,13812345678\n"  # C1 by phone, another format
        "R2,2026-11-20,,13900001111\n"  # held by C2 and C3: ambiguous
        "R3,2026-11-20,C9,\n"  # nobody
        "R4,2026-11-20,,\n",  # names nothing
    )
    with Warehouse.from_url(crm_env["url"]) as wh:
        ensure_tables(wh)
        write_pseudonym_key(wh, "secret-1")
        ensure_privacy_tables(wh)
        for entity in ("customers", "orders", "reviews", "deletion_requests"):
            load_landing(wh, entity, landing, RUN, SH)
        # Scores of C1's review (RV1) and C4's, raw and staged; a forum post with the same id is someone else's.
        wh.execute("create schema if not exists scoring")
        wh.execute("create schema if not exists staging")
        wh.execute("create table scoring.text_scores (source varchar, record_id varchar)")
        wh.execute("create table staging.stg_scoring__text_scores (feedback_source varchar, record_id varchar)")
        for t in ("scoring.text_scores", "staging.stg_scoring__text_scores"):
            wh.execute(f"insert into {t} values ('review', 'RV1'), ('review', 'RV2'), ('forum', 'RV1')")
        # A staging model from before it was incremental is a view: nothing to delete there (nor an error).
        wh.execute("create view staging.stg_shop__orders as select 'O1' as order_id, 'C1' as customer_id")
        # What the incremental intermediate tables hold between builds (a full refresh rebuilds them later).
        wh.execute("create schema if not exists intermediate")
        wh.execute(
            "create table intermediate.int_feedback__touchpoints "
            "(feedback_source varchar, source_record_id varchar, account_node varchar)"
        )
        wh.execute(
            "insert into intermediate.int_feedback__touchpoints values "
            "('review', 'V1', '1customer:C1'), ('review', 'V2', '1customer:C2')"
        )
        # Keyword hits per touchpoint (ids are unique within a source: a forum post V1 is someone else's).
        wh.execute(
            "create table intermediate.int_feedback__keyword_hits "
            "(feedback_source varchar, source_record_id varchar, feedback_hash varchar, rule varchar)"
        )
        wh.execute(
            "insert into intermediate.int_feedback__keyword_hits values ('review', 'V1', 'h1', 'safety'), "
            "('review', 'V1', 'h1', 'other'), ('review', 'V2', 'h2', null), ('forum', 'V1', 'h3', null)"
        )
        wh.execute(
            "create table intermediate.int_engagement__activities_by_account "
            "(source_record_id varchar, account_node varchar, counterpart_node varchar)"
        )
        wh.execute(
            "insert into intermediate.int_engagement__activities_by_account values "
            "('P1', '1customer:C1', null), ('P2', '2forum:F2', '1customer:C1'), ('P3', '2forum:F2', null)"
        )
        # The last build's lifetime-value predictions, per person (without a resolution yet: the account node).
        wh.execute("create table scoring.customer_value (person_id varchar, p_alive double precision)")
        wh.execute("insert into scoring.customer_value values ('customer:C1', 0.5), ('customer:C4', 0.9)")
        # A scoring run killed outright left its work tables, with C1's review text in them.
        wh.execute("create table scoring._pending_texts as select 'RV1' as record_id, 'broken' as text")
        wh.execute("create table scoring._pending_texts_distinct as select 1 as n, 'broken' as text")
        done = {d["request_id"]: (d["status"], d["reason"], d["rows_deleted"]) for d in apply_pending(wh)}
        assert not wh.table_exists("scoring", "_pending_texts")
        assert not wh.table_exists("scoring", "_pending_texts_distinct")
        left = {
            t: sorted(r for (r,) in wh.fetchall(f"select source_record_id from intermediate.{t}"))
            for t in ("int_feedback__touchpoints", "int_engagement__activities_by_account")
        }
        assert left == {"int_feedback__touchpoints": ["V2"], "int_engagement__activities_by_account": ["P3"]}
        hits_left = wh.fetchall(
            "select feedback_source, source_record_id from intermediate.int_feedback__keyword_hits order by 1, 2"
        )
        assert hits_left == [("forum", "V1"), ("review", "V2")]
        scores_left = {
            t: sorted(wh.fetchall(f"select * from {t}"))
            for t in ("scoring.text_scores", "staging.stg_scoring__text_scores")
        }
        kept = [("forum", "RV1"), ("review", "RV2")]
        assert wh.fetchall("select person_id from scoring.customer_value") == [("customer:C4",)]
        assert scores_left == {"scoring.text_scores": kept, "staging.stg_scoring__text_scores": kept}
        assert done == {
            "R1": (
                "erased",
                None,
                {
                    "raw.customers": 1,
                    "raw.orders": 2,
                    "raw.reviews": 1,
                    "scoring.text_scores": 1,
                    "staging.stg_scoring__text_scores": 1,
                    "scoring.customer_value": 1,
                    "intermediate.int_feedback__touchpoints": 1,
                    "intermediate.int_feedback__keyword_hits": 2,
                    "intermediate.int_engagement__activities_by_account": 2,
                },
            ),
            "R2": ("ambiguous", "the phone is held by 2 shop customers", {}),
            "R3": ("not_found", "no account matches", {}),
            "R4": ("not_found", "the request names no customer_id or phone", {}),
        }
        assert sorted(c for (c,) in wh.fetchall("select customer_id from raw.customers")) == ["C2", "C3", "C4"]
        assert apply_pending(wh) == []  # applied once

        # The pseudonym secret rotates; C1 comes back in a changed export and a late order: both stay out.
        write_pseudonym_key(wh, "secret-2")
        _land(landing, "customers", "c.csv", CUSTOMERS + "C5,2026-02-01,,\n")
        _land(
            landing,
            "orders",
            "o2.csv",
            "order_id,customer_id,ordered_at,status,total_amount\nO9,C1,2026-11-05,paid,5\n",
        )
        for entity in ("customers", "orders"):
            load_landing(wh, entity, landing, RUN, SH)
        customers = sorted(c for (c,) in wh.fetchall("select distinct customer_id from raw.customers"))
        orders = sorted(o for (o,) in wh.fetchall("select order_id from raw.orders"))
        erased = wh.fetchall(
            "select entity, raw_record from audit.quarantine where reason = %s order by 1", (ERASED_REASON,)
        )
    assert customers == ["C2", "C3", "C4", "C5"] and orders == ["O3"]
    assert erased == [("customers", "[erased]"), ("orders", "[erased]")]


def test_an_erased_person_takes_their_business_alerts_along(crm_env):
    """A business alert names its person by customer_key in its title: erasure deletes those, open or
    resolved, and leaves another person's and the check alerts."""
    import hashlib

    from crm_pipeline.alerts import Problem, reconcile

    landing = crm_env["landing"]
    _land(landing, "customers", "c.csv", CUSTOMERS)
    _land(landing, "deletion_requests", "r.csv", "request_id,requested_at,customer_id,phone\nR1,2026-11-20,C4,\n")
    key = hashlib.sha256(b"secret-1:customer:C4").hexdigest()[:32]  # the marts' customer_key, by hand
    other = hashlib.sha256(b"secret-1:customer:C2").hexdigest()[:32]
    with Warehouse.from_url(crm_env["url"]) as wh:
        ensure_tables(wh)
        write_pseudonym_key(wh, "secret-1")
        ensure_privacy_tables(wh)
        for entity in ("customers", "deletion_requests"):
            load_landing(wh, entity, landing, RUN, SH)
        alerts = [
            Problem(f"business:valuable_at_risk:{key}", "warning", f"A member is at risk: {key}", "crm_transform"),
            Problem(
                "business:critical_complaint:review:RV9", "critical", f"Critical complaint: {key}", "crm_transform"
            ),
            Problem(f"business:fan_gone_quiet:{other}", "warning", f"A core fan has gone quiet: {other}", "d"),
            Problem("check:raw.orders:raw.orders.critical:x:", "critical", "raw.orders.critical failed", "d"),
        ]
        reconcile(wh, "", alerts, [])
        reconcile(wh, "business:critical_complaint:", [], [])  # resolved: erased all the same
        (done,) = apply_pending(wh)
        left = sorted(fp for (fp,) in wh.fetchall("select fingerprint from audit.alerts"))
    assert done["status"] == "erased" and done["rows_deleted"]["audit.alerts"] == 2
    assert left == [f"business:fan_gone_quiet:{other}", "check:raw.orders:raw.orders.critical:x:"]
