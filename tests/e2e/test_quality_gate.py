"""The alerts, end to end on DuckDB and PostgreSQL (`make run`'s path), each at a real local webhook.

The quality gate's failure drills: a corrupted landing file: the gate holds
the batch, one alert per failing check, nothing is retried, the other
sources' new data still reaches the marts while the held orders stay out
(the marts built from orders keep their exact previous content); a
corrected file resolves the alert. A PII-looking value reaching a mart:
nothing is published.

The business alerts (marts.fct_business_alerts): one message per condition
when it first holds (members and partners at risk, quiet fans, checked
against the marts they come from), a spike of bad reviews on one product
and a safety complaint sent once, kept quiet while they hold, resolved when
the rate is back to normal.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from alert_receivers import HttpReceiver
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sample.generate import generate
from e2e.helpers import checksums, copy_of_run, new_warehouse, pipeline_env, run_main

pytestmark = pytest.mark.e2e
END = dt.date(2026, 11, 22)
CORRUPT = (
    "order_id,customer_id,ordered_at,status,total_amount\n"
    "X1,C000001,2026-11-20 10:00:00,paid,-100.00\n"  # a negative amount: quarantined by the loader
    "X2,C000002,2031-01-01 10:00:00,paid,50.00\n"  # five years in the future
)


def _business(body: dict) -> bool:
    return body.get("alert", "").startswith("business/") or body.get("fingerprint", "").startswith("business:")


def _checks(receiver) -> list[dict]:
    """The check alerts the receiver got (the business alerts aside)."""
    return [r for r in receiver.requests if not _business(r["body"])]


@pytest.fixture
def receiver():
    r = HttpReceiver()
    yield r
    r.close()


def _alerting_env(landing, url, tmp, airflow_db, receiver) -> dict:
    env = pipeline_env({"landing": landing, "url": url, "tmp": tmp}, airflow_db)
    env.update(CRM_ALERT_WEBHOOK_URL=receiver.url + "/hook", CRM_TASK_RETRIES="2", CRM_RETRY_DELAY_SECONDS="1")
    return env


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def base(request, tmp_path_factory, airflow_db):
    """One clean run of the sample per engine, alerting to a real local webhook: every drill here
    starts from a copy of it."""
    tmp = tmp_path_factory.mktemp(f"base-{request.param}")
    generate(tmp / "landing", tmp / "truth", customers=150, seed=3, end_date=END)
    receiver = HttpReceiver()
    try:
        with new_warehouse(request.param, tmp) as url:
            proc = run_main(_alerting_env(tmp / "landing", url, tmp, airflow_db, receiver), END)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            assert "Quality checks this run date" in proc.stdout
            # The sample's only finding is a warning (a family registering twice for an event with one phone).
            assert _checks(receiver) and {r["body"]["severity"] for r in _checks(receiver)} == {"warning"}
            business = [r["body"] for r in receiver.requests if _business(r["body"])]
            yield {"url": url, "landing": tmp / "landing", "business": business}
    finally:
        receiver.close()


@pytest.fixture
def drill(base, tmp_path, airflow_db, receiver):
    """A copy of the base run's warehouse and landing files; alerts go to this test's receiver."""
    with copy_of_run(base["landing"], base["url"], tmp_path) as (landing, url):
        yield {"url": url, "landing": landing, "env": _alerting_env(landing, url, tmp_path, airflow_db, receiver)}


def test_a_corrupted_file_is_held_alerted_once_and_the_marts_stay(drill, receiver):
    url, landing, drill_env = drill["url"], drill["landing"], drill["env"]
    before = checksums(url)
    with Warehouse.from_url(url) as wh:
        (sender,) = wh.fetchone(
            "select min(account_id) from intermediate.int_identity__resolved "
            "where account_type = 'chat' and not is_staff"
        )
        (group,) = wh.fetchone("select min(group_id) from raw.chat_messages where sender_id = %s", (sender,))

    (landing / "orders" / "orders_late_export.csv").write_text(CORRUPT, encoding="utf-8")
    # The same day, another source's good file: one held orders batch must not keep it out (issue 21).
    (landing / "chat_messages" / "chat_same_day.csv").write_text(
        "msg_id,group_id,sender_id,sent_at,msg_type,content\n"
        f"GOOD1,{group},{sender},{END} 10:00:00,text,新品什么时候到\n",
        encoding="utf-8",
    )
    proc = run_main(drill_env, END)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "quality gate" in out and "raw.orders.critical" in out and "orders_late_export.csv" in out
    # Every extract ran and the transform published from what passed; the run names what failed.
    assert "DAG crm_extract_shop: failed (failed tasks: check_raw)" in proc.stdout
    assert "DAG crm_extract_chat: success" in proc.stdout and "DAG crm_transform: success" in proc.stdout
    assert "failed critical check: raw.orders.critical / expect_column_max_to_be_between" in proc.stdout
    assert "marts were published from the sources that passed" in proc.stderr
    after = checksums(url)
    assert after["fct_customer_rfm"] == before["fct_customer_rfm"]  # the held orders stayed out
    assert after["fct_community_engagement"] != before["fct_community_engagement"]  # the chat message got in
    with Warehouse.from_url(url) as wh:
        assert wh.fetchone("select count(*) from staging.stg_chat__messages where msg_id = 'GOOD1'")[0] == 1
        assert wh.fetchone("select count(*) from staging.stg_shop__orders where order_id in ('X1', 'X2')")[0] == 0

    with Warehouse.from_url(url) as wh:
        status = wh.fetchone("select quality_status from audit.load_batches where source like %s", ("%late_export%",))
        failed = wh.fetchall(
            "select expectation, count(*) from audit.check_results where not success and severity = 'critical' "
            "group by expectation order by expectation"
        )
    assert status == ("held",)
    # Each failing expectation was evaluated once: the data failure was not retried.
    assert failed == [("expect_column_max_to_be_between", 1), ("expect_column_values_to_be_between", 1)]
    # The one-line chat file is far below the chat batches' size: a warning of its own, for its own source.
    chat = [r["body"] for r in _checks(receiver) if r["body"]["relation"] == "raw.chat_messages"]
    assert [(b["severity"], b["dag_id"]) for b in chat] == [("warning", "crm_extract_chat")]
    firing = [r["body"] for r in _checks(receiver) if r["body"]["relation"] != "raw.chat_messages"]
    # Two critical checks (half the file quarantined; an order from the future), and a
    # warning: one loaded row is far below the recent batches' size.
    assert sorted((b["severity"], b["check"]) for b in firing) == [
        ("critical", "audit.load_batches.critical / expect_column_values_to_be_between"),
        ("critical", "raw.orders.critical / expect_column_max_to_be_between"),
        ("warning", "raw.orders.warning / expect_table_row_count_to_be_between"),
    ]
    assert {b["status"] for b in firing} == {"firing"}
    assert {b["relation"] for b in firing} == {"raw.orders", "audit.load_batches[orders]"}
    for b in firing:
        assert b["dag_id"] == "crm_extract_shop" and b["run_date"] == END.isoformat()
        assert b["counts"]["unexpected"] in (None, 1)
        assert b["batch"] == "orders/orders_late_export.csv" and b["report"].endswith("index.html")
        assert "C000001" not in json.dumps(b)  # no row values, only counts

    # The same problem in another file the next day: still one open alert per check, no storm.
    (landing / "orders" / "orders_late_export_2.csv").write_text(CORRUPT.replace("X1", "X3"), encoding="utf-8")
    assert run_main(drill_env, END + dt.timedelta(days=1)).returncode != 0
    assert len(_checks(receiver)) == 4

    # Corrected files replace the held batches: the checks pass, the alerts resolve, the orders flow.
    fixed = CORRUPT.replace("-100.00", "100.00").replace("2031-01-01", "2026-11-21")
    (landing / "orders" / "orders_late_export.csv").write_text(fixed, encoding="utf-8")
    (landing / "orders" / "orders_late_export_2.csv").write_text(fixed.replace("X1", "X3"), encoding="utf-8")
    proc = run_main(drill_env, END + dt.timedelta(days=1))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    resolved = [r["body"] for r in _checks(receiver)[4:]]
    assert [b["status"] for b in resolved] == ["resolved", "resolved"]  # the critical ones
    with Warehouse.from_url(url) as wh:
        still_open = wh.fetchall(
            "select severity from audit.alerts where status = 'open' and fingerprint like 'check:raw.orders:%'"
        )
        assert still_open == [("warning",)]  # small files are still small
        assert wh.fetchone("select count(*) from staging.stg_shop__orders where order_id in ('X1', 'X3')")[0] == 2


def test_a_pii_looking_value_in_a_mart_publishes_nothing(drill, receiver):
    url, landing, drill_env = drill["url"], drill["landing"], drill["env"]
    before = checksums(url)
    (landing / "customers" / "customers_crm_import.csv").write_text(
        "customer_id,registered_at,province,city\nC900001,2026-11-01 09:00:00,广东 13812345678,深圳市\n",
        encoding="utf-8",
    )
    proc = run_main(drill_env, END)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "critical mart check(s) failed" in out and "nothing published" in out
    assert checksums(url) == before  # every mart still serves its previous version
    with Warehouse.from_url(url) as wh:
        # The new version was built (marts_build) but not published.
        assert wh.fetchone("select count(*) from marts_build.dim_customers where customer_key is not null")[0] > 0
        failed = {s for (s,) in wh.fetchall("select suite from audit.check_results where not success")}
    assert "marts.dim_customers.critical" in failed
    alerts = [r["body"] for r in receiver.requests]
    assert alerts and all("13812345678" not in json.dumps(a, ensure_ascii=False) for a in alerts)


def test_business_alerts_say_once_which_fans_went_quiet_and_who_is_at_risk(base):
    """Every condition of the base run's published fct_business_alerts reached the webhook once; the quiet
    fans and valuable people at risk are those the source marts name, computed here from their columns."""
    with Warehouse.from_url(base["url"]) as wh:
        risk = wh.fetchall(
            "select customer_key, is_at_risk, community_tier, value_at_stake from marts.fct_customer_risk"
        )
        fans = wh.fetchall(
            "select customer_key, days_since_active, is_opinion_leader, points_rank, core_fan_rank_cutoff, "
            "points_total, community_tier from marts.fct_community_engagement"
        )
        keys = {k for (k,) in wh.fetchall("select alert_key from marts.fct_business_alerts")}
        phones = {p for (p,) in wh.fetchall("select phone from raw.customers where phone != ''")}
    at_risk = {k: str(v) for k, risky, tier, v in risk if risky and tier in ("member", "partner")}
    quiet = {
        k
        for k, days, leader, rank, cutoff, points, tier in fans
        if days is not None
        and days >= 14
        and (leader or (rank <= cutoff and points > 0 and tier in ("member", "partner")))
    }
    sent = base["business"]
    assert [b["status"] for b in sent] == ["firing"] * len(sent)
    assert sorted(b["alert_key"] for b in sent) == sorted(keys)
    by_rule: dict = {}
    for b in sent:
        by_rule.setdefault(b["alert"], {})[b.get("customer_key")] = b
    assert quiet and set(by_rule["business/fan_gone_quiet"]) == quiet
    assert {k: b["value_at_stake"] for k, b in by_rule.get("business/valuable_at_risk", {}).items()} == at_risk
    for b in sent:  # what to look at, and no contact detail
        assert b["look_at"].startswith("marts.") and b["title"] and b["run_date"] == END.isoformat()
        assert not any(p in json.dumps(b, ensure_ascii=False) for p in phones)


def test_a_spike_of_bad_reviews_alerts_once_and_resolves_when_it_is_over(drill, receiver):
    """A member writes five one-star reviews of one product over two orders the next day, one about a fire:
    a spike on the product, a safety complaint and a member at risk, each said once; the spike resolves
    when the product's rate is back to normal, the member's risk when they buy again."""
    url, landing, env = drill["url"], drill["landing"], drill["env"]
    with Warehouse.from_url(url) as wh:
        customer, key, first, second = wh.fetchone(
            "select p.anchor_customer_id, p.customer_key, min(o.order_id), max(o.order_id) "
            "from marts.dim_customers as d "
            "inner join intermediate.int_identity__persons as p on d.customer_key = p.customer_key "
            "inner join raw.orders as o on o.customer_id = p.anchor_customer_id "
            "where d.community_tier in ('member', 'partner') "
            "group by p.anchor_customer_id, p.customer_key having count(distinct o.order_id) >= 2 "
            "order by p.anchor_customer_id limit 1"
        )
        (product,) = wh.fetchone("select min(product_id) from raw.order_items where order_id = %s", (first,))
        (spent,) = wh.fetchone("select monetary_amount from marts.fct_customer_rfm where customer_key = %s", (key,))
    day = END + dt.timedelta(days=1)
    lines = ["review_id,customer_id,rating,created_at,order_id,product_id,content"]
    for n, order in enumerate((first, first, second, second)):
        lines.append(f"SPIKE{n},{customer},1,{day}T1{n}:00:00+08:00,{order},{product},质量太差了，用了两天就坏")
    lines.append(f"SPIKE9,{customer},1,{day}T15:00:00+08:00,{second},{product},The charger caught fire on my desk")
    (landing / "reviews" / "reviews_spike.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spike, at_risk = f"business:negative_spike:product:{product}", f"business:valuable_at_risk:{key}"

    def said(fingerprint: str) -> list[dict]:
        return [
            r["body"]
            for r in receiver.requests
            if fingerprint in (r["body"].get("alert_key"), r["body"].get("fingerprint"))
        ]

    assert run_main(env, day).returncode == 0
    firing = said(spike)
    assert [(b["status"], b["subject_id"]) for b in firing] == [("firing", product)]
    assert firing[0]["observed"] == 5 and float(firing[0]["z_score"]) >= 3.0
    assert firing[0]["look_at"] == (
        f"marts.fct_negative_feedback where product_id = '{product}' and noticed_date >= {END - dt.timedelta(days=1)}"
    )
    critical = [r["body"] for r in receiver.requests if r["body"].get("alert") == "business/critical_complaint"]
    assert [(b["severity"], b["subject_type"], b["subject_id"], b["customer_key"]) for b in critical] == [
        ("critical", "review", product, key)
    ]
    assert [(b["status"], b["value_at_stake"]) for b in said(at_risk)] == [("firing", str(spent))]

    # The next day the spike is still in its three-day window and the member still at risk: no second message.
    assert run_main(env, day + dt.timedelta(days=1)).returncode == 0
    assert (len(said(spike)), len(said(at_risk))) == (1, 1)
    with Warehouse.from_url(url) as wh:
        assert wh.fetchone("select status, times_seen from audit.alerts where fingerprint = %s", (spike,)) == (
            "open",
            2,
        )

    # Three days on, the window holds none of them: the product is back to its rate. The member bought again.
    later = day + dt.timedelta(days=3)
    (landing / "orders" / "orders_comeback.csv").write_text(
        f"order_id,customer_id,ordered_at,status,total_amount\nBACK1,{customer},{later}T09:00:00+08:00,paid,99.00\n",
        encoding="utf-8",
    )
    assert run_main(env, later).returncode == 0
    assert [b["status"] for b in said(spike)] == ["firing", "resolved"]
    assert [b["status"] for b in said(at_risk)] == ["firing", "resolved"]
    with Warehouse.from_url(url) as wh:
        # The safety complaint stays open for its seven days.
        assert wh.fetchall(
            "select status from audit.alerts where fingerprint like 'business:critical_complaint:%%'"
        ) == [("open",)]
