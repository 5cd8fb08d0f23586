"""The send pipeline's fused kernels (engine/send_kernels.py) against their numpy twins.

The numpy twins define each kernel; the compiled loops must give the same integers and the same floats to the
bit, with the same dtypes, on arbitrary inputs (Hypothesis), including values exactly on a threshold, empty
blocks and reads spread over more buckets than the counting sort takes. A whole run giving the same summary on
either path is tested in tests/test_kernels.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masssim.engine import kernels, send_kernels
from masssim.engine.events import PendingEvents

needs_numba = pytest.mark.skipif(not kernels.COMPILED, reason="numba is not installed: only the numpy path exists")


def _compiled(name: str):  # type: ignore[no-untyped-def]
    return kernels._compiled(getattr(send_kernels, f"_{name}_loop"))


def _assert_same(fast: tuple[np.ndarray, ...], slow: tuple[np.ndarray, ...]) -> None:
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b)


def _block(rng: np.random.Generator, n: int, n_customers: int) -> tuple[np.ndarray, ...]:
    """A block of sends: uniforms on a coarse grid (so some land exactly on a threshold), customers,
    creatives, ascending departures and fatigue."""
    u = (rng.integers(0, 64, n) / np.float32(64)).astype(np.float32)
    customer = rng.integers(0, n_customers, n).astype(np.int32)
    creative = rng.integers(0, 40, n).astype(np.int32)
    departure = np.sort(rng.random(n) * 86_400.0 * 30)
    fatigue = (rng.random(n) * 5).astype(np.float32)
    return u, customer, creative, departure, fatigue


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(n=st.integers(0, 1500), seed=st.integers(0, 2**16), bound=st.sampled_from([0.0, 0.125, 0.4, 0.5, 1.0]))
def test_read_picks_match_numpy(n: int, seed: int, bound: float) -> None:
    rng = np.random.default_rng(seed)
    u, customer, creative, departure, fatigue = _block(rng, n, 300)
    cand = np.flatnonzero(u < np.float32(bound))
    kappa = np.float32(-0.25)
    exponent_fast = _compiled("read_exponents")(fatigue, cand, kappa)
    exponent_slow = send_kernels.read_exponents_numpy(fatigue, cand, kappa)
    _assert_same((exponent_fast,), (exponent_slow,))
    decay = np.exp(exponent_slow)
    # Every fourth candidate's probability is bound / 2, exactly on the uniforms' grid for most bounds: a
    # candidate exactly on its probability (u == p) is not read, on either path.
    decay[::4] = np.float32(0.5)
    decay[1::7] = np.float32(0.0)  # a fatigue factor underflowed to 0: never read, and no division by 0
    draw = kernels.send_draw_numpy(u, rng.random(n, dtype=np.float32))  # the send's draw carrying u
    args = (cand, decay, np.float32(bound), draw, customer, creative, departure, 120.0, fatigue)
    fast = _compiled("pick_reads")(*args)
    slow = send_kernels.pick_reads_numpy(*args)
    _assert_same(fast, slow)
    reads, unread = fast[0].shape[0], fast[5].shape[0]
    assert reads + unread == cand.shape[0]
    assert ((fast[4] >= 0) & (fast[4] < 1)).all()  # v: a fresh uniform


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n=st.integers(0, 1500),
    seed=st.integers(0, 2**16),
    bucket_s=st.sampled_from([1.0, 3600.0, 86_400.0]),
    spread_days=st.sampled_from([0.01, 3.0, 40.0, 2000.0]),
    on_edges=st.booleans(),
)
def test_reads_ordered_by_bucket_match_numpy(
    n: int, seed: int, bucket_s: float, spread_days: float, on_edges: bool
) -> None:
    rng = np.random.default_rng(seed)
    read_at = 1e6 + rng.random(n) * spread_days * 86_400.0  # 2000 days of 1 s buckets: the stable-sort branch
    if on_edges and n:  # times exactly on a bucket edge belong to the bucket that ends there
        read_at[::3] = np.round(read_at[::3] / bucket_s) * bucket_s
    reader = rng.integers(0, 10_000, n).astype(np.int32)
    creative = rng.integers(0, 50, n).astype(np.int32)
    logit_click = rng.standard_normal(n).astype(np.float32)
    v = rng.random(n, dtype=np.float32)
    args = (read_at, bucket_s, reader, creative, logit_click, v)
    fast = _compiled("order_reads")(*args)
    slow = send_kernels.order_reads_numpy(*args)
    _assert_same(fast, slow)
    assert (np.diff(fast[0]) >= 0).all()


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n=st.integers(0, 1500),
    seed=st.integers(0, 2**16),
    bucket_s=st.sampled_from([1.0, 900.0, 86_400.0]),
    spread_days=st.sampled_from([0.01, 3.0, 2000.0]),
)
def test_events_ordered_by_bucket_match_numpy_and_the_events_in_flight(
    n: int, seed: int, bucket_s: float, spread_days: float
) -> None:
    """Pre-fetch opens and deliveries leave a block in plan order: put in bucket order here, they are in the
    order PendingEvents would sort them into (so passing their buckets changes nothing)."""
    rng = np.random.default_rng(seed)
    time_s = 1e6 + rng.random(n) * spread_days * 86_400.0
    time_s[::4] = np.round(time_s[::4] / bucket_s) * bucket_s  # some on bucket edges
    customer = rng.integers(0, 10_000, n).astype(np.int32)
    creative = rng.integers(0, 50, n).astype(np.int32)
    fast = _compiled("order_events")(time_s, bucket_s, customer, creative)
    slow = send_kernels.order_events_numpy(time_s, bucket_s, customer, creative)
    _assert_same(fast, slow)
    pending = PendingEvents(bucket_s)
    order = pending.order_by_bucket(time_s)
    np.testing.assert_array_equal(fast[1], time_s[order])
    np.testing.assert_array_equal(fast[2], customer[order])
    np.testing.assert_array_equal(fast[0], pending.bucket_of(time_s)[order])


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(n=st.integers(0, 1500), seed=st.integers(0, 2**16))
def test_click_picks_match_numpy(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = (rng.integers(0, 32, n) / np.float32(32)).astype(np.float32)  # v == 0 hits the 1e-12 floor
    p_click = (rng.integers(1, 33, n) / np.float32(32)).astype(np.float32)
    if n:
        p_click[::5] = v[::5]  # exactly on the probability: no click
        p_click[1::9] = np.float32(0.0)  # expit underflowed to 0: no click, and no division by 0
    reader = rng.integers(0, 10_000, n).astype(np.int32)
    creative = rng.integers(0, 50, n).astype(np.int32)
    read_at = rng.random(n) * 1e6
    fast = _compiled("pick_clicks")(v, p_click, reader, creative, read_at)
    slow = send_kernels.pick_clicks_numpy(v, p_click, reader, creative, read_at)
    _assert_same(fast, slow)


def _prefetch_rows(rng: np.random.Generator, n: int, share_unread: float, share_above: float) -> tuple[np.ndarray, ...]:
    """A block (customers, creatives, departures) with its unread read candidates, the rows above the read
    bound (disjoint ascending row sets, as split_sends gives them) and the unread rows' coins on a coarse grid."""
    _, customer, creative, departure, _ = _block(rng, n, 300)
    side = rng.random(n)
    unread = np.flatnonzero(side < share_unread)
    above = np.flatnonzero((side >= share_unread) & (rng.random(n) < share_above))
    coin = (rng.integers(0, 20, unread.shape[0]) / np.float32(20)).astype(np.float32)
    return customer, creative, departure, unread, above, coin


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n=st.integers(0, 1500),
    seed=st.integers(0, 2**16),
    share_unread=st.floats(0.0, 1.0),
    share_above=st.floats(0.0, 1.0),
    inflation=st.sampled_from([0.0, 0.25, 0.35, 1.0]),
)
def test_prefetch_picks_match_numpy(
    n: int, seed: int, share_unread: float, share_above: float, inflation: float
) -> None:
    customer, creative, departure, unread, above, coin = _prefetch_rows(
        np.random.default_rng(seed), n, share_unread, share_above
    )
    args = (unread, coin, np.float32(inflation), above, customer, creative, departure, 120.0, 60.0)
    fast = _compiled("pick_prefetch")(*args)
    slow = send_kernels.pick_prefetch_numpy(*args)
    _assert_same(fast, slow)


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n=st.integers(0, 1500),
    seed=st.integers(0, 2**16),
    share_unread=st.floats(0.0, 1.0),
    share_above=st.floats(0.0, 1.0),
    inflation=st.sampled_from([0.0, 0.35, 1.0]),
    bucket_s=st.sampled_from([1.0, 900.0, 86_400.0]),
    wide=st.booleans(),
)
def test_counted_prefetch_opens_are_the_picked_events_in_bucket_order(
    n: int, seed: int, share_unread: float, share_above: float, inflation: float, bucket_s: float, wide: bool
) -> None:
    """Recorded opens that are only counted keep their buckets and customers: exactly what pick_prefetch then
    order_events give (the same rows, buckets and order), on both paths, for departures spread over more
    buckets than the counting sort takes too (1-second buckets over 30 days)."""
    customer, creative, departure, unread, above, coin = _prefetch_rows(
        np.random.default_rng(seed), n, share_unread, share_above
    )
    if wide:
        customer = customer.astype(np.int64)
    picked = send_kernels.pick_prefetch_numpy(
        unread, coin, np.float32(inflation), above, customer, creative, departure, 120.0, 60.0
    )
    want_bucket, _, want_customer, _ = send_kernels.order_events_numpy(picked[2], bucket_s, picked[0], picked[1])
    args = (unread, coin, np.float32(inflation), above, customer, departure, 120.0, 60.0, bucket_s)
    for got in (_compiled("prefetch_customers")(*args), send_kernels.prefetch_customers_numpy(*args)):
        _assert_same(got, (want_bucket, want_customer))


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n=st.integers(0, 1500),
    seed=st.integers(0, 2**16),
    share_unread=st.floats(0.0, 1.0),
    share_above=st.floats(0.0, 1.0),
    inflation=st.sampled_from([0.0, 0.35, 1.0]),
    bucket_s=st.sampled_from([1.0, 60.0, 900.0, 86_400.0]),
)
def test_prefetch_bucket_counts_are_the_counted_opens_per_bucket(
    n: int, seed: int, share_unread: float, share_above: float, inflation: float, bucket_s: float
) -> None:
    """Recorded opens that nobody reads by customer are kept as a count per bucket: exactly how many of
    prefetch_customers' rows fall in each bucket, on both paths, every row's bucket within the span's (so
    none is dropped or put out of range), for spans of one bucket and of many (1-second buckets)."""
    customer, _, departure, unread, above, coin = _prefetch_rows(
        np.random.default_rng(seed), n, share_unread, share_above
    )
    picked_bucket, _ = send_kernels.prefetch_customers_numpy(
        unread, coin, np.float32(inflation), above, customer, departure, 120.0, 60.0, bucket_s
    )
    span = (float(departure.min()), float(departure.max())) if n else (0.0, 0.0)
    low, high = send_kernels.prefetch_bucket_span(span, 120.0, 60.0, bucket_s)
    want = np.zeros(high - low + 1, np.int64)
    np.add.at(want, picked_bucket.astype(np.int64) - low, 1)  # raises if a bucket is below the span's
    args = (unread, coin, np.float32(inflation), above, departure, 120.0, 60.0, bucket_s, low, high)
    paths = [send_kernels.prefetch_bucket_counts_numpy]
    if kernels.COMPILED:
        paths.append(_compiled("prefetch_bucket_counts"))
    for path in paths:
        got = path(*args)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


