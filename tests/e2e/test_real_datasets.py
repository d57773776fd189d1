"""`make run` on real public data (issue 21, item 5): a shop, two forums and an IRC channel, on both engines.

The datasets (../shared/data/real) become landing files (tests/e2e/real_data.py)
and one `make run` loads them all. The marts are checked against
computations from the source files that share no code with the pipeline:
- the shop's R, F and M for every customer, exactly (Olist, São Paulo time);
- every forum question's replies equal to the dump's own AnswerCount (less
  the answers whose author is gone, which the loader quarantines), and every
  asker's replies received;
- every IRC sender's text messages and replies received, exactly.
What the loader quarantined, and why, is asserted too.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from conftest import REPO, SECRET
from crm_pipeline.load.warehouse import Warehouse
from e2e import real_data
from e2e.helpers import pipeline_env, run_main
from e2e.independent_rfm import compute

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not real_data.available(), reason="../shared/data/real is not beside the repository"),
]
AS_OF = dt.date(2018, 10, 31)  # after the last Olist order; the forums (2014-15) and IRC (2004-18) are older
TZ = "America/Sao_Paulo"


def test_make_run_on_real_datasets_matches_independent_figures(crm_env, airflow_db):
    landing = crm_env["landing"]
    shop = real_data.olist_landing(landing)
    forum = real_data.stackexchange_landing(landing)
    chat = real_data.irc_landing(landing)
    env = pipeline_env(crm_env, airflow_db) | {"CRM_TIMEZONE": TZ}
    proc = run_main(env, AS_OF)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    with Warehouse.from_url(crm_env["url"]) as wh:
        loads = {
            e: (x, lo, q)
            for e, x, lo, q in wh.fetchall(
                "select entity, sum(extracted_rows), sum(loaded_rows), sum(quarantined_rows) "
                "from audit.load_batches group by entity"
            )
        }
        why = wh.fetchall("select entity, reason, count(*) from audit.quarantine group by 1, 2 order by 1, 2")
        rfm = wh.fetchall(
            "select customer_key, recency_days, frequency_orders, monetary_amount, r_score, f_score, m_score, "
            "rfm_segment from marts.fct_customer_rfm"
        )
        replies = dict(
            wh.fetchall(
                "select reply_to_post_id, count(*) from staging.stg_forum__posts "
                "where reply_to_post_id is not null and not is_deleted group by 1"
            )
        )
        activity = wh.fetchall(
            "select account_node, activity_type, sum(quantity) from intermediate.int_engagement__activities_by_account "
            "where activity_type in ('reply_received', 'chat_message') group by 1, 2"
        )
    print("loaded / quarantined:", loads, why)  # for the record (pytest -s)

    # Everything loaded but the eight posts whose author the dumps no longer have.
    assert loads["orders"] == (shop["orders"], shop["orders"], 0)
    assert loads["customers"] == (shop["customers"], shop["customers"], 0)
    assert loads["order_items"][2] == 0 and loads["reviews"][2] == 0
    assert loads["forum_users"] == (forum["users"], forum["users"], 0)
    assert loads["forum_posts"] == (forum["posts"], forum["posts"] - forum["ownerless"], forum["ownerless"])
    assert loads["chat_messages"] == (chat["messages"], chat["messages"], 0)
    assert [(e, n) for e, _, n in why] == [("forum_posts", forum["ownerless"])]
    assert "user_id" in why[0][1]

    # The shop: R, F and M of every customer, exactly.
    expected = compute(landing, AS_OF, TZ, SECRET, REPO / "dbt_project" / "seeds" / "rfm_segments.csv")
    assert len(rfm) == len(expected) > 3000
    got = {r[0]: (r[1], r[2], Decimal(r[3]), r[4], r[5], r[6], r[7]) for r in rfm}
    want = {
        row.customer_key: (row.recency_days, row.frequency_orders, row.monetary_amount, row.r_score, row.f_score,
                           row.m_score, row.rfm_segment)
        for row in expected.itertuples()
    }  # fmt: skip
    assert got == want

    # The forums: each question's replies are its AnswerCount (less answers without an author).
    questions = {q: v for q, v in forum["questions"].items() if not v["asker_missing"]}
    assert {q: replies.get(q, 0) for q in questions} == {
        q: v["answer_count"] - v["ownerless_answers"] for q, v in questions.items()
    }
    received: dict[str, int] = {}
    for v in questions.values():
        received[v["asker"]] = received.get(v["asker"], 0) + v["answer_count"] - v["ownerless_answers"]
    got_forum = {n.removeprefix("2forum:"): int(q) for n, t, q in activity if t == "reply_received" and n[:2] == "2f"}
    assert got_forum == {u: n for u, n in received.items() if n}

    # IRC: each sender's text messages and the replies they received, exactly.
    sent = {n.removeprefix("3chat:"): int(q) for n, t, q in activity if t == "chat_message"}
    got_chat = {n.removeprefix("3chat:"): int(q) for n, t, q in activity if t == "reply_received" and n[:2] == "3c"}
    assert sent == chat["sent"] and len(sent) > 500
    assert got_chat == chat["received"] and sum(got_chat.values()) > 3000
