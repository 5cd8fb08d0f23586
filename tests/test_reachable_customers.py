"""CustomerView.reachable_customers: the reachable mask's customers as int32 indices, block by block."""

from __future__ import annotations

import numpy as np
import pytest

from masssim.policies import base
from masssim.policies.base import ARM_CHANNELS, CustomerView


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
