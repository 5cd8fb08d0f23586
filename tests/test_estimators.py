"""The holdout estimate of incremental purchases against the simulator's truth, over many seeds.

Because the simulator knows each occasion's counterfactual, every replication has a true incremental effect
beside its holdout estimate. Over many independent replications the estimate must be unbiased and its own
95% interval (estimate +- 1.96 x incremental_purchases_se) must cover the truth about 95% of the time.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binom

import masssim
from conftest import small_scenario

REPLICATIONS = 300


def test_holdout_estimate_is_unbiased_and_its_interval_covers_the_truth() -> None:
    scenario = small_scenario(
        replications=REPLICATIONS,
        horizon_days=14,
        population={"customers": 4_000},
        holdout={"share": 0.2},
        channels={"email": {"adstock_per_click": 1.0}},
    )
    result = masssim.run(scenario, seed=2026, workers=2)
    estimate = np.array(result.values("broadcast", "incremental_purchases"))
    truth = np.array(result.values("broadcast", "incremental_purchases_true"))
    se = np.array(result.values("broadcast", "incremental_purchases_se"))
    assert truth.mean() > 3 * truth.std(ddof=1) / math.sqrt(REPLICATIONS)  # there is an effect to estimate
    error = estimate - truth
    bias_se = error.std(ddof=1) / math.sqrt(REPLICATIONS)
    assert abs(error.mean()) < 4 * bias_se, (error.mean(), bias_se)
    covered = np.abs(error) <= 1.959964 * se
    rate = covered.mean()
    tolerance = 4 * math.sqrt(0.95 * 0.05 / REPLICATIONS)
    assert abs(rate - 0.95) < tolerance, rate
    # The interval is honest: its standard error is not smaller than the error's spread, beyond 4 relative
    # standard errors of a sample standard deviation of normal errors, 1/sqrt(2(n - 1)). It is slightly
    # conservative (the ratio was 1.00-1.13 over nine seeds in session 20, mean 1.06), so above 1 the check is
    # only that it is not wildly so.
    spread = se.mean() / error.std(ddof=1)
    assert 1.0 - 4 / math.sqrt(2 * (REPLICATIONS - 1)) < spread < 1.25, spread
    # The bootstrap-t interval (masssim.estimation.holdout) of the same runs misses on each side about 2.5% of the time:
    # misses ~ Binomial(REPLICATIONS, 0.025) if so; accept its central 99.9%.
    low = np.array(result.values("broadcast", "incremental_purchases_low"))
    high = np.array(result.values("broadcast", "incremental_purchases_high"))
    assert np.all(low <= estimate) and np.all(estimate <= high)
    bounds = binom.ppf(0.0005, REPLICATIONS, 0.025), binom.isf(0.0005, REPLICATIONS, 0.025)
    below, above = int((high < truth).sum()), int((low > truth).sum())
    assert bounds[0] <= below <= bounds[1] and bounds[0] <= above <= bounds[1], (below, above, bounds)
