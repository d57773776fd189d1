"""Fit the lifetime-value models on the as-of day's summaries and write each buyer's predictions.

Runs between the two halves of the build (crm_pipeline.pipeline.build_marts): the first half
builds `int_customers__value_summary`; this fits BG/NBD and Gamma-Gamma on it
(crm_pipeline.value.clv), writes `scoring.customer_value` (the whole table, every build) and the
fit to `audit.value_fits` (one row per as-of day); the second half (dbt tag after_value_fit) makes
`marts.fct_customer_value` from them.

A fit its guards refuse keeps the last good parameters (the latest fitted as-of day on or before
this one), says so in audit.value_fits (status `kept`, and why) and logs a warning; with none ever,
the predictions are null (status `none`). Nothing fails the build: a community too young for a
fit still gets its marts.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np

from crm_pipeline.load.warehouse import Warehouse
from crm_pipeline.value import clv

log = logging.getLogger(__name__)
SUMMARY = "intermediate.int_customers__value_summary"
COLUMNS = [
    ("person_id", "text"),
    ("as_of_date", "date"),
    ("parameters_as_of", "date"),
    ("p_alive", "float"),
    ("expected_purchases_90d", "float"),
    ("expected_purchases_365d", "float"),
    ("expected_purchase_value", "float"),
    ("clv_12m", "float"),
]
BGNBD = ("r", "alpha", "a", "b")
GAMMA_GAMMA = ("p", "q", "v")
FIT_COLUMNS = [
    ("as_of_date", "date"),
    ("status", "text"),  # fitted, kept (the last good parameters, shown) or none (no parameters at all)
    ("parameters_as_of", "date"),
    *[(name, "float") for name in BGNBD + GAMMA_GAMMA],
    ("bgnbd_log_likelihood", "float"),
    ("gamma_gamma_log_likelihood", "float"),
    ("customers", "int"),
    ("repeat_buyers", "int"),
    ("seconds", "float"),
    ("message", "text"),
    ("fitted_at", "timestamp"),
]
WEEKS_90D, WEEKS_365D = 90 / 7, 365 / 7


@dataclass
class ValueRun:
    status: str
    customers: int
    repeat_buyers: int
    parameters_as_of: dt.date | None
    message: str


def ensure_tables(wh: Warehouse) -> None:
    wh.execute("create schema if not exists scoring")
    wh.create_table("scoring.customer_value", COLUMNS)
    wh.create_table("audit.value_fits", FIT_COLUMNS)


def score_customers(wh: Warehouse, as_of: dt.date, annual_discount: float) -> ValueRun:
    """Fit on SUMMARY, predict for every buyer in it, and write both tables (in one transaction)."""
    ensure_tables(wh)
    # In a fixed order: the optimiser's sums, so its last digits, depend on it, and the same day must
    # give the same marts however its rows came back (reruns and drills compare them exactly).
    rows = wh.fetchall(
        "select person_id, repeat_purchases, recency_weeks, age_weeks, coalesce(mean_repeat_value, 0) "
        f"from {SUMMARY} order by person_id"
    )
    people = [r[0] for r in rows]
    x, t_x, age, m_x = (np.array([float(r[i]) for r in rows], dtype=float) for i in range(1, 5))
    repeat_buyers = int((x > 0).sum())
    started = dt.datetime.now(dt.UTC)
    fit, message = _fit(x, t_x, age, m_x)
    status, used_as_of = "fitted", as_of
    if not fit:
        status, used_as_of, fit = _last_good(wh, as_of)
    if status != "fitted":
        log.warning("customer value for %s: %s; %s", as_of, message, _describe(status, used_as_of))
    bgnbd, gamma_gamma = fit if fit else (None, None)
    predictions = _predict(bgnbd, gamma_gamma, x, t_x, age, m_x, annual_discount)
    with wh.transaction():
        wh.execute("delete from scoring.customer_value")
        wh.append_arrow("scoring.customer_value", _table(people, as_of, used_as_of, predictions))
        wh.execute("delete from audit.value_fits where as_of_date = %s", (as_of,))
        wh.append_arrow(
            "audit.value_fits",
            _fit_row(as_of, status, used_as_of, fit, len(people), repeat_buyers, message, started),
        )
    return ValueRun(status, len(people), repeat_buyers, used_as_of, message)


def _fit(x, t_x, age, m_x):
    """(BgNbd, GammaGamma) and "", or None and why the guards refused."""
    try:
        return (clv.fit_bgnbd(x, t_x, age), clv.fit_gamma_gamma(x, m_x)), ""
    except clv.FitError as exc:
        return None, str(exc)


def _last_good(wh: Warehouse, as_of: dt.date) -> tuple[str, dt.date | None, tuple | None]:
    """("kept", its day, its models) for the latest fitted day on or before as_of, else ("none", None, None)."""
    names = BGNBD + GAMMA_GAMMA
    row = wh.fetchone(
        f"select as_of_date, {', '.join(names)}, bgnbd_log_likelihood, gamma_gamma_log_likelihood, customers, "
        "repeat_buyers from audit.value_fits where status = 'fitted' and as_of_date <= %s "
        "order by as_of_date desc limit 1",
        (as_of,),
    )
    if not row:
        return "none", None, None
    day, r, alpha, a, b, p, q, v, ll_bg, ll_gg, customers, repeat_buyers = row
    return (
        "kept",
        day,
        (clv.BgNbd(r, alpha, a, b, ll_bg, customers, 0.0), clv.GammaGamma(p, q, v, ll_gg, repeat_buyers, 0.0)),
    )


def _describe(status: str, used_as_of: dt.date | None) -> str:
    return (
        f"kept the parameters fitted as of {used_as_of}" if status == "kept" else "no usable fit yet: predictions null"
    )


def _predict(bgnbd, gamma_gamma, x, t_x, age, m_x, annual_discount: float) -> dict[str, np.ndarray]:
    if bgnbd is None or x.size == 0:
        empty = np.full(x.size, np.nan)
        return {name: empty for name, _ in COLUMNS[3:]}
    return {
        "p_alive": bgnbd.p_alive(x, t_x, age),
        "expected_purchases_90d": bgnbd.expected_purchases(WEEKS_90D, x, t_x, age),
        "expected_purchases_365d": bgnbd.expected_purchases(WEEKS_365D, x, t_x, age),
        "expected_purchase_value": gamma_gamma.expected_value(x, m_x),
        "clv_12m": clv.clv(bgnbd, gamma_gamma, x, t_x, age, m_x, annual_discount=annual_discount),
    }


def _table(people: list[str], as_of: dt.date, used_as_of: dt.date | None, predictions: dict):
    import pyarrow as pa

    n = len(people)
    columns = {
        "person_id": pa.array(people, pa.string()),
        "as_of_date": pa.array([as_of] * n, pa.date32()),
        "parameters_as_of": pa.array([used_as_of] * n, pa.date32()),
    }
    for name, values in predictions.items():
        columns[name] = pa.array(values, pa.float64(), mask=np.isnan(values))
    return pa.table(columns)


def _fit_row(as_of, status, used_as_of, fit, customers, repeat_buyers, message, started):
    import pyarrow as pa

    bgnbd, gamma_gamma = fit if fit else (None, None)
    fitted = status == "fitted"
    values = {name: getattr(bgnbd, name, None) for name in BGNBD} | {
        name: getattr(gamma_gamma, name, None) for name in GAMMA_GAMMA
    }
    row = {
        "as_of_date": pa.array([as_of], pa.date32()),
        "status": pa.array([status]),
        "parameters_as_of": pa.array([used_as_of], pa.date32()),
        **{name: pa.array([value], pa.float64()) for name, value in values.items()},
        # A kept row shows the parameters in use (those of parameters_as_of); the fit's own figures are that day's.
        "bgnbd_log_likelihood": pa.array([bgnbd.log_likelihood if fitted else None], pa.float64()),
        "gamma_gamma_log_likelihood": pa.array([gamma_gamma.log_likelihood if fitted else None], pa.float64()),
        "customers": pa.array([customers], pa.int64()),
        "repeat_buyers": pa.array([repeat_buyers], pa.int64()),
        "seconds": pa.array([bgnbd.seconds + gamma_gamma.seconds if fitted else None], pa.float64()),
        "message": pa.array([message or None], pa.string()),
        "fitted_at": pa.array([started.replace(tzinfo=None, microsecond=0)], pa.timestamp("us")),
    }
    return pa.table(row)
