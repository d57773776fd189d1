"""Community lift (fct_community_lift) against a community whose lift is known.

The generator gives members a known lift (crm_pipeline.sample.generate, make_lift_orders): after
joining the forum or a chat group, a buyer buys `member_lift` times as often again, and every order
that adds is listed in the ground truth. The true effect on the joiners the mart compares is then
known exactly: their lift orders in their after-window, per person per 30 days. With a lift, the
mart's interval must hold it and exclude zero; without one, the interval must hold zero. The
mart's arithmetic is recomputed here from its panel with pandas (its own implementation of the
formula in the model's header), and the panel's joiners against the generator's join times.

DuckDB only: the mart's SQL runs on PostgreSQL in tests/e2e/test_pipeline.py (every mart, and its
dbt unit test).
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from conftest import SECRET
from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.sample.generate import Volume, generate

pytestmark = pytest.mark.e2e
END = dt.date(2026, 11, 22)
TZ = ZoneInfo("Asia/Shanghai")
WINDOW = 180  # dbt var community_lift_window_days
ENTITIES = ["customers", "orders", "order_items", "refunds", "forum_users", "chat_messages"]


def _build(tmp: Path, lift: float, monkeypatch) -> dict:
    """A 6,000-customer community (few posts and messages: only who joined matters), loaded and built
    as the pipeline does, up to the lift mart."""
    from crm_pipeline import pipeline
    from crm_pipeline.transform import dbt

    generate(
        tmp / "landing",
        tmp / "truth",
        customers=6000,
        seed=5,
        end_date=END,
        volume=Volume(forum_posts=0.05, chat=0.05),
        member_lift=lift,
    )
    url = f"duckdb:///{tmp}/warehouse.duckdb"
    for k, v in {
        "CRM_WAREHOUSE_URL": url,
        "CRM_LANDING_DIR": str(tmp / "landing"),
        "CRM_KEY_SECRET": SECRET,
        "CRM_DBT_ARTIFACTS_DIR": str(tmp / "dbt"),
        "CRM_TIMEZONE": "Asia/Shanghai",
    }.items():
        monkeypatch.setenv(k, v)
    pipeline.prepare_warehouse()
    for entity in ENTITIES:
        pipeline.load_entity_files(entity, END)
    select = ["--select", "+fct_community_lift", "--indirect-selection", "cautious"]
    result = dbt.run_dbt(["build", *select, "--exclude-resource-type", "unit_test"], END)
    assert result.returncode == 0, result.output[-3000:]
    with Warehouse.from_url(url) as wh:
        panel = pd.DataFrame(
            wh.fetchall(
                "select cohort_month, person_id, is_treated, stratum, pre_orders, post_orders, pre_spend, "
                "post_spend from intermediate.int_customers__community_windows"
            ),
            columns=["cohort", "person", "treated", "stratum", "pre_o", "post_o", "pre_s", "post_s"],
        )
        mart = pd.DataFrame(
            wh.fetchall(
                "select cohort_key, matched_treated, purchase_rate_lift, purchase_rate_lift_low, "
                "purchase_rate_lift_high, spend_lift, spend_lift_low, spend_lift_high, purchase_verdict "
                "from marts_build.fct_community_lift"
            ),
            columns=["key", "matched", "lift", "lift_low", "lift_high", "spend", "spend_low", "spend_high", "verdict"],
        ).set_index("key")
        accounts = wh.fetchall(
            "select person_id, account_id from intermediate.int_identity__resolved where account_type = 'customer'"
        )
    return {"panel": panel, "mart": mart, "accounts": accounts, "truth": tmp / "truth"}


def _expected(panel: pd.DataFrame) -> dict[str, dict]:
    """The estimator, written again: per cohort and pooled, the mean over matched joiners of their change
    minus their stratum's mean control change; variance = var(effects)/n + sum_s (n_s/n)^2 var_c,s/m_s."""
    panel = panel.assign(d_o=panel.post_o - panel.pre_o, d_s=panel.post_s - panel.pre_s)
    ctrl = (
        panel[~panel.treated]
        .groupby(["cohort", "stratum"])
        .agg(m=("person", "size"), mo=("d_o", "mean"), ms=("d_s", "mean"), vo=("d_o", "var"), vs=("d_s", "var"))
    )
    ctrl = ctrl[ctrl.m >= 2]
    treated = panel[panel.treated].join(ctrl, on=["cohort", "stratum"], how="inner")
    treated = treated.assign(e_o=treated.d_o - treated.mo, e_s=treated.d_s - treated.ms)
    out = {}
    groups = [(str(c), g) for c, g in treated.groupby("cohort")] + [("all", treated)]
    for key, g in groups:
        n = len(g)
        strata = g.groupby(["cohort", "stratum"]).agg(
            n_s=("person", "size"), m=("m", "first"), vo=("vo", "first"), vs=("vs", "first")
        )
        row = {"matched": n}
        for name, e, v in (("lift", "e_o", "vo"), ("spend", "e_s", "vs")):
            var = g[e].var() / n + ((strata.n_s / n) ** 2 * strata[v] / strata.m).sum()
            se = math.sqrt(var) * 30 / WINDOW
            mean = g[e].mean() * 30 / WINDOW
            row |= {name: mean, f"{name}_low": mean - 1.96 * se, f"{name}_high": mean + 1.96 * se}
        out[key] = row
    return out


