"""Outcomes in flight (engine/events.py) queued without their creatives release the same events, less the
creative: what the engine does for reads and recorded opens when the policy does not learn from opens."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

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
