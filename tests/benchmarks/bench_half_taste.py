"""The read kernel's affinity with taste stored as float16: the cost of reading halves in a compiled loop.

Run:  python tests/benchmarks/bench_half_taste.py [--customers 30000000] [--reads 2000000] [--repeat 5]

The population stores taste at half precision (docs/model.md §2.2), and numba has no float16 on the CPU, so
the compiled read kernel receives the bits and converts each with a lookup in a table of every float16's
float32 value (``kernels._half``). This times, on the same readers (sorted, as the engine reads them) and
creatives, the affinity and click log-odds loop of ``kernels.read_outcomes`` three ways: taste as float32
(before session 10), float16 bits through the table (the engine), and float16 bits decoded arithmetically
(mantissa times a power of two from a 64-entry table of sign and exponent: the first version, not kept).
It prints nanoseconds per read, medians of ``--repeat``, and each as a ratio to float32 in the same run.
All three give the same bits (checked before timing).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np

from masssim.engine import kernels

_SCALE = np.array([(-1.0 if se >> 5 else 1.0) * 2.0 ** (max(se & 31, 1) - 25) for se in range(64)], np.float32)


@numba.njit(nogil=True, inline="always")
def _as_is(value):  # type: ignore[no-untyped-def]
    return value


@numba.njit(nogil=True, inline="always")
def _arithmetic(bits):  # type: ignore[no-untyped-def]
    h = np.int32(bits)
    return np.float32((h & 1023) | (np.int32((h & 0x7C00) != 0) << 10)) * _SCALE[h >> 10]


def _affinity_loop(read):  # type: ignore[no-untyped-def]
    """The read kernel's affinity and click log-odds, with each taste element read by ``read`` (inlined)."""

    @numba.njit(nogil=True)
    def rows(reader, creative, fatigue, taste, directions, quality, warmth, coefficients):  # type: ignore[no-untyped-def]
        n, d = reader.shape[0], taste.shape[1]
        out = np.empty(n, np.float32)
        c0, beta, delta, gamma = coefficients[0], coefficients[1], coefficients[2], coefficients[3]
        for i in range(n):
            c, k = reader[i], creative[i]
            dot = read(taste[c, 0]) * directions[k, 0]
            for j in range(1, d):
                dot += read(taste[c, j]) * directions[k, j]
            out[i] = c0 + beta * dot + quality[k] + delta * warmth[c] - gamma * fatigue[i]
        return out

    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=30_000_000)
    parser.add_argument("--reads", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    n_customers, n = args.customers, args.reads
    half = rng.standard_normal((n_customers, 8), dtype=np.float32).astype(np.float16)
    single = half.astype(np.float32)  # the same values, as float32
    bits = kernels.half_bits(half)
    reader = np.sort(rng.integers(0, n_customers, n)).astype(np.int32)
    creative = rng.integers(0, 20_000, n).astype(np.int32)
    directions = rng.standard_normal((20_000, 8)).astype(np.float32)
    quality = rng.standard_normal(20_000).astype(np.float32)
    warmth = rng.standard_normal(n_customers).astype(np.float32)
    fatigue = rng.random(n).astype(np.float32)
    coefficients = np.array([-3.0, 1.0, 0.3, 0.1], np.float32)
    rest = (directions, quality, warmth, coefficients)
    ways = {
        "float32 taste": (_affinity_loop(_as_is), single),
        "float16, table lookup (the engine)": (_affinity_loop(kernels._half_compiled), bits),
        "float16, arithmetic decoding": (_affinity_loop(_arithmetic), bits),
    }
    results = [f(reader, creative, fatigue, taste, *rest) for f, taste in ways.values()]  # compiles them too
    for other in results[1:]:
        assert np.array_equal(results[0].view(np.uint32), other.view(np.uint32))
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeat):  # interleaved, so that the machine's spells fall on every way alike
        for name, (f, taste) in ways.items():
            t0 = time.process_time()
            f(reader, creative, fatigue, taste, *rest)
            times[name].append((time.process_time() - t0) / n * 1e9)
    base = statistics.median(times["float32 taste"])
    print(f"{n:,} reads of {n_customers:,} customers' taste (8 topics), CPU ns per read, medians of {args.repeat}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:36s} {median:6.1f} ns   x{median / base:.2f} of float32")


if __name__ == "__main__":
    main()
