"""Counting wins per (row, column) cell, and merging counts into sorted cells, in linear passes.

``thompson``'s P(best) table counts each wave's draws per (segment, creative) won, and the bandits' evidence
tables (``cells.CellCounts``) fold each wave's counted events into their sorted non-empty cells. A sparse
matrix built from the draws sorts each row's entries, and an insertion of the new cells into the sorted table
(``np.searchsorted`` then ``np.insert`` per array) passes over the table several times with scattered reads;
here the draws, which come grouped by segment, are counted in a histogram of one row at a time, and the
sorted counts are merged into the sorted table in one pass. The results are exactly those of the numpy
code they replace (the same keys in the same order, the same float64 sums: each count is added once, as an
integer-valued float). Without numba (or with ``MASSSIM_KERNELS=numpy``) that numpy code runs instead.
(Counting the evidence events themselves stays a sort, ``np.unique``: numpy's sort of int64 keys was faster
than a row-by-row count here.)
"""

from __future__ import annotations

import numpy as np

from masssim.policies import compiled as switch
from masssim.policies.compiled import compiled

SCAN_SHARE = 8  # a row with over 1/SCAN_SHARE of its columns hit is read off the histogram, not sorted


def _count_pairs(row, column, n_rows, n_columns):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Distinct (row, column) pairs as keys ``row * n_columns + column`` in increasing order, and how often
    each occurs. When every row's events have one column, one pass counts them; otherwise the events are bucketed
    by row (a counting sort; skipped when the rows come sorted), then each row's columns are counted in a
    histogram of one row, read off in column order."""
    n = row.shape[0]
    # Each row's first column and how often it follows, until a row meets a second column. A persona's
    # roll-out sends it one creative, so a wave's deliveries are often one column per row: then one pass
    # over the events, with tables of one entry per row, gives every count (read off in row order).
    only = np.full(n_rows, -1, np.int64)
    only_count = np.zeros(n_rows, np.int64)
    one_column = True
    for t in range(n):
        r, c = row[t], column[t]
        if only[r] == c:
            only_count[r] += 1
        elif only[r] < 0:
            only[r] = c
            only_count[r] = 1
        else:  # a second column in this row: count as below (what was read so far is read again)
            one_column = False
            break
    if one_column:
        used = 0
        for r in range(n_rows):
            used += only_count[r] > 0
        out_keys = np.empty(used, np.int64)
        out_counts = np.empty(used, np.int64)
        at = 0
        for r in range(n_rows):
            if only_count[r] > 0:
                out_keys[at] = np.int64(r) * n_columns + only[r]
                out_counts[at] = only_count[r]
                at += 1
        return out_keys, out_counts
    start = np.zeros(n_rows + 1, np.int64)
    ordered = True
    if n_rows == 1:  # every event is in the one row (a broadcast's deliveries): no pass to bucket them
        start[1] = n
    else:
        for t in range(n):
            start[row[t] + 1] += 1
            if t > 0 and row[t] < row[t - 1]:
                ordered = False
    for r in range(n_rows):
        start[r + 1] += start[r]
    if ordered:
        by_row = column
    else:
        by_row = np.empty(n, column.dtype)
        fill = start[:-1].copy()
        for t in range(n):
            by_row[fill[row[t]]] = column[t]
            fill[row[t]] += 1
    histogram = np.zeros(n_columns, np.int64)
    seen = np.empty(n_columns, np.int64)
    out_keys = np.empty(n, np.int64)
    out_counts = np.empty(n, np.int64)
    at = 0
    for r in range(n_rows):
        distinct = 0
        for t in range(start[r], start[r + 1]):
            c = by_row[t]
            if histogram[c] == 0:
                seen[distinct] = c
                distinct += 1
            histogram[c] += 1
        if distinct == 0:
            continue
        base = np.int64(r) * n_columns
        if SCAN_SHARE * distinct >= n_columns:  # many columns hit: read them off the histogram, in order
            for c in range(n_columns):
                if histogram[c] > 0:
                    out_keys[at] = base + c
                    out_counts[at] = histogram[c]
                    histogram[c] = 0
                    at += 1
        else:
            row_columns = np.sort(seen[:distinct])
            for j in range(distinct):
                c = row_columns[j]
                out_keys[at] = base + c
                out_counts[at] = histogram[c]
                histogram[c] = 0
                at += 1
    return out_keys[:at].copy(), out_counts[:at].copy()


_count_pairs_compiled = compiled(_count_pairs)


def _compiled_fits(n_events: int, n_rows: int, n_columns: int) -> bool:
    # the row buckets are O(rows) and the histogram O(columns): not for tables far wider than the events
    return switch.NUMBA is not None and n_rows <= 4 * n_events + (1 << 16) and n_columns <= (1 << 26)


def count_pairs(row: np.ndarray, column: np.ndarray, n_rows: int, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys ``row * n_columns + column`` in increasing order, int64 occurrences of each): what
    ``np.unique(keys, return_counts=True)`` gives, from the rows and columns (integer arrays)."""
    if not _compiled_fits(row.shape[0], n_rows, n_columns):
        distinct, counts = np.unique(np.asarray(row, np.int64) * n_columns + column, return_counts=True)
        return distinct, counts.astype(np.int64)
    return _count_pairs_compiled(row, column, int(n_rows), int(n_columns))  # type: ignore[no-any-return]


