"""Fitting on the day's summaries and writing predictions (crm_pipeline.value.score), on both engines:
a fit, a refused fit that keeps the last good parameters, and a community with no usable fit yet."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from crm_pipeline.load.warehouse import Warehouse, ensure_schemas
from crm_pipeline.value import clv
from crm_pipeline.value.score import SUMMARY, score_customers

DAY1, DAY2 = dt.date(2026, 11, 21), dt.date(2026, 11, 22)


def _summary(wh: Warehouse, rows: list[tuple]) -> None:
    wh.execute("create schema if not exists intermediate")
    wh.execute(f"drop table if exists {SUMMARY}")
    wh.create_table(
        SUMMARY,
        [("person_id", "text"), ("repeat_purchases", "int")]
        + [(c, "float") for c in ("recency_weeks", "age_weeks", "mean_repeat_value")],
    )
    for row in rows:
        wh.execute(f"insert into {SUMMARY} values (%s, %s, %s, %s, %s)", row)


def _rows(n: int) -> list[tuple]:
    """n buyers, every third one a single purchase, the rest repeat buyers with varied histories."""
    out = []
    for i in range(n):
        x = 0 if i % 3 == 0 else 1 + i % 7
        t_x = 0.0 if x == 0 else 2.0 + (i * 7) % 30
        out.append((f"P{i:04d}", x, t_x, 40.0, None if x == 0 else 20.0 + (i * 13) % 60))
    return out


def test_a_fit_then_a_refused_fit_keeps_the_last_good_parameters(warehouse_url, caplog):
    with Warehouse.from_url(warehouse_url) as wh:
        ensure_schemas(wh)
        rows = _rows(150)
        _summary(wh, rows)
        run = score_customers(wh, DAY1, 0.10)
        assert (run.status, run.customers, run.repeat_buyers, run.parameters_as_of) == ("fitted", 150, 100, DAY1)
        day1 = sorted(wh.fetchall("select * from scoring.customer_value"))
        x, t_x, age, m = ([float(r[i] or 0) for r in rows] for i in range(1, 5))
        bgnbd, gamma_gamma = clv.fit_bgnbd(x, t_x, age), clv.fit_gamma_gamma(x, m)
        got = dict(wh.fetchall("select person_id, p_alive from scoring.customer_value"))
        assert got["P0001"] == pytest.approx(float(bgnbd.p_alive(x[1], t_x[1], age[1])), rel=1e-4)

        # The next day only five buyers are left (too few repeat buyers): the fit is refused, day 1's stays.
        _summary(wh, rows[:5])
        with caplog.at_level(logging.WARNING, logger="crm_pipeline.value.score"):
            run = score_customers(wh, DAY2, 0.10)
        assert (run.status, run.parameters_as_of) == ("kept", DAY1)
        assert "repeat buyers" in run.message and "kept the parameters fitted as of 2026-11-21" in caplog.text
        fits = wh.fetchall("select as_of_date, status, parameters_as_of, r, message from audit.value_fits order by 1")
        assert [(f[0], f[1], f[2]) for f in fits] == [(DAY1, "fitted", DAY1), (DAY2, "kept", DAY1)]
        assert fits[1][3] == fits[0][3] == pytest.approx(bgnbd.r, rel=1e-4) and "at least 30" in fits[1][4]
        got = wh.fetchall(
            "select person_id, as_of_date, parameters_as_of, p_alive, clv_12m from scoring.customer_value order by 1"
        )
        assert [r[0] for r in got] == [r[0] for r in rows[:5]]  # the whole table is this day's
        assert {(r[1], r[2]) for r in got} == {(DAY2, DAY1)}
        assert got[1][3] == pytest.approx(float(bgnbd.p_alive(x[1], t_x[1], age[1])), rel=1e-4)
        assert got[1][4] == pytest.approx(
            float(clv.clv(bgnbd, gamma_gamma, x[1], t_x[1], age[1], m[1], annual_discount=0.10)), rel=1e-3
        )

        # Day 1 again (a backfill), its rows coming back in another order: fitted, the very same
        # predictions to the last digit (reruns are compared exactly), and its row replaced, not added.
        _summary(wh, rows[::-1])
        assert score_customers(wh, DAY1, 0.10).status == "fitted"
        assert sorted(wh.fetchall("select * from scoring.customer_value")) == day1
        assert wh.fetchone("select count(*) from audit.value_fits where as_of_date = %s", (DAY1,)) == (1,)


def test_no_usable_fit_ever_gives_null_predictions(warehouse_url):
    with Warehouse.from_url(warehouse_url) as wh:
        ensure_schemas(wh)
        _summary(wh, _rows(6))
        run = score_customers(wh, DAY1, 0.10)
        assert (run.status, run.parameters_as_of) == ("none", None)
        got = wh.fetchall(
            "select p_alive, expected_purchases_90d, clv_12m, parameters_as_of from scoring.customer_value"
        )
        assert len(got) == 6 and set(got) == {(None, None, None, None)}
        assert wh.fetchone("select status from audit.value_fits") == ("none",)
