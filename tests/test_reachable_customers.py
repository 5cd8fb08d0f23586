"""Policy helpers that work a block of customers at a time: CustomerView.reachable_customers (the reachable
mask's customers as int32 indices) and uniform_below (a plan's uniforms against a threshold)."""

from __future__ import annotations

import numpy as np
import pytest

from masssim.policies import base
from masssim.policies.base import ARM_CHANNELS, CustomerView, uniform_below


def _view(n: int, seed: int) -> CustomerView:
    rng = np.random.default_rng(seed)
    zeros = np.zeros(n, np.uint8)
    return CustomerView(
        n=n,
        region=zeros,
        age_band=zeros,
        income_band=zeros,
        observables=None,
        contactable=rng.random(n) < 0.9,
        optin=rng.integers(0, 16, n).astype(np.uint8),
        sends=zeros.astype(np.uint16),
        opens=zeros.astype(np.uint16),
        clicks=zeros.astype(np.uint16),
        channel_order=(2, 0),
    )


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_reachable_customers_are_the_reachable_masks_indices(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(base, "REACHABLE_BLOCK", block)  # blocks that cut the population anywhere
    for n in (0, 1, 100, 1000):
        view = _view(n, n)
        for channel in (0, 1, 3, ARM_CHANNELS):
            who = view.reachable_customers(channel)
            assert who.dtype == np.int32
            np.testing.assert_array_equal(who, np.flatnonzero(view.reachable(channel)))
            bits = base.channel_bits(channel, view.channel_order)  # the numpy path, a block at a time
            by_blocks = base.reachable_rows_numpy(view.contactable, view.optin, bits, np.int32)
            assert by_blocks.dtype == np.int32
            np.testing.assert_array_equal(by_blocks, who)


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_uniform_below_makes_the_draws_of_one_call_for_the_whole_plan(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(base, "UNIFORM_BLOCK", block)
    for n in (0, 1, 100, 1000):
        per_row = np.random.default_rng(n + 1).random(n)
        for threshold in (0.0, 0.3, 1.0, per_row):
            whole, blocks = np.random.default_rng(n), np.random.default_rng(n)
            expected = whole.random(n) < threshold
            if isinstance(threshold, np.ndarray):
                got = uniform_below(blocks, n, threshold.__getitem__)
            else:
                got = uniform_below(blocks, n, threshold)
            assert got.dtype == bool
            np.testing.assert_array_equal(got, expected)
            # the policy's stream is left where one call would leave it
            assert whole.random() == blocks.random()


@pytest.mark.parametrize("n", [0, 1, 2, 1000, 100_003])
def test_compiled_reachable_rows_are_the_numpy_ones(n: int) -> None:
    rng = np.random.default_rng(n)
    contactable = rng.random(n) < 0.9
    optin = rng.integers(0, 16, n).astype(np.uint8)
    for bits in (np.uint8(0), np.uint8(1), np.uint8(6), np.uint8(15)):
        got = base.reachable_rows(contactable, optin, bits, np.int32)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, base.reachable_rows_numpy(contactable, optin, bits, np.int32))
    everyone = np.ones(n, bool)
    every_row = base.reachable_rows(everyone, np.full(n, 1, np.uint8), np.uint8(1), np.int32)
    np.testing.assert_array_equal(every_row, np.arange(n))


@pytest.mark.parametrize("n", [0, 1, 2, 1000, 100_003])
@pytest.mark.parametrize("size", [1, 7, 300])
def test_reachable_rows_with_their_segments_are_the_rows_then_a_gather_and_a_count(n: int, size: int) -> None:
    """The compiled pass (when numba is there) against the numpy definition and against the steps apart: every
    row reachable, none, or some; int64 rows take the numpy path."""
    rng = np.random.default_rng(n + size)
    contactable = rng.random(n) < 0.8
    optin = rng.integers(0, 16, n).astype(np.uint8)
    segment = rng.integers(0, size, n).astype(np.int32)
    for bits in (np.uint8(0), np.uint8(1), np.uint8(6), np.uint8(15)):
        who = base.reachable_rows_numpy(contactable, optin, bits, np.int32)
        expected = (who, segment[who], np.bincount(segment[who], minlength=size))
        for dtype in (np.int32, np.int64):
            for got in (
                base.reachable_rows_and_segments(contactable, optin, bits, dtype, segment, size),
                base.reachable_rows_and_segments_numpy(contactable, optin, bits, dtype, segment, size),
            ):
                assert got[0].dtype == dtype and got[1].dtype == np.int32 and got[2].dtype == np.int64
                for a, b in zip(got, expected, strict=True):
                    np.testing.assert_array_equal(a, b)
