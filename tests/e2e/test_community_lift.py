"""Community lift (fct_community_lift) against a community whose lift is known.

The generator gives members a known lift (crm_pipeline.sample.generate, make_lift_orders): after
joining the forum or a chat group, a buyer buys `member_lift` times as often again, and every order
that adds is listed in the ground truth. The true effect on the joiners the mart compares is then
known exactly: their lift orders in their after-window, per person per 30 days. Heavier buyers
join more often here (join_bias), and the sample's orders follow the seasons, so a plain
difference in differences credits the season to the community; the mart's ratio form must not.
With a lift, the mart's interval must hold the true effect and exclude zero; without one, it must
hold zero. The mart's arithmetic is recomputed here from its panel with pandas (its own
implementation of the formula in the model's header), and the panel's joiners against the
generator's join times.

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

from conftest import PARSE_CACHE, SECRET
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
        join_bias=1.0,
    )
    url = f"duckdb:///{tmp}/warehouse.duckdb"
    for k, v in {
        "CRM_WAREHOUSE_URL": url,
        "CRM_LANDING_DIR": str(tmp / "landing"),
        "CRM_KEY_SECRET": SECRET,
        "CRM_DBT_ARTIFACTS_DIR": str(tmp / "dbt"),
        "CRM_TIMEZONE": "Asia/Shanghai",
        "CRM_DBT_PARSE_CACHE": PARSE_CACHE,
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
                "select cohort_month, person_id, is_treated, pre_orders, post_orders, pre_spend, post_spend "
                "from intermediate.int_customers__community_windows"
            ),
            columns=["cohort", "person", "treated", "pre_o", "post_o", "pre_s", "post_s"],
        )
        mart = pd.DataFrame(
            wh.fetchall(
                "select cohort_key, treated_people - uncompared_people, purchase_rate_lift, purchase_rate_lift_low, "
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
    """The estimator, written again: per cohort, the non-joiners' growth G = sum after / sum before; each
    joiner's effect u = after - G x before; the lift is the mean u; its variance var(u)/n plus, per
    cohort, (n_c/n)^2 (joiners' mean before / non-joiners' mean before)^2 var(after - G before)/m_c."""
    rows, terms = [], []
    for cohort, g in panel.groupby("cohort"):
        ctrl, joiners = g[~g.treated], g[g.treated]
        growth = {m: ctrl[f"post_{m}"].sum() / ctrl[f"pre_{m}"].sum() for m in ("o", "s")}
        spread = {m: (ctrl[f"post_{m}"] - growth[m] * ctrl[f"pre_{m}"]).var() for m in ("o", "s")}
        ratio = {m: joiners[f"pre_{m}"].mean() / ctrl[f"pre_{m}"].mean() for m in ("o", "s")}
        effects = joiners.assign(**{f"e_{m}": joiners[f"post_{m}"] - growth[m] * joiners[f"pre_{m}"] for m in "os"})
        rows.append(effects.assign(cohort=cohort))
        terms.append((str(cohort), len(joiners), {m: ratio[m] ** 2 * spread[m] / len(ctrl) for m in "os"}))
    effects = pd.concat(rows)
    out = {}
    for key in [t[0] for t in terms] + ["all"]:
        g = effects if key == "all" else effects[effects.cohort.astype(str) == key]
        n = len(g)
        row = {"matched": n}
        for name, m in (("lift", "o"), ("spend", "s")):
            control = sum((k / n) ** 2 * t[m] for c, k, t in terms if key in ("all", c))
            se = math.sqrt(g[f"e_{m}"].var() / n + control) * 30 / WINDOW
            mean = g[f"e_{m}"].mean() * 30 / WINDOW
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
    joiners = built["panel"][built["panel"].treated]
    orders = value = 0.0
    for row in joiners.itertuples():
        month_end = (pd.Timestamp(row.cohort) + pd.offsets.MonthEnd(0)).date()
        start, stop = month_end + dt.timedelta(days=1), month_end + dt.timedelta(days=WINDOW)
        mine = lift[lift.customer_id.isin(customers_of[row.person]) & (lift.day >= start) & (lift.day <= stop)]
        orders += len(mine)
        value += mine.amount.sum()
    n = len(joiners)
    return orders / n * 30 / WINDOW, value / n * 30 / WINDOW


def _customers_of(built: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for person, customer in built["accounts"]:
        out.setdefault(person, []).append(customer)
    return out


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
    assert len(treated) >= 400 and (mart.matched == mart.loc["all", "matched"]).sum() == 1  # all compared
    # Joiners are heavier buyers, and the season moves everyone: a plain difference in differences
    # (joiners' change less non-joiners' change) falls outside the mart's interval, which holds the truth.
    plain = (
        sum(
            (g[g.treated].post_o - g[g.treated].pre_o).sum()
            - (g[~g.treated].post_o - g[~g.treated].pre_o).mean() * g.treated.sum()
            for _, g in panel.groupby("cohort")
        )
        / len(treated)
        * 30
        / WINDOW
    )

    pooled = mart.loc["all"].map(lambda v: float(v) if isinstance(v, Decimal) else v)
    true_orders, true_value = _true_effect(built)
    assert pooled.lift_low <= true_orders <= pooled.lift_high, (pooled.to_dict(), true_orders)
    assert pooled.spend_low <= true_value <= pooled.spend_high, (pooled.to_dict(), true_value)
    assert not pooled.lift_low <= plain <= pooled.lift_high, (plain, true_orders, pooled.to_dict())
    if lift:
        assert true_orders > 0.03 and pooled.lift_low > 0 and pooled.verdict == "buy more", pooled.to_dict()
    else:
        assert true_orders == 0 and pooled.lift_low < 0 < pooled.lift_high and pooled.verdict == "no clear difference"
