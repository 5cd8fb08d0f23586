"""The compiled releases of a bucket's outcomes (engine/release_kernels.py) against their numpy twins.

As in tests/test_kernels.py: the numpy twins define the kernels, the compiled loops must give the same
integers and floats to the bit on arbitrary inputs (Hypothesis: repeated customers, clicks whose times are not
in order, counters at the top of their dtype); and the twins must be what the engine did before them.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masssim.engine import kernels, release_kernels
from masssim.engine.state import DecayingStock

needs_numba = pytest.mark.skipif(not kernels.COMPILED, reason="numba is not installed: only the numpy path exists")


def _compiled(name: str):  # type: ignore[no-untyped-def]
    return kernels._compiled(getattr(release_kernels, f"_{name}_loop"))


def _bucket(rng: np.random.Generator, n_customers: int, n: int) -> dict[str, np.ndarray]:
    """A bucket's events: repeated customers, times in no order (rows are ordered by bucket, not time)."""
    return {
        "customer": rng.integers(0, n_customers, n).astype(np.int32),
        "creative": rng.integers(0, 40, n).astype(np.int32),
        "channel": rng.integers(0, 3, n).astype(np.int8),
        "time_s": 86_400.0 * 3 + rng.random(n) * 900.0,
    }


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n_customers=st.integers(1, 50), n=st.integers(0, 500), seed=st.integers(0, 2**16), epoch=st.floats(0, 3e5))
def test_adding_to_a_stock_is_what_the_decaying_stock_did(n_customers: int, n: int, seed: int, epoch: float) -> None:
    rng = np.random.default_rng(seed)
    e = _bucket(rng, n_customers, n)
    amount = rng.random(3).astype(np.float32)
    stock = DecayingStock(n_customers, 5 * 86_400.0)
    stock.stored[:] = rng.random(n_customers).astype(np.float32)
    stock.epoch_s = epoch
    before = stock.stored.copy()
    stock.add(e["customer"], e["time_s"], amount[e["channel"]])  # the engine's release before the kernels
    twin = before.copy()
    release_kernels.add_to_stock_numpy(twin, e["customer"], stock.growth(e["time_s"]), amount, e["channel"])
    np.testing.assert_array_equal(twin, stock.stored)
    if kernels.COMPILED:
        fast = before.copy()
        _compiled("add_to_stock")(fast, e["customer"], stock.growth(e["time_s"]), amount, e["channel"])
        np.testing.assert_array_equal(fast, stock.stored)


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(n_customers=st.integers(1, 40), n=st.integers(0, 400), seed=st.integers(0, 2**16))
def test_releasing_clicks_matches_numpy(n_customers: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    e = _bucket(rng, n_customers, n)
    growth = np.exp(rng.random(n) * 3.0)
    amount = rng.random(3).astype(np.float32)
    # Some customers clicked before (times before and after this bucket's), some never; counters near the top.
    last_t = np.where(
        rng.random(n_customers) < 0.5, np.float32(-1e30), (86_400.0 * 3 + rng.random(n_customers) * 1800.0)
    )
    state = (
        rng.random(n_customers).astype(np.float32),
        rng.integers(65_530, 65_536, n_customers).astype(np.uint16),
        last_t.astype(np.float32),
        rng.integers(-1, 40, n_customers).astype(np.int32),
    )
    results = []
    for kernel in (_compiled("release_clicks"), release_kernels.release_clicks_numpy):
        arrays = tuple(a.copy() for a in state)
        kernel(*arrays, e["customer"], e["creative"], e["time_s"], growth, amount, e["channel"])
        results.append(arrays)
    for fast, slow in zip(*results, strict=True):
        np.testing.assert_array_equal(fast, slow)
