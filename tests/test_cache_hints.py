"""The cache hint the compiled loops give (engine/cache_hints.py): it compiles for the arrays the loops hand it
and changes nothing, whether the row it names is the next one, far ahead, or the last."""

from __future__ import annotations

import numpy as np
import pytest

from masssim.engine import cache_hints, kernels

needs_numba = pytest.mark.skipif(not kernels.COMPILED, reason="numba is not installed: only the numpy path exists")


def _gather_with_hints():  # type: ignore[no-untyped-def]
    import numba

    load_soon = kernels.load_soon

    @numba.njit
    def gather(rows, flags, weights, table, ahead):  # type: ignore[no-untyped-def]
        n = rows.shape[0]
        out = np.empty(n, np.float64)
        for i in range(n):
            if i + ahead < n:
                r = rows[i + ahead]
                load_soon(flags, r)
                load_soon(weights, r)
                load_soon(table[r], 0)
            c = rows[i]
            out[i] = np.float64(flags[c]) + np.float64(weights[c]) + np.float64(table[c, 0]) + np.float64(table[c, -1])
        return out

    return gather


@needs_numba
@pytest.mark.parametrize("ahead", [0, 1, cache_hints.ROWS_AHEAD, 10_000])
def test_load_soon_changes_no_value(ahead: int) -> None:
    rng = np.random.default_rng(7)
    n = 5_000
    flags = rng.integers(0, 255, n).astype(np.uint8)
    weights = rng.standard_normal(n).astype(np.float32)
    table = rng.integers(0, 1 << 16, (n, 8)).astype(np.uint16)
    rows = rng.integers(0, n, 3_000)
    before = (flags.copy(), weights.copy(), table.copy())
    got = _gather_with_hints()(rows, flags, weights, table, ahead)
    expected = (
        flags[rows].astype(np.float64)
        + weights[rows].astype(np.float64)
        + table[rows, 0].astype(np.float64)
        + table[rows, -1].astype(np.float64)
    )
    assert np.array_equal(got, expected)
    for array, kept in zip((flags, weights, table), before, strict=True):
        assert np.array_equal(array, kept)


def test_python_load_soon_does_nothing() -> None:
    values = np.arange(4)
    assert cache_hints.python_load_soon(values, 2) is None
    assert np.array_equal(values, np.arange(4))
