"""The statistics say what they claim: 95% intervals cover 95% of the time, paired beats unpaired."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masssim.engine.sim import ArmOutcome
from masssim.estimation.intervals import bounded_interval, mean_ci, paired_difference, relative_halfwidth
from masssim.model.metrics import ALL, REGISTRY, SIGNED, TIMESERIES
from masssim.reporting.results import RunResult


def test_t_interval_covers_at_nominal_rate() -> None:
    rng = np.random.default_rng(123)
    trials, n = 4_000, 5
    samples = rng.normal(10.0, 3.0, size=(trials, n))
    covered = 0
    for row in samples:
        s = mean_ci(row)
        covered += s["ci_low"] <= 10.0 <= s["ci_high"]
    rate = covered / trials
    se = math.sqrt(0.95 * 0.05 / trials)
    assert abs(rate - 0.95) < 4 * se


def test_paired_difference_flags_zero() -> None:
    base = [10.0, 12.0, 11.0, 13.0]
    better = [b + 1.0 + 0.01 * i for i, b in enumerate(base)]
    d = paired_difference(better, base)
    assert d["excludes_zero"] is True and d["mean"] == pytest.approx(1.015)
    same = paired_difference(base, base)
    assert same["excludes_zero"] is False
    assert paired_difference([1.0], [0.0])["excludes_zero"] is None


def test_one_replication_has_no_interval() -> None:
    s = mean_ci([3.0])
    assert s["mean"] == 3.0 and s["ci_low"] is None
    assert relative_halfwidth(s) == math.inf


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=30))
def test_interval_contains_mean(values: list[float]) -> None:
    s = mean_ci(values)
    assert s["ci_low"] <= s["mean"] + 1e-6 and s["mean"] - 1e-6 <= s["ci_high"]
    assert s["halfwidth"] >= 0


# -- intervals that respect a metric's range ---------------------------------------------------------------


# Small-sample cases shaped like the simulator's per-replication figures: shares near a bound (SLA attainment,
# precision), skewed non-negative counts and times (missed needles, p90 waits), and symmetric ones.
# (name, draw(rng, size) -> samples, true mean, bounds)
SHARE, POSITIVE = (0.0, 1.0), (0.0, None)
CASES = [
    ("share near 1, skewed", lambda r, s: r.beta(19.0, 1.0, s), 0.95, SHARE),
    ("share near 1, tight", lambda r, s: r.beta(97.0, 3.0, s), 0.97, SHARE),
    ("share in the middle", lambda r, s: r.beta(2.0, 2.0, s), 0.5, SHARE),
    ("share of 50 trials", lambda r, s: r.binomial(50, 0.9, s) / 50.0, 0.9, SHARE),
    ("share near 0, skewed", lambda r, s: r.beta(0.5, 4.5, s), 0.1, SHARE),
    ("count, Poisson(2)", lambda r, s: r.poisson(2.0, s).astype(float), 2.0, POSITIVE),
    ("time, gamma k=4", lambda r, s: r.gamma(4.0, 1.0, s), 4.0, POSITIVE),
    ("time, exponential", lambda r, s: r.gamma(1.0, 1.0, s), 1.0, POSITIVE),
    ("symmetric, far from 0", lambda r, s: np.abs(r.normal(10.0, 2.0, s)), 10.0, POSITIVE),
]
TRIALS = 2_000
# Cases whose skew is moderate: there the interval must cover at about the nominal rate. The exponential
# and the skewed share near 0 are harder (the t interval covers 84-89% of the time at n = 3-10); there the
# test only asks that the bounded interval does better than the t interval (next test).
MODERATE = {
    "share near 1, tight",
    "share in the middle",
    "share of 50 trials",
    "count, Poisson(2)",
    "time, gamma k=4",
    "symmetric, far from 0",
    "share near 1, skewed",
}


def _coverage(name: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trial: covered by the bounded interval, covered by the plain t interval, interval in range."""
    _, draw, mu, bounds = next(c for c in CASES if c[0] == name)
    rng = np.random.default_rng([2026, n, CASES.index(next(c for c in CASES if c[0] == name))])
    samples = draw(rng, (TRIALS, n))
    bounded, plain, inside = np.zeros(TRIALS, bool), np.zeros(TRIALS, bool), np.zeros(TRIALS, bool)
    for i, row in enumerate(samples):
        b, t = mean_ci(row, bounds=bounds), mean_ci(row)
        bounded[i] = b["ci_low"] <= mu <= b["ci_high"]
        plain[i] = t["ci_low"] <= mu <= t["ci_high"]
        low, high = bounds
        inside[i] = b["ci_low"] >= low and (high is None or b["ci_high"] <= high)
    return bounded, plain, inside


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 5, 10])
@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_bounded_interval_stays_in_range_and_covers_honestly(name: str, n: int) -> None:
    bounded, plain, inside = _coverage(name, n)
    assert inside.all()
    rate = bounded.mean()
    se = math.sqrt(0.95 * 0.05 / TRIALS)
    if name in MODERATE:
        # Within 2 points of nominal, allowing 3 binomial standard errors of the measured coverage.
        assert 0.93 - 3 * se <= rate <= 0.97 + 3 * se, rate
    # Never worse than the t interval: paired comparison on the same samples (McNemar-style standard error
    # of the difference of two paired proportions, from the discordant trials).
    gained, lost = np.count_nonzero(bounded & ~plain), np.count_nonzero(plain & ~bounded)
    se_diff = math.sqrt(max(gained + lost, 1)) / TRIALS
    assert (gained - lost) / TRIALS >= -3 * se_diff, (rate, plain.mean())


