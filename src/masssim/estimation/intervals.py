"""Summaries over replications: mean and 95% confidence interval, and paired differences.

Replications are independent (each has its own child seed). A metric whose range is unbounded gets the
Student-t interval, exact for normal outcomes and asymptotically right otherwise. A metric with a known
range (a share in [0, 1], a count or a time >= 0) gets the same t interval built on a transformed scale and
mapped back (logit for a share, log for a positive quantity; the delta method on the mean): the interval
stays inside the range, and with 3-10 replications of skewed outcomes near a bound it covers the mean more
often than the plain t interval, which puts part of itself where the mean cannot be (tests/test_stats.py
measures both). Arms of one replication share the population and the purchase occasions, so the difference
between two arms is computed replication by replication (paired), which removes the variance they have in
common.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats as st

CONFIDENCE = 0.95

# (lowest, highest) value a metric can take; None is no bound.
Bounds = tuple[float | None, float | None]
UNBOUNDED: Bounds = (None, None)


@lru_cache(maxsize=256)
def _t_quantile(confidence: float, dof: int) -> float:
    # Cached: a sweep asks for the same few quantiles for every cell, arm and metric.
    return float(st.t.ppf(0.5 + confidence / 2, df=dof))


def bounded_interval(mean: float, se: float, q: float, bounds: Bounds) -> tuple[float, float]:
    """The interval ``mean +- q*se`` built on the scale where ``bounds`` disappear, mapped back.

    [0, 1] -> logit, [low, inf) -> log(x - low), (-inf, high] -> log(high - x), two finite bounds -> logit of
    the position between them; the half-width on that scale is ``q*se*g'(mean)`` (delta method). A mean on
    a bound can only come from replications that all sit on it (the values are inside the range), so the
    interval is that point. Without bounds this is the plain t interval.
    ``q`` is the t quantile, ``se`` the standard error of the mean.
    """
    low, high = bounds
    if se == 0.0 or (low is None and high is None):
        return mean - q * se, mean + q * se
    if low is None:
        # Only an upper bound: mirror it into a lower one.
        mirrored_low, mirrored_high = bounded_interval(-mean, se, q, (-high, None) if high is not None else bounds)
        return -mirrored_high, -mirrored_low
    width = math.inf if high is None else high - low
    gap = mean - low
    if gap <= 0.0 or gap >= width:
        return mean, mean
    if high is None:
        half = q * se / gap
        return low + gap * math.exp(-half), low + gap * math.exp(half)
    p = gap / width
    centre, half = math.log(p / (1.0 - p)), q * se / (width * p * (1.0 - p))
    return low + width * _expit(centre - half), low + width * _expit(centre + half)


def _expit(z: float) -> float:
    # Written both ways so that neither branch overflows math.exp.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _inside(x: np.ndarray, bounds: Bounds) -> bool:
    low, high = bounds
    return (low is None or bool(np.all(x >= low))) and (high is None or bool(np.all(x <= high)))


def mean_ci(
    values: Sequence[float] | Any, confidence: float = CONFIDENCE, *, bounds: Bounds = UNBOUNDED
) -> dict[str, float | int | None]:
    """Mean, standard error and the two-sided interval. With one replication the interval is None.

    ``bounds``: the metric's range (see masssim.model.metrics). The interval then stays inside it. If a value lies
    outside the declared range (the declaration does not fit the data), the plain t interval is given
    instead, so that nothing is hidden.
    """
    x = np.asarray(values, dtype=np.float64)
    n = int(x.shape[0])
    mean = float(x.mean()) if n else math.nan
    # An infinite value (an interval end the bootstrap could not bound, masssim.estimation.holdout) has a mean but no
    # spread: no interval rather than one computed from inf - inf.
    if n < 2 or not np.all(np.isfinite(x)):
        return {"mean": mean, "ci_low": None, "ci_high": None, "halfwidth": None, "std_error": None, "n": n}
    se = float(x.std(ddof=1) / math.sqrt(n))
    q = _t_quantile(confidence, n - 1)
    low, high = bounded_interval(mean, se, q, bounds if _inside(x, bounds) else UNBOUNDED)
    return {
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        # Half the interval's length: the interval is asymmetric on a bounded metric.
        "halfwidth": (high - low) / 2.0,
        "std_error": se,
        "n": n,
    }


def difference_bounds(bounds: Bounds) -> Bounds:
    """Range of a difference of two values of a metric with range ``bounds`` (e.g. [-1, 1] for shares)."""
    low, high = bounds
    if low is None or high is None:
        return UNBOUNDED
    return (low - high, high - low)


def paired_difference(
    treatment: Sequence[float] | Any,
    baseline: Sequence[float] | Any,
    confidence: float = CONFIDENCE,
    *,
    bounds: Bounds = UNBOUNDED,
) -> dict[str, float | int | bool | None]:
    """Mean of (treatment - baseline) per replication with its t interval; flags whether it excludes 0.

    ``bounds`` is the range of the metric itself: the interval of the difference is cut at the range of a
    difference. Cutting never removes the true difference (it lies inside that range), so coverage is the t
    interval's; a transform would not fit here, since a difference sits naturally at 0, inside its range.
    """
    diff = np.asarray(treatment, np.float64) - np.asarray(baseline, np.float64)
    out: dict[str, float | int | bool | None] = dict(mean_ci(diff, confidence))
    d_low, d_high = difference_bounds(bounds)
    if out["ci_low"] is not None and d_low is not None and d_high is not None:
        out["ci_low"] = max(float(out["ci_low"]), d_low)  # type: ignore[arg-type]
        out["ci_high"] = min(float(out["ci_high"]), d_high)  # type: ignore[arg-type]
        out["halfwidth"] = (float(out["ci_high"]) - float(out["ci_low"])) / 2.0  # type: ignore[arg-type]
    low, high = out["ci_low"], out["ci_high"]
    out["excludes_zero"] = None if low is None or high is None else bool(low > 0 or high < 0)
    return out


def relative_halfwidth(summary: dict[str, float | int | None]) -> float:
    """CI half-width relative to |mean| (inf when undefined): the stopping rule of sequential runs."""
    half, mean = summary.get("halfwidth"), summary.get("mean")
    if half is None or mean is None or mean == 0:
        return math.inf
    return abs(float(half) / float(mean))


def welch_difference(
    a: Sequence[float] | Any, b: Sequence[float] | Any, confidence: float = CONFIDENCE
) -> dict[str, Any]:
    """Difference of means of two independent samples with Welch's t interval: what a comparison would
    report if its runs were not paired."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mean = float(x.mean() - y.mean())
    if x.shape[0] < 2 or y.shape[0] < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "halfwidth": None}
    vx, vy = x.var(ddof=1) / x.shape[0], y.var(ddof=1) / y.shape[0]
    se = math.sqrt(vx + vy)
    if se == 0:
        return {"mean": mean, "ci_low": mean, "ci_high": mean, "halfwidth": 0.0}
    dof = (vx + vy) ** 2 / (vx**2 / (x.shape[0] - 1) + vy**2 / (y.shape[0] - 1))
    half = float(st.t.ppf(0.5 + confidence / 2, df=dof) * se)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "halfwidth": half}
