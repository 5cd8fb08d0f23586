"""The scale pieces of the policies: sparse cell counts and sparse Thompson draws agree with the dense ones."""

from __future__ import annotations

import numpy as np
import pytest

from masssim.policies import cells as cells_module
from masssim.policies import compiled as compiled_switch
from masssim.policies.cells import CellCounts


def _fill(table: CellCounts, rng: np.random.Generator, events: int) -> None:
    s, c = table.shape
    for _ in range(3):  # several buckets, as the engine sends them
        segment = rng.integers(0, s, events)
        creative = (rng.random(events) ** 3 * c).astype(np.int32)  # low creatives tested more
        table.add("delivered", segment, creative)
        clicked = rng.random(events) < 0.3
        table.add("click", segment[clicked], creative[clicked])


def _both(monkeypatch: pytest.MonkeyPatch, s: int, c: int, events: int) -> tuple[CellCounts, CellCounts]:
    dense = CellCounts(s, c)
    monkeypatch.setattr(cells_module, "DENSE_CELLS", 0)
    sparse = CellCounts(s, c)
    assert dense.dense and not sparse.dense
    _fill(dense, np.random.default_rng(3), events)
    _fill(sparse, np.random.default_rng(3), events)
    return dense, sparse


def test_sparse_cells_count_as_the_dense_table(monkeypatch: pytest.MonkeyPatch) -> None:
    dense, sparse = _both(monkeypatch, 50, 40, 3000)
    for a, b in zip(dense.cells(), sparse.cells(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        dense.segment_totals() + dense.creative_totals(),
        sparse.segment_totals() + sparse.creative_totals(),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    default = np.arange(50, dtype=np.int32) % 7
    np.testing.assert_array_equal(dense.greedy(default), sparse.greedy(default))
    for s in (0, 17, 49):
        np.testing.assert_array_equal(np.stack(dense.row(s)), np.stack(sparse.row(s)))
    # the greedy choice is the argmax of clicks / delivered over delivered cells, lowest index on ties
    delivered, clicked = dense.table()
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(delivered > 0, clicked / delivered, -1.0)
    expected = np.where(delivered.sum(axis=1) > 0, np.argmax(rate, axis=1), default)
    np.testing.assert_array_equal(sparse.greedy(default), expected)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("events", [1, 20, 200, 5000])
def test_greedy_is_the_first_best_rate_with_ties_and_untested_segments(
    monkeypatch: pytest.MonkeyPatch, events: int, compiled: bool
) -> None:
    """Few events: most segments untested, and rates of 0, 1/2 and 1 tie often; the lowest creative wins.
    The same with the compiled pass (the default) and with the numpy code that defines it."""
    if not compiled:
        monkeypatch.setattr(compiled_switch, "NUMBA", None)
    dense, sparse = _both(monkeypatch, 60, 9, events)
    delivered, clicked = dense.table()
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(delivered > 0, clicked / delivered, -1.0)
    default = np.full(60, 5, np.int32)
    expected = np.where(delivered.sum(axis=1) > 0, np.argmax(rate, axis=1), default)
    assert events > 20 or (delivered.sum(axis=1) == 0).any()  # the small cases leave segments untested
    np.testing.assert_array_equal(dense.greedy(default), expected)
    np.testing.assert_array_equal(sparse.greedy(default), expected)


def test_nth_unseen_creative_matches_a_dense_search(monkeypatch: pytest.MonkeyPatch) -> None:
    for table in _both(monkeypatch, 30, 25, 150):
        delivered, _ = (np.stack(x) for x in zip(*(table.row(s) for s in range(30)), strict=True))
        unseen = delivered == 0
        n_unseen, start, composite = table.unseen()
        np.testing.assert_array_equal(n_unseen, unseen.sum(axis=1))
        order = np.argsort(~unseen, axis=1, kind="stable")
        segment = np.repeat(np.flatnonzero(n_unseen), n_unseen[n_unseen > 0])
        nth = np.concatenate([np.arange(m) for m in n_unseen[n_unseen > 0]])
        np.testing.assert_array_equal(table.nth_unseen(segment, nth, start, composite), order[segment, nth])


def test_runs_are_the_same_with_sparse_cell_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sparse table is an implementation detail: forcing it everywhere changes no result."""
    import masssim
    from conftest import small_scenario

    scenario = small_scenario(
        replications=1,
        population={"customers": 4_000, "crm_scores": 1},
        creatives={"count": 12, "quality_sd": 0.3},
        arms=[
            {"name": "segments", "policy": "segments", "segments": 300},
            {"name": "bespoke", "policy": "segments", "segments": 50, "bespoke": True},
            {"name": "epsilon_greedy", "policy": "epsilon_greedy", "segments": 4},
            {"name": "thompson", "policy": "thompson"},
            {"name": "individual", "policy": "individual"},
        ],
    )
    dense = masssim.run(scenario, seed=5, workers=1).summary
    monkeypatch.setattr(cells_module, "DENSE_CELLS", 0)
    sparse = masssim.run(scenario, seed=5, workers=1).summary
    assert sparse["arms"] == dense["arms"]


@pytest.mark.slow
def test_bandits_beat_random_with_many_creatives() -> None:
    """Beyond 256 creatives thompson draws only the argmax of each posterior draw; it still learns."""
    import masssim
    from conftest import small_scenario

    scenario = small_scenario(
        replications=6,
        horizon_days=14,
        population={"customers": 60_000},
        creatives={"count": 400, "quality_sd": 0.5},
        arms=[
            {"name": "random", "policy": "random"},
            {"name": "epsilon_greedy", "policy": "epsilon_greedy"},
            {"name": "thompson", "policy": "thompson"},
        ],
    )
    diff = masssim.run(scenario, seed=33, workers=1).summary["differences_vs_baseline"]
    assert diff["epsilon_greedy"]["clicks"]["ci_low"] > 0
    assert diff["thompson"]["clicks"]["ci_low"] > 0


@pytest.mark.parametrize("sparse", [False, True])
def test_one_segment_counts_creatives_as_a_zero_segment_would(monkeypatch: pytest.MonkeyPatch, sparse: bool) -> None:
    """``add(kind, None, creative)`` (one segment: the cell is the creative) counts what ``add`` with an
    all-zero segment counts, dense or sparse, and never keeps the caller's array (int64 creatives included)."""
    if sparse:
        monkeypatch.setattr(cells_module, "DENSE_CELLS", 0)
    rng = np.random.default_rng(11)
    # Fewer events than half the cells, so that a sparse table buffers them until it is read.
    by_none, by_zeros = CellCounts(1, 10_000), CellCounts(1, 10_000)
    assert by_none.dense is not sparse
    for dtype in (np.int32, np.int64, np.int32):  # several buckets
        creative = (rng.random(1000) ** 2 * 10_000).astype(dtype)
        clicked = creative[rng.random(1000) < 0.2]
        by_zeros.add("delivered", np.zeros(creative.shape[0], np.int64), creative)
        by_zeros.add("click", np.zeros(clicked.shape[0], np.int64), clicked)
        by_none.add("delivered", None, creative)
        by_none.add("click", None, clicked)
        creative[:] = 0  # the caller reuses its arrays: the counts must not change with them
        clicked[:] = 0
    for a, b in zip(by_none.cells(), by_zeros.cells(), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    np.testing.assert_array_equal(by_none.greedy(), by_zeros.greedy())


@pytest.mark.parametrize("events", [200, 5000])  # fewer entries than half the cells (a sort), and more (a histogram)
def test_counted_cells_count_as_their_events(monkeypatch: pytest.MonkeyPatch, events: int) -> None:
    """``add_counts`` (a bucket's distinct cells with their counts, as a sharded run hands them over) counts
    what ``add`` of the same events counts, in a dense table and in a sparse one; the sparse table keeps the
    counted cells as they are (not one key per event) until it is read, and events and counted cells mix."""
    rng = np.random.default_rng(5)
    s, c = 40, 60
    by_events = CellCounts(s, c)
    monkeypatch.setattr(cells_module, "DENSE_CELLS", 0)
    by_cells, mixed = CellCounts(s, c), CellCounts(s, c)
    assert by_events.dense and not by_cells.dense
    handed = 0  # counted cells handed to by_cells, and the events they stand for
    stood_for = 0
    for bucket in range(4):
        for kind, share in (("delivered", 1.0), ("click", 0.3)):
            segment = rng.integers(0, s, events)
            creative = (rng.random(events) ** 3 * c).astype(np.int32)
            keep = rng.random(events) < share
            segment, creative = segment[keep], creative[keep]
            by_events.add(kind, segment, creative)
            cells, counts = np.unique(segment.astype(np.int64) * c + creative, return_counts=True)
            by_cells.add_counts(kind, cells, counts)
            handed += cells.shape[0]
            stood_for += int(counts.sum())
            if bucket % 2:
                mixed.add(kind, segment, creative)
            else:
                mixed.add_counts(kind, cells, counts)
            if 2 * handed < s * c:  # not merged yet: the buckets wait as their cells, not one key per event
                assert by_cells._buffered == handed < stood_for
    for table in (by_cells, mixed):
        for a, b in zip(by_events.cells(), table.cells(), strict=True):
            np.testing.assert_array_equal(a, b)