def test_the_plain_t_interval_would_leave_the_range() -> None:
    # The reason for all this: the SLA 97.4% [87.6%, 107.2%] came from the plain t interval.
    values = [0.999, 0.93, 0.993]
    assert mean_ci(values)["ci_high"] > 1.0
    s = mean_ci(values, bounds=(0.0, 1.0))
    assert 0.0 <= s["ci_low"] < s["mean"] < s["ci_high"] <= 1.0
    counts = [0.0, 5.0, 300.0]
    assert mean_ci(counts)["ci_low"] < 0.0
    assert mean_ci(counts, bounds=(0.0, None))["ci_low"] > 0.0


def test_a_mean_on_the_bound_gives_the_point_and_out_of_range_values_fall_back_to_t() -> None:
    s = mean_ci([1.0, 1.0, 1.0], bounds=(0.0, 1.0))
    assert s["ci_low"] == s["ci_high"] == 1.0
    zeros = mean_ci([0.0, 0.0], bounds=(0.0, None))
    assert zeros["ci_low"] == zeros["ci_high"] == 0.0
    # A value outside the declared range: the declaration is wrong, show the plain interval.
    assert mean_ci([-1.0, 2.0, 3.0], bounds=(0.0, None)) == mean_ci([-1.0, 2.0, 3.0])


def test_only_an_upper_bound_mirrors_the_lower_one() -> None:
    low, high = bounded_interval(-0.5, 0.2, 2.0, (None, 0.0))
    mlow, mhigh = bounded_interval(0.5, 0.2, 2.0, (0.0, None))
    assert (low, high) == pytest.approx((-mhigh, -mlow))
    assert high < 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=2, max_size=12),
    st.floats(min_value=0.5, max_value=0.999),
)
def test_share_interval_in_range_and_contains_mean(values: list[float], confidence: float) -> None:
    s = mean_ci(values, confidence, bounds=(0.0, 1.0))
    assert 0.0 <= s["ci_low"] <= s["mean"] + 1e-12
    assert s["mean"] - 1e-12 <= s["ci_high"] <= 1.0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=2, max_size=12),
    st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=2, max_size=12),
)
def test_share_difference_stays_within_plus_minus_one(a: list[float], b: list[float]) -> None:
    k = min(len(a), len(b))
    d = paired_difference(a[:k], b[:k], bounds=(0.0, 1.0))
    assert -1.0 <= d["ci_low"] <= d["ci_high"] <= 1.0


def test_registry_ranges() -> None:
    for name, metric in REGISTRY.items():
        low, high = metric.bounds
        if metric.unit == "share":
            assert (low, high) == (0.0, 1.0), name
        elif name in SIGNED:
            assert (low, high) == (None, None), name
        else:
            assert (low, high) == (0.0, None), name
    assert REGISTRY["sla_attainment"].bounds == (0.0, 1.0)
    assert REGISTRY["incremental_profit"].bounds == (None, None)


def test_run_summary_intervals_never_leave_the_metric_range() -> None:
    # Replications shaped like the issue's: a skewed share near 1 and a skewed count near 0.
    rng = np.random.default_rng(12)
    reps = []
    for _ in range(3):
        metrics = {m: float(rng.gamma(0.5, 100.0)) for m in ALL}
        for m in ALL:
            if REGISTRY[m].unit == "share":
                metrics[m] = float(rng.beta(8.0, 0.4))
        reps.append({"a": ArmOutcome(metrics, np.zeros((1, len(TIMESERIES))), {"bot": {"utilisation": 0.99}})})

    scenario = SimpleNamespace(name="fake", arms=[SimpleNamespace(name="a")])
    summary = RunResult(scenario, 1, reps).summary  # type: ignore[arg-type]
    for m in ALL:
        low, high = REGISTRY[m].bounds
        s = summary["arms"]["a"][m]
        assert low is None or s["ci_low"] >= low, m
        assert high is None or s["ci_high"] <= high, m


def test_an_unbounded_value_gives_a_mean_and_no_interval() -> None:
    # A replication whose bootstrap interval has an infinite end (masssim.estimation.holdout): no inf - inf spread.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = mean_ci([math.inf, math.inf, 3.0])
    assert s["mean"] == math.inf and s["ci_low"] is None and s["ci_high"] is None and s["n"] == 3
