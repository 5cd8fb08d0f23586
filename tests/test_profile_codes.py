"""Profiles (region, age band, income band) numbered in code order, compiled or in numpy, give the same
labels, members and counts (policies/clustering.py profile_codes)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masssim.policies import compiled as compiled_switch
from masssim.policies.clustering import profile_code, profile_codes, profile_segments


def _world(region: np.ndarray, age: np.ndarray, income: np.ndarray) -> SimpleNamespace:
    view = SimpleNamespace(n=region.shape[0], region=region, age_band=age, income_band=income)
    return SimpleNamespace(customers=view)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3000),
    levels=st.tuples(st.integers(1, 70), st.integers(1, 12), st.integers(1, 9)),
    skew=st.sampled_from([1, 4]),
    seed=st.integers(0, 2**32 - 1),
)
def test_compiled_profiles_equal_numpy(n: int, levels: tuple[int, int, int], skew: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Some levels never occur (skewed draws leave the top ones empty): codes are numbered over those present.
    region, age, income = ((rng.random(n) ** skew * k).astype(np.uint8) for k in levels)
    world = _world(region, age, income)
    got = profile_codes(world)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiled_switch, "NUMBA", None)
        want = profile_codes(world)  # type: ignore[arg-type]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    profile, member, counts = got
    # Each profile's member has that profile; counts add up; labels are 0..P-1 in code order.
    np.testing.assert_array_equal(profile[member], np.arange(member.shape[0]))
    assert counts.sum() == n and profile.max() == member.shape[0] - 1
    code = (region.astype(np.int64) * 1000 + age) * 1000 + income
    assert np.all(np.diff(code[member]) > 0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3000), seed=st.integers(0, 2**32 - 1))
def test_compiled_profile_segments_equal_numpy(n: int, seed: int) -> None:
    """The shards' table of segments by profile code: the same codes and segments either way."""
    rng = np.random.default_rng(seed)
    region, age, income = (rng.integers(0, k, n).astype(np.uint8) for k in (64, 12, 9))
    world = _world(region, age, income)
    profile, _, _ = profile_codes(world)  # type: ignore[arg-type]
    segment_of = (rng.permutation(profile.max() + 1) % 7)[profile].astype(np.int32)  # a function of the profile
    got = profile_segments(world.customers, segment_of)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiled_switch, "NUMBA", None)
        want = profile_segments(world.customers, segment_of)  # type: ignore[arg-type]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    codes, segments = got
    assert codes.shape[0] == profile.max() + 1  # every profile present, once
    np.testing.assert_array_equal(segments[np.searchsorted(codes, profile_code(region, age, income))], segment_of)
