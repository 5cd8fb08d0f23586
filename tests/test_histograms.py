"""Counting per-customer integers a block at a time gives np.bincount's integers exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from masssim.estimation.histograms import bincount_in_blocks


@settings(max_examples=200, deadline=None)
@given(
    values=arrays(np.uint16, st.integers(0, 300), elements=st.integers(0, 40)),
    minlength=st.integers(0, 50),
    block=st.integers(1, 64),
    data=st.data(),
)
def test_blocks_count_what_bincount_counts(values, minlength, block, data) -> None:
    leave_out = data.draw(st.none() | arrays(np.bool_, values.shape[0]))
    kept = values if leave_out is None else values[~leave_out]
    expected = np.bincount(kept, minlength=minlength)
    got = bincount_in_blocks(values, minlength, leave_out, block=block)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


def test_the_peak_is_a_block_not_every_value() -> None:
    """The point of it: no int64 copy of the whole input (tracemalloc sees numpy's allocations)."""
    import tracemalloc

    values = np.arange(1 << 22, dtype=np.uint8)  # 4 MiB in, an int64 copy would be 32 MiB
    tracemalloc.start()
    try:
        bincount_in_blocks(values, 256, block=1 << 16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 8 * (1 << 16) + (1 << 16)  # one widened block (and its counts), not 32 MiB
