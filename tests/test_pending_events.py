"""Outcomes in flight (engine/events.py) queued without their creatives (or without their times too) release
the same events, less what was left out: what the engine does for reads and recorded opens when the policy
does not learn from opens."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masssim.engine import events as events_module
from masssim.engine.events import COMPACT_MIN_ROWS, PendingEvents, concatenate

BUCKET_S = 900.0


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3 * COMPACT_MIN_ROWS), min_size=1, max_size=4),
    ascending=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_events_without_creatives_release_as_those_with_them(sizes: list[int], ascending: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    kept, dropped = PendingEvents(BUCKET_S), PendingEvents(BUCKET_S)
    for n in sizes:
        customer = rng.integers(0, 1000, n).astype(np.int32)
        creative = rng.integers(0, 50, n).astype(np.int32)
        # Times on bucket edges too (an edge belongs to the bucket it ends).
        time_s = rng.integers(0, 40, n) * (BUCKET_S / 2) + rng.choice([0.0, 1.0], n)
        if ascending:
            time_s = np.sort(time_s)
        kept.add(("read", "open"), customer, creative, 1, time_s, ascending=ascending)
        dropped.add(("read", "open"), customer, None, 1, time_s, ascending=ascending)
    assert dropped.nbytes() == kept.nbytes() - 4 * len(kept)
    for edge in range(22):
        with_creatives = kept.release_pieces(edge * BUCKET_S)
        without = dropped.release_pieces(edge * BUCKET_S)
        assert with_creatives.keys() == without.keys()
        for kind, pieces in with_creatives.items():
            assert all("creative" not in p for p in without[kind])
            whole, lean = concatenate(pieces), concatenate(without[kind])
            assert set(lean) == {"customer", "channel", "time_s"}
            for name in lean:
                np.testing.assert_array_equal(lean[name], whole[name])
        assert len(dropped) == len(kept)
    assert len(kept) == 0 and len(dropped) == 0


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3 * COMPACT_MIN_ROWS), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_events_kept_by_bucket_alone_release_as_those_with_their_times(sizes: list[int], seed: int) -> None:
    """Counted pre-fetch opens keep their customers and buckets only: released at every edge (compaction
    included), they are the same customers in the same order as events queued with times and creatives."""
    rng = np.random.default_rng(seed)
    full, lean = PendingEvents(BUCKET_S), PendingEvents(BUCKET_S)
    for n in sizes:
        customer = rng.integers(0, 1000, n).astype(np.int32)
        creative = rng.integers(0, 50, n).astype(np.int32)
        time_s = rng.integers(0, 40, n) * (BUCKET_S / 2) + rng.choice([0.0, 1.0], n)
        order = full.order_by_bucket(time_s)
        bucket = full.bucket_of(time_s)[order]
        full.add("open", customer, creative, 1, time_s)
        lean.add("open", customer[order], None, 1, None, sorted_buckets=bucket)
    assert lean.nbytes() == full.nbytes() - 12 * len(full)
    for edge in range(22):
        with_all = full.release_pieces(edge * BUCKET_S)
        kept = lean.release_pieces(edge * BUCKET_S)
        assert with_all.keys() == kept.keys()
        for kind, pieces in with_all.items():
            assert all(set(p) == {"customer", "channel"} for p in kept[kind])
            whole, bare = concatenate(pieces), concatenate(kept[kind])
            assert set(bare) == {"customer", "channel"}
            for name in bare:
                np.testing.assert_array_equal(bare[name], whole[name])
        assert len(lean) == len(full)
    assert len(full) == 0 and len(lean) == 0
    with pytest.raises(ValueError, match="need their buckets"):
        lean.add("open", np.zeros(1, np.int32), None, 1, None)


@pytest.mark.parametrize("listed", [1, 3, 672])
def test_release_finds_each_batchs_rows_past_its_listed_buckets(monkeypatch: pytest.MonkeyPatch, listed: int) -> None:
    """A batch lists where its first buckets' rows end (a release indexes that list) and searches past them
    (a read's delay has a long tail): either way each release gives exactly the rows of the buckets that have
    come due, in each batch's order, before and after compaction, for batches of one channel and of several."""
    monkeypatch.setattr(events_module, "BUCKET_ENDS_LISTED", listed)
    rng = np.random.default_rng(listed)
    pending = PendingEvents(BUCKET_S)
    added = []
    for b in range(4):
        n = int(rng.integers(1, 4 * COMPACT_MIN_ROWS))
        # most events within a few buckets, a long tail far beyond (up to 400 buckets)
        time_s = BUCKET_S * np.where(rng.random(n) < 0.8, rng.random(n) * 5, rng.random(n) * 400) + b * BUCKET_S
        customer = np.arange(n, dtype=np.int32) + 10_000 * b  # names the batch and the row
        channel = 1 if b % 2 else rng.integers(0, 3, n).astype(np.int8)
        pending.add("read", customer, None, channel, time_s)
        bucket = np.ceil(time_s / BUCKET_S).astype(np.int64)
        order = np.argsort(bucket, kind="stable")
        column = np.full(n, channel, np.int8) if isinstance(channel, int) else channel
        added.append((customer[order], column[order], bucket[order]))
    released_to = -1
    for edge in [0, 1, 2, 3, 5, 8, 13, 40, 41, 150, 399, 405]:
        got = pending.release(edge * BUCKET_S).get("read")
        due = [(k > released_to) & (k <= edge) for _, _, k in added]
        want_customer = np.concatenate([c[d] for (c, _, _), d in zip(added, due, strict=True)])
        want_channel = np.concatenate([ch[d] for (_, ch, _), d in zip(added, due, strict=True)])
        if want_customer.shape[0] == 0:
            assert got is None
        else:
            assert got is not None
            np.testing.assert_array_equal(got["customer"], want_customer)
            np.testing.assert_array_equal(got["channel"], want_channel)
        released_to = edge
    assert len(pending) == 0


def test_counted_events_release_with_the_rows_of_their_buckets() -> None:
    """Events queued as counts per bucket (pre-fetch opens nobody reads by customer) leave when rows queued in
    the same buckets would: each release gives exactly the count of the buckets come due since the last, a
    bucket's count is released once, and counts added to a bucket already held are summed."""
    rng = np.random.default_rng(11)
    pending, rows = PendingEvents(BUCKET_S), PendingEvents(BUCKET_S)
    for _ in range(6):
        time_s = np.sort(rng.random(int(rng.integers(1, 400))) * 30 * BUCKET_S)
        bucket = np.ceil(time_s / BUCKET_S).astype(np.int64)
        low = int(bucket.min())
        pending.add_counts("open", low, np.bincount(bucket - low))
        rows.add("open", np.zeros(bucket.shape[0], np.int32), None, 0, time_s)
    released = 0
    for edge in [0, 1, 2, 7, 8, 20, 31, 40]:
        got = pending.release_counts(edge * BUCKET_S).get("open", 0)
        want = rows.release(edge * BUCKET_S).get("open", {"customer": np.empty(0)})["customer"].shape[0]
        assert got == want
        released += got
    assert pending.release_counts(1e9) == {}
    assert released > 0