def _true_effect(built: dict) -> tuple[float, float]:
    """Joiners' lift orders (and their value) in their own after-window, per matched joiner per 30 days."""
    truth = built["truth"]
    people = pd.read_csv(truth / "people.csv", dtype=str, keep_default_na=False)
    lift = pd.read_csv(truth / "lift_orders.csv", dtype={"order_id": str, "person_id": str})
    lift["day"] = pd.to_datetime(lift.ordered_at, utc=True).dt.tz_convert(TZ).dt.date
    lift = lift.merge(people[["person_id", "customer_id"]], on="person_id")
    customers_of = _customers_of(built)
    panel = built["panel"]
    matched = _matched(panel)
    orders = value = 0.0
    for row in matched.itertuples():
        month_end = (pd.Timestamp(row.cohort) + pd.offsets.MonthEnd(0)).date()
        start, stop = month_end + dt.timedelta(days=1), month_end + dt.timedelta(days=WINDOW)
        mine = lift[lift.customer_id.isin(customers_of[row.person]) & (lift.day >= start) & (lift.day <= stop)]
        orders += len(mine)
        value += mine.amount.sum()
    n = len(matched)
    return orders / n * 30 / WINDOW, value / n * 30 / WINDOW


def _customers_of(built: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for person, customer in built["accounts"]:
        out.setdefault(person, []).append(customer)
    return out


def _matched(panel: pd.DataFrame) -> pd.DataFrame:
    controls = panel[~panel.treated].groupby(["cohort", "stratum"]).size()
    keep = controls[controls >= 2].index
    treated = panel[panel.treated]
    return treated[pd.MultiIndex.from_frame(treated[["cohort", "stratum"]]).isin(keep)]


@pytest.mark.parametrize("lift", [1.0, 0.0])
def test_the_lift_mart_recovers_a_known_lift_and_finds_none_where_there_is_none(lift, tmp_path, monkeypatch):
    built = _build(tmp_path, lift, monkeypatch)
    mart, panel = built["mart"], built["panel"]
    # The mart's arithmetic, against the formula written again on its own panel.
    expected = _expected(panel)
    assert sorted(expected) == sorted(mart.index)
    for key, row in expected.items():
        for name, value in row.items():
            assert float(mart.loc[key, name]) == pytest.approx(value, abs=5e-7), (key, name)  # six decimals

    # The joiners are the generator's: each matched joiner first joined (forum or chat) in their month.
    people = pd.read_csv(built["truth"] / "people.csv", dtype=str, keep_default_na=False)
    joined = {
        c: dt.datetime.fromisoformat(j.replace("Z", "+00:00")).astimezone(TZ).date().replace(day=1)
        for c, j in zip(people.customer_id, people.community_joined_at, strict=True)
        if c and j
    }
    customers_of = _customers_of(built)
    treated = panel[panel.treated]
    agree = sum(
        min(joined.get(c, dt.date.max) for c in customers_of[p]) == cohort
        for p, cohort in zip(treated.person, treated.cohort, strict=True)
    )
    assert agree / len(treated) >= 0.97, (agree, len(treated))
    assert len(_matched(panel)) >= 400

    pooled = mart.loc["all"].map(lambda v: float(v) if isinstance(v, Decimal) else v)
    true_orders, true_value = _true_effect(built)
    assert pooled.lift_low <= true_orders <= pooled.lift_high, (pooled.to_dict(), true_orders)
    assert pooled.spend_low <= true_value <= pooled.spend_high, (pooled.to_dict(), true_value)
    if lift:
        assert true_orders > 0.03 and pooled.lift_low > 0 and pooled.verdict == "buy more", pooled.to_dict()
    else:
        assert true_orders == 0 and pooled.lift_low < 0 < pooled.lift_high and pooled.verdict == "no clear difference"
