"""Counting events per cell in linear passes gives exactly what the sorts gave (policies/cell_counting.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from masssim.policies import cells as cells_module
from masssim.policies import compiled as compiled_switch
from masssim.policies.bandits import win_shares
from masssim.policies.cell_counting import add_where_present, count_pairs, merge_counts, unique_inverse
from masssim.policies.cells import CellCounts


@st.composite
def cell_events(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    """Event keys row * columns + column, with crowded and empty rows and both kinds of rows (sorted and scanned)."""
    rows = draw(st.integers(1, 40))
    columns = draw(st.integers(1, 300))
    n = draw(st.integers(0, 600))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    row = (rng.random(n) ** draw(st.sampled_from([1, 3])) * rows).astype(np.int64)  # some rows much busier
    column = (rng.random(n) ** draw(st.sampled_from([1, 4])) * columns).astype(np.int64)
    return row * columns + column, rows, columns


@settings(max_examples=150, deadline=None)
@given(cell_events())
def test_count_pairs_is_unique_with_counts(case: tuple[np.ndarray, int, int]) -> None:
    keys, rows, columns = case
    got_keys, got_counts = count_pairs(keys // columns, keys % columns, rows, columns)
    want_keys, want_counts = np.unique(keys, return_counts=True)
    np.testing.assert_array_equal(got_keys, want_keys)
    np.testing.assert_array_equal(got_counts, want_counts)


def test_count_pairs_in_one_row() -> None:
    """One row (a broadcast's deliveries) skips bucketing the events by row: the same keys and counts."""
    column = np.random.default_rng(3).integers(0, 5000, 20_000).astype(np.int32)
    for n_columns in (5000, 80_000):  # read off the histogram, and sorted
        got_keys, got_counts = count_pairs(np.zeros(column.shape[0], np.int32), column, 1, n_columns)
        want_keys, want_counts = np.unique(column.astype(np.int64), return_counts=True)
        np.testing.assert_array_equal(got_keys, want_keys)
        np.testing.assert_array_equal(got_counts, want_counts)


@pytest.mark.parametrize("second_column_at", [None, 0, 7_000, 19_999])
def test_count_pairs_with_one_column_per_row(second_column_at: int | None) -> None:
    """A persona's roll-out: each row's events share one column (counted in one pass), in rows that come in any
    order; a second column in a row, at the first event, in the middle or at the last, falls back to the full
    count. The same keys and counts as np.unique either way."""
    rng = np.random.default_rng(8)
    n_rows, n_columns = 1000, 20_000
    choice = rng.integers(0, n_columns, n_rows)
    row = rng.integers(0, n_rows - 10, 20_000)  # the last rows have no events
    column = choice[row]
    if second_column_at is not None:
        column[second_column_at] = (column[second_column_at] + 1) % n_columns
    got_keys, got_counts = count_pairs(row, column, n_rows, n_columns)
    want_keys, want_counts = np.unique(row * n_columns + column, return_counts=True)
    np.testing.assert_array_equal(got_keys, want_keys)
    np.testing.assert_array_equal(got_counts, want_counts)


def _merged_from_scratch(
    keys: np.ndarray, delivered: np.ndarray, clicked: np.ndarray, new_keys: np.ndarray, counts: np.ndarray, into: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The union rebuilt from a dictionary: the reference the one-pass merge must equal."""
    table = {int(k): [float(d), float(c)] for k, d, c in zip(keys, delivered, clicked, strict=True)}
    for k, n in zip(new_keys.tolist(), counts.tolist(), strict=True):
        table.setdefault(k, [0.0, 0.0])[0 if into else 1] += float(n)
    union = np.array(sorted(table), np.int64)
    return union, np.array([table[k][0] for k in union.tolist()]), np.array([table[k][1] for k in union.tolist()])


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 80), st.integers(0, 80), st.booleans())
def test_merge_counts_equals_a_rebuild(seed: int, old: int, new: int, into: bool) -> None:
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, 150, old)).astype(np.int64)
    delivered = rng.integers(0, 9, keys.shape[0]).astype(np.float64) + rng.random(keys.shape[0])  # shares carry over
    clicked = rng.integers(0, 3, keys.shape[0]).astype(np.float64)
    new_keys = np.unique(rng.integers(0, 150, new)).astype(np.int64)
    counts = rng.integers(1, 5, new_keys.shape[0]).astype(np.int64)
    before = (keys.copy(), delivered.copy(), clicked.copy())
    got = merge_counts(keys, delivered, clicked, new_keys, counts, into_delivered=into)
    want = _merged_from_scratch(keys, delivered, clicked, new_keys, counts, into)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip((keys, delivered, clicked), before, strict=True):  # the inputs are left as they were
        np.testing.assert_array_equal(a, b)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 80), st.integers(0, 80), st.booleans(), st.booleans())
def test_adding_where_present_equals_the_merge(seed: int, old: int, new: int, into: bool, subset: bool) -> None:
    """New cells all in the table: added in place, what merge_counts returns. One cell not in it: nothing
    changes and the merge is left to do."""
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, 150, old)).astype(np.int64)
    delivered = rng.integers(0, 9, keys.shape[0]).astype(np.float64) + rng.random(keys.shape[0])
    clicked = rng.integers(0, 3, keys.shape[0]).astype(np.float64)
    pool = keys if subset and keys.shape[0] else np.arange(150)
    new_keys = np.unique(rng.choice(pool, new)).astype(np.int64) if new else np.empty(0, np.int64)
    counts = rng.integers(1, 5, new_keys.shape[0]).astype(np.int64)
    want = merge_counts(keys, delivered, clicked, new_keys, counts, into_delivered=into)
    before = (keys.copy(), delivered.copy(), clicked.copy())
    present = bool(np.isin(new_keys, keys).all())
    assert add_where_present(keys, delivered, clicked, new_keys, counts, into_delivered=into) == present
    for a, b in zip((keys, delivered, clicked), want if present else before, strict=True):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 3000), st.sampled_from([1, 7, 400, 2**62]), st.booleans())
def test_unique_inverse_is_numpys(seed: int, n: int, spread: int, signed: bool) -> None:
    """Distinct keys sorted, and each row's position among them, as np.unique gives them: few distinct keys or
    many, keys far apart (the hash's top bits), negative ones."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(-spread if signed else 0, spread, n, dtype=np.int64)
    got = unique_inverse(keys)
    want_keys, want_inverse = np.unique(keys, return_inverse=True)
    np.testing.assert_array_equal(got[0], want_keys)
    np.testing.assert_array_equal(got[1], want_inverse.reshape(-1))
    assert got[0].dtype == np.int64 and got[1].dtype == np.int64


@pytest.mark.parametrize("compiled", [True, False])
def test_incremental_cells_equal_one_count_of_every_event(monkeypatch: pytest.MonkeyPatch, compiled: bool) -> None:
    """A sparse table merged wave after wave (reads between the waves) holds what counting all events at once
    gives, with the compiled passes and with the numpy fallback."""
    monkeypatch.setattr(cells_module, "DENSE_CELLS", 0)
    if not compiled:
        monkeypatch.setattr(compiled_switch, "NUMBA", None)
    s, c = 60, 500
    table = CellCounts(s, c)
    rng = np.random.default_rng(11)
    every = {"delivered": [], "click": []}
    for _wave in range(5):
        for _bucket in range(3):
            segment = (rng.random(2000) ** 2 * s).astype(np.int64)
            creative = (rng.random(2000) ** 3 * c).astype(np.int32)
            clicked = rng.random(2000) < 0.2
            table.add("delivered", segment, creative)
            table.add("click", segment[clicked], creative[clicked])
            every["delivered"].append(segment * c + creative)
            every["click"].append(segment[clicked] * c + creative[clicked])
        table.cells()  # a read merges the wave's events, as each plan does
    keys, delivered, clicked = table._cell_keys()
    d_keys, d_counts = np.unique(np.concatenate(every["delivered"]), return_counts=True)
    c_keys, c_counts = np.unique(np.concatenate(every["click"]), return_counts=True)
    want_keys = np.union1d(d_keys, c_keys)
    np.testing.assert_array_equal(keys, want_keys)
    want_delivered = np.zeros(want_keys.shape[0])
    want_delivered[np.searchsorted(want_keys, d_keys)] = d_counts
    want_clicked = np.zeros(want_keys.shape[0])
    want_clicked[np.searchsorted(want_keys, c_keys)] = c_counts
    np.testing.assert_array_equal(delivered, want_delivered)
    np.testing.assert_array_equal(clicked, want_clicked)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 400))
def test_win_shares_equal_the_summed_sparse_matrix(seed: int, segments: int, creatives: int) -> None:
    """The P(best) table as the CSR conversion with summed duplicates built it before."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, 50, segments)
    row_segment = np.repeat(np.arange(segments), draws)
    winner = (rng.random(row_segment.shape[0]) ** 3 * creatives).astype(np.int32)
    got = win_shares(row_segment, winner, draws, creatives)
    want = sparse.csr_matrix((np.ones(winner.shape[0]), (row_segment, winner)), shape=(segments, creatives))
    want.sum_duplicates()
    want.data /= np.repeat(draws, np.diff(want.indptr))
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)
