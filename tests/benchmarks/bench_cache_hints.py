"""What the cache hints of the compiled loops buy (engine/cache_hints.py, docs/model.md §15.8).

Run:  python tests/benchmarks/bench_cache_hints.py [--customers 10000000] [--repeat 7]

Two kernels gather per-customer attributes from population-sized arrays inside a long loop body: the read
kernel (``kernels.read_outcomes``: a wave's readers, a share of the customers in ascending order, as a block
of sends gives them) and the organic occasions' brand choice
(``release_kernels.organic_choices``: a bucket's occasions in time order, their customers anywhere). Each is
timed three ways in this process, in CPU nanoseconds per row (medians of ``--repeat``):

* **hinted**: the kernel as the engine runs it, asking for the row ``ROWS_AHEAD`` on;
* **without hints**: the same loop compiled with the hint replaced by nothing;
* **in cache**: the hinted kernel on the same kind of rows drawn from the first 200,000 customers only, whose
  attributes stay in the caches: the loop's own arithmetic, the floor for the first two.

It prints each and the ratio of "without hints" to "hinted". Two comparisons explain what is not done:

* the read kernel on a **packed record** per customer (the five attributes a read gathers in one 24-byte
  row, so one cache line per read instead of five), without hints: not faster than the separate arrays;
* a **short loop**, a counter's increment over random customers (as the opens' counter is released), with and
  without a hint: the processor already overlaps such a loop's misses, and the hint does not help it.

Inputs are synthetic (random attributes of the population's dtypes); the values the kernels compute do not
matter here, only where they read.
"""

from __future__ import annotations

import argparse
import statistics
import time
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from masssim.engine import kernels, release_kernels

CACHE_RESIDENT_CUSTOMERS = 200_000
READ_SHARE = 0.15  # reads per send in bench_outbound's scenario (3.15M of 21.5M at 1M customers)
REGIONS = 4


def without_hints(loop: Callable[..., Any]) -> Callable[..., Any]:
    """``loop`` compiled with ``load_soon`` doing nothing (the same code otherwise)."""
    import numba

    @numba.njit(inline="always")
    def nothing(array, index):  # type: ignore[no-untyped-def]
        return None

    scope = dict(loop.__globals__)
    scope["load_soon"] = nothing
    clone = types.FunctionType(loop.__code__, scope, loop.__name__, loop.__defaults__, loop.__closure__)
    return numba.njit(nogil=True)(clone)  # type: ignore[no-any-return]


def with_hints(loop: Callable[..., Any]) -> Callable[..., Any]:
    """``loop`` compiled as the engine compiles it."""
    compiled = kernels._compiled(loop)
    assert compiled is not None  # main() checked that numba is in use
    return compiled


def cpu_ns_per_row(run: Callable[[], Any], rows: int, repeat: int) -> float:
    run()  # compiled, warm
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return statistics.median(times) / rows * 1e9


def read_kernel_cases(n: int, rng: np.random.Generator) -> dict[str, tuple[Callable[[], Any], int]]:
    d = 8
    region = rng.integers(0, REGIONS, n).astype(np.uint8)
    taste = rng.standard_normal((n, d)).astype(np.float16).view(np.uint16)
    start_hour = rng.integers(0, 24, n).astype(np.uint8)
    hours = rng.integers(1, 12, n).astype(np.uint8)
    warmth = rng.standard_normal(n).astype(np.float32)
    creatives = 20_000
    directions = rng.standard_normal((creatives, d)).astype(np.float32)
    quality = rng.standard_normal(creatives).astype(np.float32)
    region_rel_s = np.array([0.0, -5 * 3600.0, 3 * 3600.0, 9 * 3600.0])[:REGIONS]
    coefficients = np.array([-3.0, 1.0, 0.5, 0.2], np.float32)

    def readers(limit: int) -> np.ndarray:
        # One ascending sweep (a block's rows stay in plan order since session 14, §15.9; until then a block
        # was one sweep per region), a share of the customers read.
        return np.flatnonzero(rng.random(limit) < READ_SHARE)

    def arguments(reader: np.ndarray) -> tuple[Any, ...]:
        m = reader.shape[0]
        return (
            86_400.0 * 3 + rng.random(m) * 86_400.0,
            reader,
            rng.integers(0, creatives, m).astype(np.int16),
            rng.random(m).astype(np.float32),
            rng.random(m).astype(np.float32),
            region,
            region_rel_s,
            start_hour,
            hours,
            taste,
            directions,
            quality,
            warmth,
            coefficients,
        )

    hinted = with_hints(kernels._read_outcomes_loop)
    plain = without_hints(kernels._read_outcomes_loop)
    everyone, cached = arguments(readers(n)), arguments(readers(CACHE_RESIDENT_CUSTOMERS))
    record = np.zeros(n, PACKED_READER)
    record["taste"], record["warmth"], record["region"] = taste, warmth, region
    record["start"], record["hours"] = start_hour, hours
    packed = packed_read_loop()
    packed_args = (*everyone[:5], record, region_rel_s, directions, quality, coefficients)
    return {
        "hinted": (lambda: hinted(*everyone), everyone[1].shape[0]),
        "without hints": (lambda: plain(*everyone), everyone[1].shape[0]),
        "in cache": (lambda: hinted(*cached), cached[1].shape[0]),
        "packed record, without hints": (lambda: packed(*packed_args), everyone[1].shape[0]),
    }


# The five attributes a read gathers, in one row per customer (taste as float16 bits).
PACKED_READER = np.dtype(
    [
        ("taste", np.uint16, (8,)),
        ("warmth", np.float32),
        ("region", np.uint8),
        ("start", np.uint8),
        ("hours", np.uint8),
        ("pad", np.uint8),
    ]
)


