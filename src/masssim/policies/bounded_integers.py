"""Uniform random integers below a bound, exactly as numpy draws them, without numpy's call per value.

``rng.integers(0, high, size=n, dtype=np.int32)`` takes each value from one 32-bit output x of the bit
generator (the low half of a 64-bit output, then its high half, the unused half kept in the generator's state
in between) by Lemire's method: ``m = x * high`` as a 64-bit product gives the value ``m >> 32``, unless
``m mod 2^32`` is below ``2^32 mod high``, when x is rejected and the next output taken. numpy does this with a
function call per value (about 2 ns each here). :func:`draw_int32` reads the 64-bit outputs in one call and
turns them into values in one compiled pass (about 1.2 ns each, most of it the generator's), and gives the
same values and leaves the generator in the same state: a run with a rejection in it (a chance of
``(2^32 mod high) / 2^32`` per value: about one in 250,000 for 20,000 creatives) and a half-used output are
left to numpy itself. The random policy's creatives are drawn so (docs/model.md §15.13).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from masssim.policies.compiled import NUMBA, compiled


def _lemire_pairs_loop(raw, high, out):  # type: ignore[no-untyped-def]  # pragma: no cover
    # Two values per 64-bit output, low half first; returns the smallest low word of x * high, so the caller
    # knows whether numpy would have rejected any of them.
    low = np.uint64(0xFFFFFFFF)
    shift = np.uint64(32)
    bound = np.uint64(high)
    smallest = low
    for i in range(raw.shape[0]):
        x = raw[i]
        first = (x & low) * bound
        second = (x >> shift) * bound
        out[2 * i] = np.int32(first >> shift)
        out[2 * i + 1] = np.int32(second >> shift)
        smallest = min(smallest, first & low, second & low)
    return smallest


_lemire_pairs = compiled(_lemire_pairs_loop)
PIECE_PAIRS = 1 << 18  # 64-bit outputs read at a time (2 MB)


def draw_int32(rng: np.random.Generator, high: int, count: int) -> np.ndarray:
    """``rng.integers(0, high, size=count, dtype=np.int32)``: the same values, and ``rng`` left in the same
    state. Compiled for a PCG64 generator on a little-endian machine (where a uint64 array viewed as uint32
    is low half, high half); otherwise, and without numba, numpy's own call."""
    bits = rng.bit_generator
    usable = NUMBA is not None and isinstance(bits, np.random.PCG64) and sys.byteorder == "little"
    if not usable or count < 64 or not 1 < high <= 1 << 31:
        return rng.integers(0, high, size=count, dtype=np.int32)
    out = np.empty(count, np.int32)
    start = 0
    if bits.state["has_uint32"]:  # numpy first takes the half left over from an earlier call
        out[0] = rng.integers(0, high, size=1, dtype=np.int32)[0]
        start = 1
    pairs = (count - start) // 2
    raw = np.empty(0, np.uint64)
    for lo in range(0, pairs, PIECE_PAIRS):  # a piece at a time: the outputs take half the values' memory
        before = bits.state
        raw = bits.random_raw(min(PIECE_PAIRS, pairs - lo))
        at = start + 2 * lo
        smallest = _lemire_pairs(raw, high, out[at : at + 2 * raw.shape[0]])
        if int(smallest) < (1 << 32) % high:  # a value numpy would have rejected: numpy draws the rest
            bits.state = before
            out[at:] = rng.integers(0, high, size=count - at, dtype=np.int32)
            return out
    if (count - start) % 2:  # the last value takes a low half; numpy keeps the high half, as it does here
        out[-1] = rng.integers(0, high, size=1, dtype=np.int32)[0]
    elif raw.shape[0]:  # numpy's state still holds the last high half it handed out (unused: has_uint32 is 0)
        state: Any = bits.state
        state["uinteger"] = int(raw[-1] >> np.uint64(32))
        bits.state = state
    return out
