"""The holdout's own interval in one replication, and when the holdout is too small to tell.

The holdout estimate of incremental purchases is ``n_T (mean_T - mean_H)``, the difference of the mean
purchases per customer in the treated (T) and holdout (H) groups, scaled to the treated group. Purchases of
one brand are rare and very unequal between customers (NBD), so with a small holdout its mean is strongly
right-skewed, and the Wald interval ``estimate +- 1.96 se`` is lopsided: when the holdout happens to buy
little, the estimate is high *and* its standard error small, so the interval lies wholly above the truth
far more often than 2.5% of the time, while it seldom lies below it. A one-sided claim of positive lift
read from it is overstated.

Here the interval is a **bootstrap-t** (studentized bootstrap; Efron & Tibshirani 1993, ch. 12; Hall 1988),
which corrects for that skew: the distribution of ``t* = (d* - d) / se*`` over resamples of the customers
replaces the normal quantiles, so the interval is longer on the side the skew calls for. Per-customer
purchase counts are small integers, so a group is resampled as a multinomial draw over its histogram (how
many customers bought 0, 1, 2, ... times): a resample costs a handful of numbers, whatever the group's size.

Even so, a holdout with only a few buyers cannot show its own skew; below ``MIN_HOLDOUT_BUYERS`` buyers the
reading says the holdout is too small to tell. tests/test_holdout.py measures each tail's misses on
simulated counts at a 180-customer holdout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from masssim.estimation.histograms import bincount_in_blocks

CONFIDENCE = 0.95
RESAMPLES = 1999  # (B + 1) x 0.025 is a whole number: the 2.5% quantiles fall on resamples
# Fewer holdout customers who bought than this and the reading does not judge the lift from the holdout:
# the classic least count for a normal approximation of counts (5; Cochran 1954), which the bootstrap-t then
# corrects for skew (tests/test_holdout.py: tails near 2.5% at 180 customers down to about 5 expected buyers).
MIN_HOLDOUT_BUYERS = 5


def purchase_histogram(counts: np.ndarray) -> np.ndarray:
    """Customers by number of purchases: entry k is how many bought exactly k times (int64)."""
    return bincount_in_blocks(np.asarray(counts), minlength=1)


def buyers(histogram: np.ndarray) -> int:
    """Customers who bought at least once."""
    return int(histogram[1:].sum())


def _moments(resampled: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Means and sample variances of resampled groups given as rows of counts per value."""
    total = resampled @ values
    squares = resampled @ (values * values)
    mean = total / n
    variance = np.maximum(squares - n * mean * mean, 0.0) / (n - 1)
    return mean, variance


def bootstrap_t_interval(
    treated: np.ndarray,
    holdout: np.ndarray,
    rng: np.random.Generator,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
) -> tuple[float, float]:
    """Bootstrap-t interval of ``n_T (mean_T - mean_H)`` from the two groups' purchase histograms.

    Returns (low, high) in purchases. With fewer than two customers in a group, or no spread at all, there
    is nothing to resample: the interval is the estimate itself.
    """
    _, low, high = pooled_bootstrap_t_interval([(treated, holdout)], rng, confidence=confidence, resamples=resamples)
    return low, high


def pooled_bootstrap_t_interval(
    groups: Sequence[tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
) -> tuple[float, float, float]:
    """(mean, low, high): the mean over replications of the holdout estimates ``n_T,r (mean_T,r - mean_H,r)``
    and its bootstrap-t interval, each replication's customers resampled within their own groups (a
    stratified bootstrap; one replication is the one-stratum case). ``groups``: per replication, the treated
    and holdout purchase histograms. The interval is for the average of these replications' effects: the
    replications' own realised worlds are held fixed, as the simulator's true figure is.
    """
    replications = len(groups)
    estimate = 0.0
    variance = 0.0
    shift = np.zeros(resamples)
    boot_variance = np.zeros(resamples)
    spread = False
    for treated_counts, holdout_counts in groups:
        treated = np.asarray(treated_counts, np.int64)
        holdout = np.asarray(holdout_counts, np.int64)
        n_t, n_h = int(treated.sum()), int(holdout.sum())
        values_t = np.arange(treated.shape[0], dtype=np.float64)
        values_h = np.arange(holdout.shape[0], dtype=np.float64)
        mean_t, var_t = _moments(treated[None, :].astype(np.float64), values_t, max(n_t, 2))
        mean_h, var_h = _moments(holdout[None, :].astype(np.float64), values_h, max(n_h, 2))
        d = float(mean_t[0] - mean_h[0])
        estimate += n_t * d
        if n_t < 2 or n_h < 2:
            continue  # a group too small to resample contributes its estimate and no spread
        se2 = float(var_t[0]) / n_t + float(var_h[0]) / n_h
        variance += n_t * n_t * se2
        if se2 == 0.0:
            continue
        spread = True
        draws_t = rng.multinomial(n_t, treated / n_t, size=resamples).astype(np.float64)
        draws_h = rng.multinomial(n_h, holdout / n_h, size=resamples).astype(np.float64)
        boot_mean_t, boot_var_t = _moments(draws_t, values_t, n_t)
        boot_mean_h, boot_var_h = _moments(draws_h, values_h, n_h)
        shift += n_t * (boot_mean_t - boot_mean_h - d)
        boot_variance += n_t * n_t * (boot_var_t / n_t + boot_var_h / n_h)
    mean = estimate / replications
    if not spread:
        return mean, mean, mean
    se = math.sqrt(variance) / replications
    boot_se = np.sqrt(boot_variance) / replications
    shift /= replications
    # A resample with no spread (everyone bought the same) has an infinite t of the shift's sign (0 if none).
    t = np.where(shift > 0, np.inf, np.where(shift < 0, -np.inf, 0.0))
    np.divide(shift, boot_se, out=t, where=boot_se > 0)
    tail = (1.0 - confidence) / 2.0
    # Order statistics, not interpolation: an infinite t must not turn a quantile into inf - inf.
    q_low, q_high = np.quantile(t, [tail, 1.0 - tail], method="inverted_cdf")
    return mean, mean - float(q_high) * se, mean - float(q_low) * se


def wald_interval(treated: np.ndarray, holdout: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The plain ``estimate +- z se`` interval (the one this module replaces), for comparison in tests."""
    treated = np.asarray(treated, np.float64)
    holdout = np.asarray(holdout, np.float64)
    n_t, n_h = int(treated.sum()), int(holdout.sum())
    mean_t, var_t = _moments(treated[None, :], np.arange(treated.shape[0], dtype=np.float64), n_t)
    mean_h, var_h = _moments(holdout[None, :], np.arange(holdout.shape[0], dtype=np.float64), n_h)
    estimate = float(mean_t[0] - mean_h[0])
    half = float(norm.ppf(0.5 + confidence / 2)) * math.sqrt(float(var_t[0]) / n_t + float(var_h[0]) / n_h)
    return (estimate - half) * n_t, (estimate + half) * n_t