@needs_numba
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    groups=st.lists(st.integers(0, 5), max_size=2000),
    n_groups=st.integers(6, 8),
    filled=st.lists(st.integers(0, 10_000), min_size=8, max_size=8),
    seed=st.integers(0, 2**16),
)
def test_plan_departures_match_numpy(groups: list[int], n_groups: int, filled: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    group = np.array(groups, np.uint8)
    starts = np.sort(rng.random(n_groups) * 1e5)
    fill_fast = np.array(filled[:n_groups], np.int64)
    fill_slow = fill_fast.copy()
    fast = _compiled("plan_departures")(group, starts, 0.25, fill_fast)
    slow = send_kernels.plan_departures_numpy(group, starts, 0.25, fill_slow)
    np.testing.assert_array_equal(fast, slow)
    assert fast.dtype == np.float64
    np.testing.assert_array_equal(fill_fast, fill_slow)
    # Each row is its group's next send: the k-th row of group g (in plan order) takes slot filled[g] + k.
    slot = np.empty(group.shape[0], np.int64)
    seen = np.array(filled[:n_groups], np.int64)
    for i, g in enumerate(group.tolist()):
        slot[i] = seen[g]
        seen[g] += 1
    np.testing.assert_array_equal(fast, starts[group] + slot * 0.25)
    np.testing.assert_array_equal(fill_fast, seen)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    groups=st.lists(st.integers(0, 5), max_size=2000),
    filled=st.lists(st.integers(0, 10_000), min_size=6, max_size=6),
    spacing_s=st.sampled_from([0.25, 0.3, 1 / 3.0, 3600.0 / 7.0]),
    seed=st.integers(0, 2**16),
)
def test_departure_bounds_are_the_blocks_least_and_greatest_departure(
    groups: list[int], filled: list[int], spacing_s: float, seed: int
) -> None:
    """A block's departure bounds from its groups' counts before and after are departure.min() and .max() to
    the bit, on either kernel path, in any group order; None for an empty block."""
    rng = np.random.default_rng(seed)
    group = np.array(groups, np.uint8)
    starts = rng.random(6) * 1e5  # any order: a later group may start earlier
    for kernel in (send_kernels.plan_departures, send_kernels.plan_departures_numpy):
        before = np.array(filled, np.int64)
        after = before.copy()
        departure = kernel(group, starts, spacing_s, after)
        bounds = send_kernels.departure_bounds(starts, spacing_s, before, after)
        if group.shape[0] == 0:
            assert bounds is None
        else:
            assert bounds == (float(departure.min()), float(departure.max()))
        together = send_kernels.departures_and_bounds(group, starts, spacing_s, np.array(filled, np.int64))
        np.testing.assert_array_equal(together[0], departure)
        assert together[1] == bounds


def test_prefetch_bucket_counts_refuse_a_row_outside_the_span() -> None:
    """A span that does not bound the rows' buckets is refused on both paths (the compiled loop would
    otherwise write past its counts): rows in buckets 0, 2 and 4 against a span of buckets 0 to 2."""
    departure = np.array([0.0, 2.0, 4.0])
    args = (np.empty(0, np.int64), np.empty(0, np.float32), np.float32(0.5), np.arange(3), departure, 0.0, 0.0)
    paths = [send_kernels.prefetch_bucket_counts_numpy]
    if kernels.COMPILED:
        paths.append(_compiled("prefetch_bucket_counts"))
    for path in paths:
        np.testing.assert_array_equal(path(*args, 1.0, 0, 4), [1, 0, 1, 0, 1])
        with pytest.raises(IndexError, match="outside its block's span"):
            path(*args, 1.0, 0, 2)
