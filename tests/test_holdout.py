"""The holdout's interval keeps each tail near 2.5% at a small holdout (masssim.estimation.holdout).

The estimator is tested on simulated purchase counts directly (that is all it sees of a run): per customer,
purchases ~ Poisson(rate), rate ~ Gamma(shape 0.5) (NBD: rare, very unequal buying, as in the model). Over
many seeded replications, each tail's misses — interval wholly below the truth, wholly above it — are counted.
Tolerance: if a tail is right, its misses are Binomial(REPLICATIONS, 0.025); the test accepts the central
99.9% of that distribution (scipy's binomial quantiles), so a correct interval fails one time in a thousand.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from masssim.estimation.holdout import (
    MIN_HOLDOUT_BUYERS,
    bootstrap_t_interval,
    buyers,
    pooled_bootstrap_t_interval,
    purchase_histogram,
    wald_interval,
)
from masssim.estimation.intervals import mean_ci

REPLICATIONS = 1000
TAIL = 0.025
LOW_BOUND = int(binom.ppf(0.0005, REPLICATIONS, TAIL))
HIGH_BOUND = int(binom.isf(0.0005, REPLICATIONS, TAIL))
SHAPE = 0.5  # Gamma shape of the purchase rates


def _tails(n_holdout: int, holdout_mean: float, seed: int, *, judge_small: bool) -> dict[str, int]:
    """Misses of each tail over REPLICATIONS, for the bootstrap-t and (same samples) the Wald interval.
    Without ``judge_small``, a holdout with fewer than MIN_HOLDOUT_BUYERS buyers makes no claim (no miss)."""
    rng = np.random.default_rng(seed)
    n_treated = 9 * n_holdout  # a 10% holdout
    treated_mean = holdout_mean * 1.2  # marketing adds 20% to purchases
    truth = n_treated * (treated_mean - holdout_mean)
    out = {"below": 0, "above": 0, "wald_below": 0, "wald_above": 0, "too_small": 0}
    for _ in range(REPLICATIONS):
        treated = purchase_histogram(rng.poisson(rng.gamma(SHAPE, treated_mean / SHAPE, n_treated)))
        holdout = purchase_histogram(rng.poisson(rng.gamma(SHAPE, holdout_mean / SHAPE, n_holdout)))
        w_low, w_high = wald_interval(treated, holdout)
        out["wald_below"] += w_high < truth
        out["wald_above"] += w_low > truth
        if not judge_small and buyers(holdout) < MIN_HOLDOUT_BUYERS:
            out["too_small"] += 1
            continue
        low, high = bootstrap_t_interval(treated, holdout, rng)
        out["below"] += high < truth
        out["above"] += low > truth
    return out


def test_each_tail_stays_near_2_5_percent_at_a_180_customer_holdout() -> None:
    # About 18 purchases in the holdout: the Wald interval is lopsided here, too often wholly above the truth.
    tails = _tails(180, 0.10, seed=2026, judge_small=True)
    assert LOW_BOUND <= tails["below"] <= HIGH_BOUND, tails
    assert LOW_BOUND <= tails["above"] <= HIGH_BOUND, tails
    # The test can fail: on the same samples the Wald interval's upper tail is out of bounds.
    assert tails["wald_above"] > HIGH_BOUND, tails


def test_a_holdout_with_few_buyers_is_too_small_to_tell_rather_than_overstated() -> None:
    # About 5 purchases in the holdout: often too few buyers to judge; when judged, no tail is overstated.
    tails = _tails(180, 0.03, seed=2027, judge_small=False)
    assert tails["too_small"] > REPLICATIONS // 10, tails
    assert tails["below"] <= HIGH_BOUND and tails["above"] <= HIGH_BOUND, tails


def test_the_interval_is_reproducible_and_brackets_the_estimate() -> None:
    treated = np.array([900, 80, 15, 5])
    holdout = np.array([90, 7, 2, 1])
    one = bootstrap_t_interval(treated, holdout, np.random.default_rng(1))
    again = bootstrap_t_interval(treated, holdout, np.random.default_rng(1))
    assert one == again
    estimate = 1000 * ((80 + 30 + 15) / 1000 - (7 + 4 + 3) / 100)
    assert one[0] < estimate < one[1]
    # nothing to resample: the estimate itself
    assert bootstrap_t_interval(np.array([10]), np.array([5]), np.random.default_rng(1)) == (0.0, 0.0)


def test_the_pooled_interval_of_several_small_replications_keeps_each_tail_near_2_5_percent() -> None:
    # What a run's reading uses: 5 replications of a 60-customer holdout (about 6 holdout purchases each),
    # every replication's customers resampled within their groups. B = 999 resamples here (the engine uses
    # 1999) to keep the test fast: B only sets how finely the t quantiles are estimated.
    rng = np.random.default_rng(2028)
    n_holdout, n_treated, holdout_mean, replications = 60, 540, 0.10, 5
    treated_mean = holdout_mean * 1.2
    truth = n_treated * (treated_mean - holdout_mean)
    below = above = t_below = t_above = too_small = 0
    for _ in range(REPLICATIONS):
        groups = [
            (
                purchase_histogram(rng.poisson(rng.gamma(SHAPE, treated_mean / SHAPE, n_treated))),
                purchase_histogram(rng.poisson(rng.gamma(SHAPE, holdout_mean / SHAPE, n_holdout))),
            )
            for _ in range(replications)
        ]
        if sum(buyers(h) for _, h in groups) < MIN_HOLDOUT_BUYERS:
            too_small += 1
            continue
        _, low, high = pooled_bootstrap_t_interval(groups, rng, resamples=999)
        below += high < truth
        above += low > truth
        # the Student-t interval over the replications' estimates, as the summary gives for every metric
        estimates = [n_treated * (_mean(t) - _mean(h)) for t, h in groups]
        stat = mean_ci(estimates)
        t_below += stat["ci_high"] < truth
        t_above += stat["ci_low"] > truth
    assert too_small < REPLICATIONS // 100  # about 30 holdout purchases in all: nearly always judged
    assert LOW_BOUND <= below <= HIGH_BOUND, (below, above, t_below, t_above)
    assert LOW_BOUND <= above <= HIGH_BOUND, (below, above, t_below, t_above)


def _mean(histogram: np.ndarray) -> float:
    return float(histogram @ np.arange(histogram.shape[0]) / histogram.sum())
