"""A shard's deliveries counted per cell at release (engine/delivery_cells.py) are the counts of the same
deliveries queued as events (engine/events.py) and counted per cell the way the shards did before."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masssim.engine import delivery_cells
from masssim.engine.delivery_cells import DeliveryCells
from masssim.engine.events import PendingEvents

LATENCY_S = 60.0  # a delivery arrives this long after its departure
BUCKET_S = 900.0


def _as_events(pending: PendingEvents, until_s: float, segment_of, cell_creatives: int):  # type: ignore[no-untyped-def]
    e = pending.release(until_s).get("delivered")
    if e is None or e["customer"].shape[0] == 0:
        return None
    customer, creative = e["customer"], e["creative"]
    counted = creative < cell_creatives
    customer, creative = customer[counted], creative[counted]
    segment = 0 if segment_of is None else segment_of[customer].astype(np.int64)
    keys, counts = np.unique(segment * np.int64(cell_creatives) + creative, return_counts=True)
    return keys, counts.astype(np.int64)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    blocks=st.integers(1, 6),
    n_segments=st.sampled_from([None, 1, 3, 40]),
    creatives=st.integers(1, 30),
    cell_creatives=st.integers(1, 30),
    all_delivered=st.booleans(),
    shuffled=st.booleans(),
    one_creative_per_segment=st.booleans(),
    span=st.sampled_from(["none", "exact", "wider", "narrower"]),
    fast=st.booleans(),
)
def test_counts_match_the_events_in_flight(
    seed, blocks, n_segments, creatives, cell_creatives, all_delivered, shuffled, one_creative_per_segment, span, fast
) -> None:
    """Blocks of every kind: one creative per persona (a roll-out, counted in one compiled pass when the block's
    span is given) or several, with the compiled pass switched off (the general path), given the bounds of the
    departures, bounds wider than them, or (wrongly) narrower ones, which must send the block to the general path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(delivery_cells, "FAST_PATH", fast)
        _check_counts(
            seed, blocks, n_segments, creatives, cell_creatives, all_delivered, shuffled, one_creative_per_segment, span
        )


def _check_counts(  # type: ignore[no-untyped-def]
    seed, blocks, n_segments, creatives, cell_creatives, all_delivered, shuffled, one_creative_per_segment, span
) -> None:
    rng = np.random.default_rng(seed)
    n_customers = 500
    segment_of = None if n_segments is None else rng.integers(0, n_segments, n_customers).astype(np.int32)
    tally = DeliveryCells(BUCKET_S, segment_of, 1 if n_segments is None else n_segments)
    pending = PendingEvents(BUCKET_S)
    start = 0.0
    for _ in range(blocks):
        n = int(rng.integers(0, 200))
        customer = rng.integers(0, n_customers, n).astype(np.int32)
        creative = rng.integers(0, creatives, n).astype(np.int32)
        if one_creative_per_segment:  # each persona's (or, with one segment, everyone's) creative
            choice = rng.integers(0, creatives, 1 if segment_of is None else n_segments or 1).astype(np.int32)
            creative = choice[np.zeros(n, np.int64) if segment_of is None else segment_of[customer]]
        # Delivery times, some exactly on bucket edges (released at that edge, not the next), a latency after
        # their departures.
        times = np.sort(start + rng.integers(0, 40, n) * (BUCKET_S / 4))
        if shuffled:  # a block's rows in plan order: their departures in no particular order
            rng.shuffle(times)
        departure = times - LATENCY_S
        assert np.array_equal(departure + LATENCY_S, times)  # whole seconds: the edges stay exact
        rows = None if all_delivered else np.flatnonzero(rng.random(n) < 0.9)
        bounds = None
        if span != "none" and n:
            # "narrower" breaks the contract: the kernel must notice a row outside, not count past its table
            widen = {"exact": 0.0, "wider": float(rng.integers(0, 3)), "narrower": -2.0}[span] * BUCKET_S
            bounds = (float(departure.min()) - widen, float(departure.max()) + widen)
        tally.add(rows, customer, creative, departure, LATENCY_S, bounds)
        picked = slice(None) if rows is None else rows
        pending.add("delivered", customer[picked], creative[picked], 0, times[picked], ascending=not shuffled)
        start += float(rng.integers(0, 5)) * BUCKET_S
    for edge in range(1, 41):  # past the last delivery: a block starts by bucket 20, ends within 10 more
        until = edge * BUCKET_S
        expected = _as_events(pending, until, segment_of, cell_creatives)
        got = tally.release(until, cell_creatives)
        if expected is None:
            assert got is None
            continue
        assert got is not None
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        assert got[1].dtype == np.int64
    # Everything released: the tally lets its blocks go, as the events in flight do.
    assert tally.nbytes() == 0 and len(pending) == 0


def test_released_blocks_are_let_go() -> None:
    tally = DeliveryCells(BUCKET_S, None, 1)
    times = np.array([10.0, BUCKET_S, BUCKET_S + 1.0])
    tally.add(None, np.arange(3, dtype=np.int32), np.zeros(3, np.int32), times - LATENCY_S, LATENCY_S)
    keys, counts = tally.release(BUCKET_S, 1)  # type: ignore[misc]
    assert keys.tolist() == [0] and counts.tolist() == [2]  # the delivery on the edge is released at it
    assert tally.nbytes() > 0
    keys, counts = tally.release(2 * BUCKET_S, 1)  # type: ignore[misc]
    assert counts.tolist() == [1]
    assert tally.nbytes() == 0 and tally.release(3 * BUCKET_S, 1) is None
