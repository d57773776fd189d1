"""`make run`'s path end to end on DuckDB and PostgreSQL: DAGs, marts, and RFM checked independently."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import sqlite3
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from conftest import REPO, SECRET
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sample.generate import generate
from e2e.helpers import pipeline_env, run_main
from e2e.independent_rfm import compute, value_summaries

pytestmark = pytest.mark.e2e
END = dt.date(2026, 11, 22)
# Years of history (issue 21): the DAGs' start_date once made a run this old do nothing and succeed.
HISTORY_END = dt.date(1998, 7, 15)
AS_OF = dt.date(1998, 6, 30)  # two weeks before the data ends: later rows must not count


def mart_rows(url: str, table: str, order_by: str) -> list[tuple]:
    with Warehouse.from_url(url) as wh:
        return wh.fetchall(f"select * from marts.{table} order by {order_by}")


def test_run_builds_marts_that_match_an_independent_rfm(crm_env, airflow_db):
    generate(crm_env["landing"], crm_env["tmp"] / "truth", customers=400, seed=11, end_date=HISTORY_END)
    env = pipeline_env(crm_env, airflow_db)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    proc = run_main(env, AS_OF)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Airflow's dag.test() parses the DAG folder and writes every DAG to the metadata DB on each call; the
    # run lets only its first call do it (crm_pipeline.run.dag_folder_synced_once): every DAG was written
    # once, before the run's first task started, not again before each later DAG.
    with contextlib.closing(sqlite3.connect(airflow_db / "airflow.db")) as meta:
        written = meta.execute("select min(last_parsed_time), max(last_parsed_time) from dag").fetchone()
        first_task = meta.execute("select min(start_date) from task_instance where start_date > ?", (started,))
        first_task = first_task.fetchone()[0]
    assert started < written[0] <= written[1] < first_task, (started, written, first_task)
    for expected in (
        "Loads (all batches",
        "marts.fct_customer_rfm",
        "RFM segment x community tier",
        "DAG crm_extract_shop: success",
        "DAG crm_transform: success",
    ):
        assert expected in proc.stdout

    expected = compute(
        crm_env["landing"], AS_OF, "Asia/Shanghai", SECRET, REPO / "dbt_project" / "seeds" / "rfm_segments.csv"
    )
    with Warehouse.from_url(crm_env["url"]) as wh:
        got = wh.fetchall(
            "select customer_key, as_of_date, recency_days, frequency_orders, monetary_amount, "
            "r_score, f_score, m_score, rfm_segment from marts.fct_customer_rfm"
        )
        dim_count = wh.fetchone("select count(*) from marts.dim_customers")[0]
        tiers = {t for (t,) in wh.fetchall("select distinct community_tier from marts.fct_customer_rfm")}
    assert len(got) == len(expected) > 100
    actual = {r[0]: r[1:] for r in got}
    for row in expected.itertuples():
        as_of_date, recency, freq, money, r, f, m, segment = actual[row.customer_key]
        assert as_of_date == AS_OF
        assert (recency, freq, Decimal(money), r, f, m, segment) == (
            row.recency_days,
            row.frequency_orders,
            row.monetary_amount,
            row.r_score,
            row.f_score,
            row.m_score,
            row.rfm_segment,
        ), row.customer_id
    assert dim_count >= len(got)
    assert tiers <= {"customer", "member", "partner"} and "customer" in tiers

    # Predicted value: every buyer's calibration summary as the yardstick computes it, and the
    # models fitted on exactly those summaries (the fit itself: tests/plugins/value).
    from crm_pipeline.value import clv

    summaries = value_summaries(crm_env["landing"], AS_OF, "Asia/Shanghai", SECRET)
    with Warehouse.from_url(crm_env["url"]) as wh:
        value = {
            r[0]: r[1:]
            for r in wh.fetchall(
                "select customer_key, repeat_purchases, recency_weeks, age_weeks, mean_repeat_value, p_alive, "
                "expected_orders_365d, clv_12m, parameters_as_of from marts.fct_customer_value"
            )
        }
        fit = wh.fetchone("select status, r, alpha, a, b, p, q, v, customers from audit.value_fits")
        model = wh.fetchone(
            "select as_of_date, parameters_as_of, customers, repeat_customers, bgnbd_r, gg_q "
            "from marts.fct_customer_value_model"
        )
    # Everyone with a counted order (fct_customer_rfm's people), and no one else.
    assert set(value) == set(summaries) == set(actual) and sum(1 for s in summaries.values() if s[0] > 0) >= 30
    for key, (x, t_x, age, mean) in summaries.items():
        got_x, got_t_x, got_age, got_mean, p_alive, orders, clv_12m, params_as_of = value[key]
        assert (got_x, got_t_x, got_age) == (x, pytest.approx(t_x), pytest.approx(age)), key
        assert got_mean == (None if mean is None else pytest.approx(mean)), key
        assert 0 < p_alive <= 1 and orders >= 0 and clv_12m >= 0 and params_as_of == AS_OF
    x, t_x, age, mean = (np.array([s[i] or 0 for s in summaries.values()], dtype=float) for i in range(4))
    bgnbd, gamma_gamma = clv.fit_bgnbd(x, t_x, age), clv.fit_gamma_gamma(x, mean)
    expected_fit = ("fitted", bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b, gamma_gamma.p, gamma_gamma.q, gamma_gamma.v)
    assert fit[:8] == (expected_fit[0], *(pytest.approx(v, rel=1e-4) for v in expected_fit[1:]))  # optimiser tolerance
    assert fit[8] == len(summaries)
    repeat_buyers = sum(1 for s in summaries.values() if s[0] > 0)
    assert model[:4] == (AS_OF, AS_OF, len(summaries), repeat_buyers) and model[4:] == (fit[1], fit[6])
    assert "Predicted value by tier" in proc.stdout and "Community lift (fct_community_lift" in proc.stdout
    # The generator's buyers who stopped buying (ground truth) have the higher churn probability: AUC
    # over repeat buyers (BG/NBD gives a one-time buyer p_alive 1 by construction: nothing to rank).
    with (crm_env["tmp"] / "truth" / "people.csv").open(encoding="utf-8") as fh:
        end_utc = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time(), ZoneInfo("Asia/Shanghai"))
        dropped = {
            hashlib.sha256(f"{SECRET}:customer:{r['customer_id']}".encode()).hexdigest()[:32]
            for r in csv.DictReader(fh)
            if r["dropped_out_at"] and dt.datetime.fromisoformat(r["dropped_out_at"]) < end_utc
        }
    repeat = [(1 - value[k][4], k in dropped) for k, s in summaries.items() if s[0] > 0]
    gone, stayed = [c for c, d in repeat if d], [c for c, d in repeat if not d]
    assert len(gone) >= 10 and len(stayed) >= 10
    pairs = [(g > s) + 0.5 * (g == s) for g in gone for s in stayed]
    assert sum(pairs) / len(pairs) >= 0.8  # the area under the ROC curve, counted pair by pair

    # Identity: the run printed its linking score, and it meets the targets.
    from crm_pipeline.identity_eval import score

    with Warehouse.from_url(crm_env["url"]) as wh:
        linked = score(wh, crm_env["tmp"] / "truth")
        community_only = wh.fetchone(
            "select count(*) from marts.dim_customers where not is_customer and (is_forum_member or is_chat_member)"
        )[0]
    assert linked.precision >= 0.99 and linked.recall >= 0.95, linked
    assert linked.true_pairs > 50
    assert community_only > 0  # people who never bought are still in dim_customers

    # Staff: exactly the generator's staff accounts are flagged, and none is a member.

    with (crm_env["tmp"] / "truth" / "people.csv").open(encoding="utf-8") as fh:
        truth_rows = list(csv.DictReader(fh))
    truth_staff = {
        ("forum", r["forum_user_id"]) if r["forum_user_id"] else ("chat", r["chat_sender_id"])
        for r in truth_rows
        if r["is_staff"] == "1"
    }
    with Warehouse.from_url(crm_env["url"]) as wh:
        flagged = set(
            wh.fetchall("select account_type, account_id from intermediate.int_identity__resolved where is_staff")
        )
        staff_keys = wh.fetchone("select count(*) from marts.dim_customers where is_staff")[0]
        members = wh.fetchone(
            "select count(*) from marts.dim_customers where not is_staff and (is_forum_member or is_chat_member)"
        )[0]
        engaged = wh.fetchone("select count(*) from marts.fct_community_engagement")[0]
        staff_engaged = wh.fetchone(
            "select count(*) from marts.fct_community_engagement e "
            "join marts.dim_customers d on e.customer_key = d.customer_key where d.is_staff"
        )[0]
        non_staff = wh.fetchone("select count(*) from marts.dim_customers where not is_staff")[0]
        circle_people = wh.fetchone("select sum(people) from marts.fct_region_circles")[0]
        slots = wh.fetchone("select count(*), count(distinct community_tier) from marts.fct_activity_rhythm")
        onion = dict(wh.fetchall("select onion_layer, count(*) from marts.fct_community_engagement group by 1"))
    assert flagged == truth_staff and len(truth_staff) == 5
    assert staff_keys == 5 and staff_engaged == 0 and engaged == members
    assert circle_people == non_staff  # every person in exactly one (province, city) circle
    assert slots == (4 * 7 * 24, 4)
    assert set(onion) == {"core", "regular", "casual"} and onion["core"] < onion["regular"] < onion["casual"]

    # Negative feedback against the generator's labels (texts known as of the run, staff excluded).
    with (crm_env["tmp"] / "truth" / "texts.csv").open(encoding="utf-8") as fh:
        labels = {(r["source"], r["record_id"]): r for r in csv.DictReader(fh)}
    with Warehouse.from_url(crm_env["url"]) as wh:
        touchpoints = wh.fetchall(
            "select feedback_source, source_record_id from intermediate.int_feedback__touchpoints"
        )
        flagged = {
            (s, i): c
            for s, i, c in wh.fetchall("select source, source_record_id, category from marts.fct_negative_feedback")
        }
        risk = wh.fetchone("select count(*), sum(case when is_at_risk then 1 else 0 end) from marts.fct_customer_risk")
    judged = [k for k in touchpoints if k in labels]
    truth_negative = {k for k in judged if labels[k]["is_negative"] == "1"}
    predicted = {k for k in judged if k in flagged}
    assert len(judged) > 1000 and len(truth_negative) > 100
    precision = len(predicted & truth_negative) / len(predicted)
    recall = len(predicted & truth_negative) / len(truth_negative)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    right = sum(flagged[k] == labels[k]["category"] for k in predicted & truth_negative)
    assert right / len(predicted & truth_negative) >= 0.9
    assert set(flagged) - set(touchpoints) == set()  # every flagged row is a known touchpoint
    assert risk[0] > 0 and 0 < risk[1] < risk[0]


# On PostgreSQL only: on DuckDB, drill 4 reruns a three-day backfill and requires every raw count, load
# batch and mart to stay as they were (tests/e2e/test_fault_drills.py), and dbt's unit tests run in the
# fast lane (tests/plugins/test_dbt_unit.py).
@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_rerunning_a_day_changes_nothing(crm_env, airflow_db):
    generate(crm_env["landing"], crm_env["tmp"] / "truth", customers=150, seed=3, end_date=END)
    env = pipeline_env(crm_env, airflow_db)
    assert run_main(env, END).returncode == 0
    before = {
        "rfm": mart_rows(crm_env["url"], "fct_customer_rfm", "customer_key"),
        "dim": mart_rows(crm_env["url"], "dim_customers", "customer_key"),
    }
    with Warehouse.from_url(crm_env["url"]) as wh:
        raw_before = wh.fetchone("select count(*) from raw.orders")[0]
    proc = run_main(env, END)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert mart_rows(crm_env["url"], "fct_customer_rfm", "customer_key") == before["rfm"]
    assert mart_rows(crm_env["url"], "dim_customers", "customer_key") == before["dim"]
    with Warehouse.from_url(crm_env["url"]) as wh:
        assert wh.fetchone("select count(*) from raw.orders")[0] == raw_before
        assert wh.fetchone("select count(*) from audit.load_batches")[0] == 9  # one file per entity
    # The run leaves dbt's unit tests out; they pass on this engine, every one of them.
    import json

    from conftest import defined_unit_tests
    from crm_pipeline.load.warehouse import parse_url
    from crm_pipeline.transform.dbt import artifacts_dir, run_dbt

    defined = defined_unit_tests()
    run_dbt(["test", "--select", "test_type:unit"], END, url=crm_env["url"])
    results = json.loads((artifacts_dir(parse_url(crm_env["url"])) / "target" / "run_results.json").read_text())
    passed = {r["unique_id"].rsplit(".", 1)[1] for r in results["results"] if r["status"] == "pass"}
    assert len(defined) > 10 and passed == defined
    # PostgreSQL's plan of the touchpoints calls no costly text function in a join (its planner folds a
    # subquery's lower() into the join above unless the subquery is materialized): see test_dbt_unit.py.
    from conftest import costly_touchpoint_joins

    conditions, costly = costly_touchpoint_joins(crm_env["url"], END)
    assert any("strpos(" in c for c in conditions), conditions
    assert costly == []


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
def test_a_failing_task_fails_the_run_and_is_named(crm_env, airflow_db, tmp_path):
    generate(crm_env["landing"], crm_env["tmp"] / "truth", customers=30, seed=1, end_date=END)
    env = pipeline_env(crm_env, airflow_db)
    # A PostgreSQL database that does not exist: the first task cannot connect.
    env.update(CRM_WAREHOUSE_URL="postgresql://postgres@127.0.0.1:5432/crm_no_such_db", CRM_TASK_RETRIES="0")
    proc = run_main(env, END)
    assert proc.returncode != 0
    assert "DAG crm_extract_shop: failed (failed tasks: prepare" in proc.stdout
    assert "run FAILED" in proc.stderr
