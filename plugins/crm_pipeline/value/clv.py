"""Customer lifetime value: BG/NBD for repeat purchases, Gamma-Gamma for their value.

Per person, on an as-of day, the calibration summary is (time in weeks):

* x: repeat purchases: distinct purchase days after the first (same-day orders are one purchase);
* t_x: weeks from the first purchase to the last;
* age (the papers' T): weeks from the first purchase to the end of the as-of day;
* m_x: the mean value of the repeat purchases (net of refunds), for Gamma-Gamma (x > 0 only).

BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): while alive, a
person buys at a Poisson rate (gamma-distributed across people, r and alpha) and after each
purchase drops out with a probability (beta-distributed, a and b). Gamma-Gamma (Fader, Hardie and
Lee 2005, "RFM and CLV: using iso-value curves"; Colombo and Jiang 1999): a person's purchase
values are gamma around a mean that is itself gamma across people (p, q, v), independent of how
often they buy. Both are fitted by maximum likelihood on the log of the parameters (so they stay
positive), inside bounds, with scipy; a fit that does not converge, or has too few repeat buyers,
raises FitError, and the caller keeps the last good parameters.

The formulas are the papers' (equation numbers in comments); tests check them against values
worked out by hand and reproduce the papers' CDNOW figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

# Fewer repeat buyers than this and the dropout and spend parameters are not identified well
# enough to act on: the fit refuses (FitError) and the last good parameters stay.
MIN_REPEAT_BUYERS = 30
LOG_BOUND = 10.0  # each parameter within [e^-10, e^10]: a bound hit is a failed fit, not a result


class FitError(RuntimeError):
    """A fit that must not be used: too little data, no convergence, or a parameter at its bound."""


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    seconds: float

    def p_alive(self, x, t_x, age):
        """P(still alive | x, t_x, age) (equation 12)."""
        x, t_x, age = _arrays(x, t_x, age)
        return 1.0 / (1.0 + self._dropout_odds(x, t_x, age))

    def expected_purchases(self, t, x, t_x, age):
        """Expected purchases in the next t weeks given x, t_x, age (equation 10)."""
        x, t_x, age = _arrays(x, t_x, age)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + age + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1) * (1 - ((alpha + age) / (alpha + age + t)) ** (r + x) * hyp)
        return head / (1.0 + self._dropout_odds(x, t_x, age))

    def _dropout_odds(self, x, t_x, age):
        """delta(x > 0) a / (b + x - 1) ((alpha + age) / (alpha + t_x))^(r + x): the odds of having dropped out."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = a / (b + x - 1) * ((alpha + age) / (alpha + t_x)) ** (r + x)
        return np.where(x > 0, odds, 0.0)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float
    log_likelihood: float
    customers: int
    seconds: float

    def expected_value(self, x, m_x):
        """E(value of a purchase | x, m_x) (equation 5 of the iso-value paper); the population mean
        p v / (q - 1) for someone with no repeat purchase yet (x = 0)."""
        x, m_x = _arrays(x, m_x)
        p, q, v = self.p, self.q, self.v
        return (p * (v + x * m_x)) / (p * x + q - 1)


def bgnbd_log_likelihood(params, x, t_x, age) -> np.ndarray:
    """Each person's log-likelihood under BG/NBD (equation 6), params = (r, alpha, a, b)."""
    r, alpha, a, b = params
    x, t_x, age = _arrays(x, t_x, age)
    ln_a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    ln_a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    ln_a3 = -(r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_a4 = np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + t_x)
    ln_a4 = np.where(x > 0, ln_a4, -np.inf)
    return ln_a1 + ln_a2 + np.logaddexp(ln_a3, ln_a4)


def gamma_gamma_log_likelihood(params, x, m_x) -> np.ndarray:
    """Each repeat buyer's log-likelihood of their mean repeat value under Gamma-Gamma, params = (p, q, v):
    the density of m_x given x (x m_x is a sum of x gamma(p, nu) values, nu gamma(q, v) across people)."""
    p, q, v = params
    x, m_x = _arrays(x, m_x)
    return (
        special.gammaln(p * x + q)
        - special.gammaln(p * x)
        - special.gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m_x)
        + (p * x) * np.log(x)
        - (p * x + q) * np.log(v + x * m_x)
    )