def _merge_sorted(keys, delivered, clicked, new_keys, new_counts, into_delivered):  # type: ignore[no-untyped-def]  # pragma: no cover
    """The union of sorted cells ``keys`` (with two float64 counts) and sorted distinct ``new_keys``, whose
    counts are added to ``delivered`` (``into_delivered``) or ``clicked``; new cells start from zero."""
    n, m = keys.shape[0], new_keys.shape[0]
    union = n
    i = 0
    for j in range(m):  # cells not yet in the table
        while i < n and keys[i] < new_keys[j]:
            i += 1
        if i == n or keys[i] != new_keys[j]:
            union += 1
    out_keys = np.empty(union, np.int64)
    out_delivered = np.empty(union)
    out_clicked = np.empty(union)
    i = j = at = 0
    while i < n or j < m:
        if j == m or (i < n and keys[i] < new_keys[j]):
            out_keys[at], out_delivered[at], out_clicked[at] = keys[i], delivered[i], clicked[i]
            i += 1
        else:
            if i < n and keys[i] == new_keys[j]:
                d, c = delivered[i], clicked[i]
                i += 1
            else:
                d, c = 0.0, 0.0
            if into_delivered:
                d += np.float64(new_counts[j])
            else:
                c += np.float64(new_counts[j])
            out_keys[at], out_delivered[at], out_clicked[at] = new_keys[j], d, c
            j += 1
        at += 1
    return out_keys, out_delivered, out_clicked


_merge_sorted_compiled = compiled(_merge_sorted)


