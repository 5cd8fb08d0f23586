"""Histograms of per-customer integers, counted a block of customers at a time.

``np.bincount`` first widens its input to int64. For a per-customer array that copy is 8 bytes per customer,
more than most of the arrays it counts (purchase counts are uint16, the market's brand masks uint8): at the end
of a run at 10 million customers it was the run's resident peak (docs/model.md §15.3). Counting 2^20 values at
a time gives the same integers, since a histogram is a sum over customers.
"""

from __future__ import annotations

import numpy as np

HISTOGRAM_BLOCK = 1 << 20  # values widened at a time: 8 MiB of int64


def bincount_in_blocks(
    values: np.ndarray, minlength: int = 0, leave_out: np.ndarray | None = None, *, block: int = HISTOGRAM_BLOCK
) -> np.ndarray:
    """``np.bincount(values[~leave_out], minlength=minlength)`` (int64) without widening all of ``values`` at once."""
    total = np.zeros(minlength, np.int64)
    for lo in range(0, values.shape[0], block):
        part = values[lo : lo + block]
        if leave_out is not None:
            part = part[~leave_out[lo : lo + block]]
        counted = np.bincount(part, minlength=minlength)
        if counted.shape[0] > total.shape[0]:
            total = np.concatenate([total, np.zeros(counted.shape[0] - total.shape[0], np.int64)])
        total[: counted.shape[0]] += counted
    return total