def fit_bgnbd(x, t_x, age, start=(1.0, 1.0, 1.0, 1.0)) -> BgNbd:
    """BG/NBD by maximum likelihood; FitError when it must not be used."""
    x, t_x, age = _arrays(x, t_x, age)
    _check_summary(x, t_x, age)
    if int((x > 0).sum()) < MIN_REPEAT_BUYERS:
        raise FitError(f"{int((x > 0).sum())} repeat buyers: at least {MIN_REPEAT_BUYERS} are needed")
    began = time.perf_counter()
    # Scale time so alpha starts near 1 whatever the unit; the likelihood is fitted in that scale.
    scale = 10.0 / max(float(age.max()), 1e-9)
    params, _ = _maximise(lambda p: bgnbd_log_likelihood(p, x, t_x * scale, age * scale).sum(), start)
    r, alpha, a, b = params
    # Back to weeks: alpha is a time scale; the log-likelihood of the data in weeks differs by a constant.
    alpha /= scale
    ll_weeks = float(bgnbd_log_likelihood((r, alpha, a, b), x, t_x, age).sum())
    return BgNbd(r, alpha, a, b, ll_weeks, int(x.size), time.perf_counter() - began)


def fit_gamma_gamma(x, m_x, start=(1.0, 1.0, 1.0)) -> GammaGamma:
    """Gamma-Gamma on the repeat buyers (x > 0, m_x > 0) by maximum likelihood; FitError when it must not be used."""
    x, m_x = _arrays(x, m_x)
    keep = (x > 0) & (m_x > 0)
    x, m_x = x[keep], m_x[keep]
    if x.size < MIN_REPEAT_BUYERS:
        raise FitError(f"{x.size} repeat buyers with a positive value: at least {MIN_REPEAT_BUYERS} are needed")
    began = time.perf_counter()
    scale = 1.0 / float(np.median(m_x))  # values near 1: v is a value scale, p and q are not
    params, _ = _maximise(lambda p: gamma_gamma_log_likelihood(p, x, m_x * scale).sum(), start)
    p, q, v = params
    v /= scale
    if q <= 1:
        raise FitError(f"Gamma-Gamma q = {q:.3f} <= 1: the mean purchase value is infinite")
    ll = float(gamma_gamma_log_likelihood((p, q, v), x, m_x).sum())
    return GammaGamma(p, q, v, ll, int(x.size), time.perf_counter() - began)


def clv(bgnbd: BgNbd, gg: GammaGamma, x, t_x, age, m_x, months: int = 12, annual_discount: float = 0.10):
    """Expected value of each person's purchases over the next `months` months, discounted monthly:
    sum over month i of (E[purchases by month i] - E[purchases by month i-1]) x E[value] / (1 + d)^i,
    with a month 52/12 weeks and d the monthly rate equivalent to `annual_discount`."""
    x, t_x, age, m_x = _arrays(x, t_x, age, m_x)
    value = gg.expected_value(x, np.where(x > 0, m_x, 0.0))
    monthly = (1 + annual_discount) ** (1 / 12) - 1
    week_months = 52 / 12
    total = np.zeros_like(age)
    previous = np.zeros_like(age)
    for i in range(1, months + 1):
        purchases = bgnbd.expected_purchases(i * week_months, x, t_x, age)
        total += (purchases - previous) * value / (1 + monthly) ** i
        previous = purchases
    return total


def _maximise(log_likelihood, start):
    """The parameters (and log-likelihood) that maximise it, searched on their logs within bounds."""

    def negative(log_params):
        value = log_likelihood(np.exp(log_params))
        return -value if np.isfinite(value) else np.inf

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    res = optimize.minimize(negative, np.log(start), method="L-BFGS-B", bounds=bounds)
    if not res.success or not np.isfinite(res.fun):
        raise FitError(f"the fit did not converge: {res.message}")
    if np.any(np.abs(res.x) > LOG_BOUND - 1e-3):
        raise FitError(f"a parameter reached its bound: {np.exp(res.x).round(6).tolist()}")
    return tuple(float(v) for v in np.exp(res.x)), -float(res.fun)


def _arrays(*columns):
    return tuple(np.asarray(c, dtype=float) for c in columns)


def _check_summary(x, t_x, age) -> None:
    if x.size == 0:
        raise FitError("no customers")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > age + 1e-9) or np.any((x == 0) & (t_x != 0)):
        raise FitError("summary out of range: need x >= 0, 0 <= t_x <= age, and t_x = 0 when x = 0")