def packed_read_loop() -> Callable[..., Any]:
    """The read kernel's arithmetic on a packed record per customer, without hints (a comparison only)."""
    import numba

    floor_mod, half, hour_s = kernels._floor_mod_compiled, kernels._half_compiled, kernels.HOUR_S

    @numba.njit(nogil=True)
    def loop(read_at, reader, creative, fatigue, jitter, record, region_rel_s, directions, quality, coefficients):  # type: ignore[no-untyped-def]
        n = reader.shape[0]
        moved = np.empty(n, np.float64)
        logit_click = np.empty(n, np.float32)
        for i in range(n):
            r = record[reader[i]]
            k = creative[i]
            t = read_at[i]
            hour = floor_mod((t + region_rel_s[r.region]) / hour_s, 24.0)
            since_start = floor_mod(hour - np.float64(r.start), 24.0)
            length = np.float64(r.hours)
            later = t + (24.0 - since_start + np.float64(jitter[i]) * min(length, 1.0)) * hour_s
            moved[i] = later if since_start >= length else t
            dot = half(r.taste[0]) * directions[k, 0]
            for j in range(1, 8):
                dot += half(r.taste[j]) * directions[k, j]
            logit = coefficients[0] + coefficients[1] * dot + quality[k] + coefficients[2] * r.warmth
            logit_click[i] = logit - coefficients[3] * fatigue[i]
        return moved, logit_click

    return loop  # type: ignore[no-any-return]


def short_loop_cases(n: int, rng: np.random.Generator) -> dict[str, tuple[Callable[[], Any], int]]:
    """A counter's increment over random customers, 3,000 at a time (a bucket's opens), hinted or not."""
    import numba

    load_soon, ahead = kernels.load_soon, kernels.ROWS_AHEAD

    @numba.njit(nogil=True)
    def hinted(counter, idx):  # type: ignore[no-untyped-def]
        m = idx.shape[0]
        for i in range(m):
            if i + ahead < m:
                load_soon(counter, idx[i + ahead])
            counter[idx[i]] += 1

    plain = with_hints(kernels._increment_loop)
    counter = np.zeros(n, np.uint16)
    calls = [rng.integers(0, n, 3_000) for _ in range(300)]
    cached = [rng.integers(0, CACHE_RESIDENT_CUSTOMERS, 3_000) for _ in range(300)]

    def run(loop: Callable[..., Any], rows: list[np.ndarray]) -> Callable[[], None]:
        def all_calls() -> None:
            for idx in rows:
                loop(counter, idx)

        return all_calls

    return {
        "hinted": (run(hinted, calls), 900_000),
        "without hints": (run(plain, calls), 900_000),
        "in cache": (run(plain, cached), 900_000),
    }


def organic_cases(n: int, rng: np.random.Generator) -> dict[str, tuple[Callable[[], Any], int]]:
    brand_prob = rng.dirichlet(np.ones(5), n).astype(np.float16).view(np.uint16)
    contactable = rng.random(n) < 0.9
    last_click_t = np.full(n, -1e9, np.float32)
    last_click_creative = np.full(n, -1, np.int16)
    purchases = np.zeros(n, np.uint16)
    brands_bought = np.zeros(n, np.uint8)
    per_bucket, buckets = 3_000, 300  # a 15-minute bucket's occasions at 10M customers, about

    def bucket(limit: int) -> tuple[Any, ...]:
        m = per_bucket
        return (
            rng.integers(0, limit, m),
            np.sort(rng.random(m)) * 900.0 + 86_400.0 * 3,
            rng.random(m),
            rng.random(m) * 0.01,
            np.full(m, 3, np.int64),
            brand_prob,
            np.zeros(m, bool),
            None,
            None,
            contactable,
            last_click_t,
            last_click_creative,
            7 * 86_400.0,
            purchases,
            30 * 86_400.0,
            brands_bought,
            np.zeros(5, np.int64),
            np.zeros((4, 30), np.int64),
        )

    hinted = with_hints(release_kernels._organic_choices_loop)
    plain = without_hints(release_kernels._organic_choices_loop)
    everyone = [bucket(n) for _ in range(buckets)]
    cached = [bucket(CACHE_RESIDENT_CUSTOMERS) for _ in range(buckets)]

    def run(loop: Callable[..., Any], calls: list[tuple[Any, ...]]) -> Callable[[], None]:
        def all_buckets() -> None:
            for call in calls:
                loop(*call)

        return all_buckets

    rows = per_bucket * buckets
    return {
        "hinted": (run(hinted, everyone), rows),
        "without hints": (run(plain, everyone), rows),
        "in cache": (run(hinted, cached), rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if not kernels.COMPILED:
        raise SystemExit("numba is not in use (MASSSIM_KERNELS=numpy or not installed): there are no hints to time")
    rng = np.random.default_rng(2026)
    cases_of = (
        ("read kernel", read_kernel_cases),
        ("organic choices", organic_cases),
        ("increment (short)", short_loop_cases),
    )
    for name, build in cases_of:
        cases = build(args.customers, rng)
        ns = {case: cpu_ns_per_row(run, rows, args.repeat) for case, (run, rows) in cases.items()}
        packed = ns.get("packed record, without hints")
        print(
            f"{name:>17} at {args.customers:,} customers: hinted {ns['hinted']:.1f} ns per row, "
            f"without hints {ns['without hints']:.1f}, in cache {ns['in cache']:.1f} "
            f"(without / hinted: {ns['without hints'] / ns['hinted']:.2f}x)"
            + ("" if packed is None else f"; packed record, without hints {packed:.1f}")
        )


if __name__ == "__main__":
    main()
