"""Summaries over replications: mean and Student-t 95% confidence interval, and paired differences.

Replications are independent (each has its own child seed), so the t interval on their mean is exact for
normal outcomes and asymptotically right otherwise. Arms of one replication share the population and the
purchase occasions, so the difference between two arms is computed replication by replication (paired),
which removes the variance they have in common.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as st

CONFIDENCE = 0.95


def mean_ci(values: Sequence[float] | Any, confidence: float = CONFIDENCE) -> dict[str, float | int | None]:
    """Mean, standard error and the two-sided t interval. With one replication the interval is None."""
    x = np.asarray(values, dtype=np.float64)
    n = int(x.shape[0])
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "halfwidth": None, "std_error": None, "n": n}
    se = float(x.std(ddof=1) / math.sqrt(n))
    half = float(st.t.ppf(0.5 + confidence / 2, df=n - 1) * se)
    return {
        "mean": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "halfwidth": half,
        "std_error": se,
        "n": n,
    }


def paired_difference(
    treatment: Sequence[float] | Any, baseline: Sequence[float] | Any, confidence: float = CONFIDENCE
) -> dict[str, float | int | bool | None]:
    """Mean of (treatment - baseline) per replication with its t interval; flags whether it excludes 0."""
    diff = np.asarray(treatment, np.float64) - np.asarray(baseline, np.float64)
    out: dict[str, float | int | bool | None] = dict(mean_ci(diff, confidence))
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
