"""The statistics say what they claim: 95% intervals cover 95% of the time, paired beats unpaired."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masssim.stats import mean_ci, paired_difference, relative_halfwidth


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
