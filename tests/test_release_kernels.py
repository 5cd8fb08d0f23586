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
    """The compiled loop, given float16 bits where it reads half precision (as the engine calls it)."""
    loop = kernels._compiled(getattr(release_kernels, f"_{name}_loop"))
    return kernels._with_half_arguments(loop, *release_kernels.HALF_ARGUMENTS.get(name, ()))


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


@needs_numba
@settings(max_examples=60, deadline=None, derandomize=True)
@given(n_customers=st.integers(1, 50), n=st.integers(0, 500), seed=st.integers(0, 2**16))
def test_adstock_now_matches_numpy(n_customers: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    stock = DecayingStock(n_customers, 5 * 86_400.0)
    stock.stored[:] = rng.random(n_customers).astype(np.float32) * 3.0
    customer = rng.integers(0, n_customers, n).astype(np.int32)
    t = rng.random(n) * 86_400.0
    credit = rng.integers(0, 2, n_customers).astype(np.uint8)
    fast, fast_rows = _compiled("adstock_now")(stock.stored, customer, stock.decay(t), credit)
    slow, slow_rows = release_kernels.adstock_now_numpy(stock.stored, customer, stock.decay(t), credit)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast_rows, slow_rows)
    np.testing.assert_array_equal(slow, -stock.at(customer, t).astype(np.float64))  # DecayingStock.at's value


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n_customers=st.integers(1, 60),
    n=st.integers(0, 400),
    n_brands=st.integers(1, 12),
    seed=st.integers(0, 2**16),
    with_gone=st.booleans(),
    market_window=st.sampled_from([0.0, 1.5, 10.0]),
)
def test_organic_choices_match_numpy(
    n_customers: int, n: int, n_brands: int, seed: int, with_gone: bool, market_window: float
) -> None:
    from masssim.model.market import mask_dtype

    rng = np.random.default_rng(seed)
    days = 3
    brand_prob = rng.dirichlet(np.full(n_brands, 0.5), n_customers).astype(np.float16)  # as the population stores them
    customer = rng.integers(0, n_customers, n).astype(np.int32)  # repeated customers on purpose
    time_s = np.sort(rng.random(n)) * 86_400.0 * 2.0
    time_s[n // 2 :] = np.maximum(time_s[n // 2 :], 86_400.0)  # some exactly at midnight (the day edge)
    day = np.minimum((time_s // 86_400.0).astype(np.int64), days - 1)
    # No adstock for some (our probability is p0 exactly), some for others; uniforms exactly at p0 and at p.
    lift_share = -np.expm1(-(rng.random(n) * 2.0 * (rng.random(n) < 0.7)))
    uniform = rng.random(n)
    p0 = brand_prob[customer, 0].astype(np.float64)
    uniform[: n // 8] = p0[: n // 8]
    uniform[n // 8 : n // 4] = (p0 + (1.0 - p0) * lift_share)[n // 8 : n // 4]
    skipped = rng.random(n) < 0.1
    gone = rng.random(n) < 0.3 if with_gone else None
    gone_anyway = (gone & (rng.random(n) < 0.5)) if gone is not None else None
    contactable = rng.random(n_customers) < 0.8
    last_click_t = np.where(rng.random(n_customers) < 0.5, -1e30, rng.random(n_customers) * 86_400.0 * 2.0)
    last_click_creative = rng.integers(0, 30, n_customers).astype(np.int32)
    results = []
    for kernel in (_compiled("organic_choices"), release_kernels.organic_choices_numpy):
        purchases = np.full(n_customers, 65_533, np.uint16)  # wraps at the top, as numpy's does
        masks = np.ones(n_customers, mask_dtype(n_brands))
        market = np.arange(n_brands, dtype=np.int64)
        counts = np.ones((len(release_kernels.ORGANIC_METRICS), days), np.int64)
        buyers, creative, lost = kernel(
            customer, time_s, uniform, lift_share, day, brand_prob, skipped, gone, gone_anyway, contactable,
            last_click_t.astype(np.float32), last_click_creative, 3_600.0 * 5, purchases, market_window * 86_400.0,
            masks, market, counts,
        )  # fmt: skip
        results.append((buyers, creative, lost, purchases, masks, market, counts))
    for fast, slow in zip(*results, strict=True):
        np.testing.assert_array_equal(fast, slow)
    assert results[0][1].dtype == np.int32


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    counts=st.lists(st.integers(-5, 5), min_size=4, max_size=4),
    metric=st.sampled_from(["purchases_treated", "incremental_purchases_true", "attributed_purchases"]),
)
def test_day_totals_are_the_events_counted(counts: list[int], metric: str) -> None:
    """Recorder.add_day_totals of per-day counts gives the bytes add_events gives the events themselves
    (a count, or +1/-1 weights per event)."""
    from masssim.engine.state import Recorder

    time_s = np.concatenate([np.full(abs(k), 86_400.0 * d + 10.0) for d, k in enumerate(counts)])
    weights = np.concatenate([np.full(abs(k), np.sign(k), np.float64) for k in counts])
    by_events, by_days = Recorder(4 * 86_400.0), Recorder(4 * 86_400.0)
    by_events.add_events(metric, time_s, weights)
    by_days.add_day_totals(metric, np.array(counts, np.int64))
    assert by_events.totals[metric] == by_days.totals[metric]
    np.testing.assert_array_equal(by_events.series, by_days.series)


@needs_numba
@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    first_day=st.integers(0, 4000),
    offsets=st.lists(st.floats(0.0, 86_400.0), max_size=50),
    days=st.integers(1, 4002),
    seed=st.integers(0, 2**16),
)
def test_day_of_a_bucket_and_credited_rows_match_numpy(
    first_day: int, offsets: list[float], days: int, seed: int
) -> None:
    # A bucket's times: after its start, up to and including the next midnight (and hairs around it).
    midnight = (first_day + 1) * 86_400.0
    edge = [midnight, np.nextafter(midnight, 0.0), np.nextafter(midnight, np.inf)]
    time_s = np.array([first_day * 86_400.0 + x for x in offsets] + edge)
    time_s = time_s[time_s > first_day * 86_400.0]
    time_s = time_s[time_s <= np.nextafter(midnight, np.inf)]
    fast = _compiled("day_of")(time_s, first_day, days - 1)
    np.testing.assert_array_equal(fast, release_kernels.day_of_numpy(time_s, first_day, days - 1))
    rng = np.random.default_rng(seed)
    stored = rng.random(20).astype(np.float32)
    customer = rng.integers(0, 20, time_s.shape[0]).astype(np.int32)
    credit = (rng.integers(0, 3, 20) * (rng.random(20) < 0.3)).astype(np.uint8)
    decay = np.exp(-rng.random(time_s.shape[0]))
    for fast_part, slow_part in zip(
        _compiled("adstock_now")(stored, customer, decay, credit),
        release_kernels.adstock_now_numpy(stored, customer, decay, credit),
        strict=True,
    ):
        np.testing.assert_array_equal(fast_part, slow_part)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.integers(0, 600), min_size=1, max_size=6),
    steps=st.lists(st.integers(1, 30), min_size=1, max_size=25),
    seed=st.integers(0, 2**16),
)
def test_pending_pieces_are_every_due_event_in_batch_order(sizes: list[int], steps: list[int], seed: int) -> None:
    """Released pieces, bucket by bucket: every event whose bucket has ended and that was not released before,
    batch by batch in the order the batches were added, rows in bucket order (ties in their added order);
    whatever the skipping of batches with nothing due and the compaction of released rows."""
    from masssim.engine.events import PendingEvents

    rng = np.random.default_rng(seed)
    bucket_s = 900.0
    pending = PendingEvents(bucket_s)
    added = []
    for b, n in enumerate(sizes):
        times = rng.random(n) * bucket_s * 200 * rng.random()  # some batches over few buckets, some over many
        kinds = ("read", "open") if b % 2 == 0 else ("open",)
        customer = np.arange(n, dtype=np.int32) + 1000 * b  # names the batch and the row
        pending.add(kinds, customer, np.zeros(n, np.int32), b % 3, times)
        bucket = np.ceil(times / bucket_s).astype(np.int64)
        order = np.argsort(bucket, kind="stable")
        added.append((kinds, customer[order], bucket[order]))
    released_to = 0
    edge = 0
    for step in steps:
        edge += step
        pieces = pending.release_pieces(edge * bucket_s)
        for kind in ("read", "open"):
            got = [p["customer"] for p in pieces.get(kind, [])]
            want = [c[(k > released_to) & (k <= edge)] for kinds, c, k in added if kind in kinds]
            want = [w for w in want if w.shape[0]]
            assert len(got) == len(want)
            for g, w in zip(got, want, strict=True):
                np.testing.assert_array_equal(g, w)
        released_to = edge