def merge_counts(
    keys: np.ndarray,
    delivered: np.ndarray,
    clicked: np.ndarray,
    new_keys: np.ndarray,
    new_counts: np.ndarray,
    *,
    into_delivered: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted cells (``keys``, ``delivered``, ``clicked``) with the counts ``new_counts`` of the sorted
    distinct cells ``new_keys`` added to one of the two counts (cells not yet present inserted in order, the
    other count 0). Returns new arrays; the inputs are not changed."""
    if switch.NUMBA is not None:
        return _merge_sorted_compiled(keys, delivered, clicked, new_keys, new_counts, into_delivered)  # type: ignore[no-any-return]
    delivered, clicked = delivered.copy(), clicked.copy()
    position = np.searchsorted(keys, new_keys)
    found = position < keys.shape[0]
    found[found] = keys[position[found]] == new_keys[found]
    target = delivered if into_delivered else clicked
    target[position[found]] += new_counts[found]
    if found.all():
        return keys.copy(), delivered, clicked
    new, at = ~found, position[~found]
    added = new_counts[new].astype(np.float64)
    none = np.zeros(added.shape[0])
    return (
        np.insert(keys, at, new_keys[new]),
        np.insert(delivered, at, added if into_delivered else none),
        np.insert(clicked, at, none if into_delivered else added),
    )


def add_where_present(
    keys: np.ndarray,
    delivered: np.ndarray,
    clicked: np.ndarray,
    new_keys: np.ndarray,
    new_counts: np.ndarray,
    *,
    into_delivered: bool,
) -> bool:
    """When every one of the sorted distinct ``new_keys`` is among the sorted ``keys`` already, add their
    ``new_counts`` to ``delivered`` (``into_delivered``) or ``clicked`` in place and return True; otherwise
    change nothing and return False (``merge_counts`` then inserts them). Once personas roll out, a wave's
    deliveries and clicks fall in cells their test filled: at 95 million customers ``merge_counts`` copied
    millions of cells twice a wave to add a few thousand counts. The same float64 additions either way."""
    if new_keys.shape[0] == 0:
        return True
    if keys.shape[0] == 0 or new_keys[0] < keys[0] or new_keys[-1] > keys[-1]:
        return False
    position = np.searchsorted(keys, new_keys)
    if not np.array_equal(keys[position], new_keys):
        return False
    target = delivered if into_delivered else clicked
    target[position] += new_counts.astype(np.float64)
    return True


def _best_column_loop(keys, delivered, clicked, n_columns, out):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Per row of the sorted cells ``keys`` (``row * n_columns + column``), the column of the highest
    ``clicked / delivered`` among its cells with ``delivered > 0`` (ties: the lowest column) into ``out``;
    rows without such a cell keep their value. One pass: a row's cells are a run of the sorted keys, and the
    row is found by a division only where a run starts."""
    row = -1
    boundary = np.int64(0)  # keys below it are in ``row``
    best = 0.0
    best_column = -1
    for i in range(keys.shape[0]):
        d = delivered[i]
        if not d > 0.0:
            continue
        key = keys[i]
        rate = clicked[i] / d
        if key >= boundary:
            if best_column >= 0:
                out[row] = best_column
            row = key // n_columns
            boundary = (row + 1) * n_columns
            best = rate
            best_column = key - row * n_columns
        elif rate > best:
            best = rate
            best_column = key - row * n_columns
    if best_column >= 0:
        out[row] = best_column


_best_column_compiled = compiled(_best_column_loop)


def best_column(keys: np.ndarray, delivered: np.ndarray, clicked: np.ndarray, n_columns: int, out: np.ndarray) -> bool:
    """Run the compiled ``_best_column_loop`` and return True, or return False without numba (the caller's
    numpy code then does the same)."""
    if switch.NUMBA is None:
        return False
    _best_column_compiled(keys, delivered, clicked, np.int64(n_columns), out)
    return True


def _unique_inverse_loop(keys):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Distinct keys by a hash table (open addressing, linear probing), numbered as first met; then the distinct
    keys sorted and every row's number mapped to its key's rank."""
    n = keys.shape[0]
    bits = 1
    while (1 << bits) < 2 * n:
        bits += 1
    mask = (1 << bits) - 1
    slot_of = np.full(1 << bits, -1, np.int64)
    distinct = np.empty(n, np.int64)
    met = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        key = keys[i]
        # Fibonacci hashing: the top bits of key x 2^64/golden ratio, which spreads keys differing in any bits
        at = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits))
        while slot_of[at] >= 0 and distinct[slot_of[at]] != key:
            at = (at + 1) & mask
        if slot_of[at] < 0:
            slot_of[at] = m
            distinct[m] = key
            m += 1
        met[i] = slot_of[at]
    order = np.argsort(distinct[:m])
    rank = np.empty(m, np.int64)
    for r in range(m):
        rank[order[r]] = r
    inverse = np.empty(n, np.int64)
    for i in range(n):
        inverse[i] = rank[met[i]]
    return distinct[:m][order], inverse


_unique_inverse_compiled = compiled(_unique_inverse_loop)


def unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for int64 ``keys``, the inverse flat: with numba, in linear
    time by a hash table, and a sort of the distinct keys only (a wave's contexts are far fewer than its
    customers). numpy's sorts every key: at 1 million customers a third of ``linucb``'s planning."""
    keys = np.asarray(keys, np.int64)
    if switch.NUMBA is None or keys.shape[0] == 0:
        distinct, inverse = np.unique(keys, return_inverse=True)
        return distinct, inverse.reshape(-1).astype(np.int64, copy=False)
    return _unique_inverse_compiled(keys)  # type: ignore[no-any-return]


def sum_by_key(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct ``keys`` in increasing order, the sum of ``counts`` over each): pieces of counted cells,
    joined. A stable sort, so equal keys' counts are added in the order they come."""
    if keys.shape[0] == 0:
        return keys, counts
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[first], np.add.reduceat(counts, first)
