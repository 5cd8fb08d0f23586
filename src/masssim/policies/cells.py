"""Deliveries and clicks per (segment, creative) cell: the evidence of test-and-learn and of the bandits.

With k personas and C creatives there are k x C cells, but at most one per message ever delivered is
non-empty: at 1:1 (k = N) or with 20,000 creatives a dense k x C table would not fit in memory, while the
cells actually tested stay a few per persona. So small tables are dense (cheapest to update) and large ones
keep only the non-empty cells, as sorted int64 keys ``segment * C + creative``; events are buffered as keys
and merged when the counts are next read (once per wave), not at every feedback bucket.
"""

from __future__ import annotations

import numpy as np

from masssim.policies.base import Feedback
from masssim.policies.cell_counting import add_where_present, best_column, merge_counts, sum_by_key

DENSE_CELLS = 1 << 20  # up to this many cells (16 MB for both counts) the table is dense


class CellCounts:
    """Deliveries and clicks per (segment, creative) cell, fed from feedback.

    Counts are float64 because a re-clustering (``micro``) carries a share of old evidence over.
    """

    def __init__(self, n_segments: int, n_creatives: int) -> None:
        self.n_segments = int(n_segments)
        self.n_creatives = int(n_creatives)
        self.dense = self.n_segments * self.n_creatives <= DENSE_CELLS
        if self.dense:
            self._delivered = np.zeros(self.n_segments * self.n_creatives)
            self._clicked = np.zeros(self.n_segments * self.n_creatives)
        else:
            self._keys = np.empty(0, np.int64)
            self._delivered = np.empty(0)
            self._clicked = np.empty(0)
            # Per kind, what waits to be merged: events as cell keys (counts None), or cells already counted
            # (a sharded run hands over a bucket's distinct cells with their counts).
            self._pending: dict[str, list[tuple[np.ndarray, np.ndarray | None]]] = {"delivered": [], "click": []}
            self._buffered = 0  # entries (events or counted cells) waiting in _pending

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_segments, self.n_creatives

    @classmethod
    def from_cells(
        cls, n_segments: int, n_creatives: int, keys: np.ndarray, delivered: np.ndarray, clicked: np.ndarray
    ) -> CellCounts:
        """A table holding the given cells (unique keys ``segment * n_creatives + creative``)."""
        out = cls(n_segments, n_creatives)
        if out.dense:
            out._delivered[keys] = delivered
            out._clicked[keys] = clicked
        else:
            order = np.argsort(keys, kind="stable")
            out._keys = keys[order].astype(np.int64)
            out._delivered = np.asarray(delivered, np.float64)[order]
            out._clicked = np.asarray(clicked, np.float64)[order]
        return out

    def add(self, kind: str, segment: np.ndarray | None, creative: np.ndarray) -> None:
        """Count one ``kind`` event ("delivered" or "click") per row; ``segment`` None means one segment."""
        if creative.shape[0] == 0:
            return
        if segment is not None:
            cell = segment.astype(np.int64) * self.n_creatives + creative
        elif self.dense:
            cell = creative  # one segment: a cell is its creative (no per-event segment array or product)
        else:  # the sorted cells' keys are int64; and the buffer keeps a copy, never the caller's array
            cell = creative.astype(np.int64)
        if not self.dense:
            self._buffer(kind, cell, None)
            return
        flat = self._delivered if kind == "delivered" else self._clicked
        if flat.shape[0] <= 4 * cell.shape[0]:
            flat += np.bincount(cell, minlength=flat.shape[0])
        else:  # many cells, few events: do not build a full-size histogram per bucket
            np.add.at(flat, cell, 1.0)

    def add_counts(self, kind: str, cells: np.ndarray, counts: np.ndarray) -> None:
        """Count ``counts`` ``kind`` events in each of the unique ``cells`` (``segment * creatives +
        creative``): the events of a bucket already counted per cell (the shards of a sharded run do that)."""
        if cells.shape[0] == 0:
            return
        if not self.dense:
            # Kept as counted cells: expanded to one key per event (as until session 15), a wave at 95 million
            # customers was 8 bytes per delivery to concatenate and count again.
            self._buffer(kind, cells.astype(np.int64), counts.astype(np.int64))
            return
        flat = self._delivered if kind == "delivered" else self._clicked
        flat[cells] += counts

    def _buffer(self, kind: str, cells: np.ndarray, counts: np.ndarray | None) -> None:
        """Keep events (``counts`` None) or counted cells until the next merge (sparse tables only)."""
        self._pending["delivered" if kind == "delivered" else "click"].append((cells, counts))
        self._buffered += cells.shape[0]
        if 2 * self._buffered >= self.n_segments * self.n_creatives:
            # As many entries as half the cells: counting them by a histogram over the cells is now cheaper
            # than a sort, and merging here bounds the buffer (a wave at 95 million customers would otherwise
            # hold 8 bytes per delivery until the next read).
            self._merge()

    def observe(self, feedback: Feedback, segment_of: np.ndarray | None, keep: np.ndarray | None = None) -> None:
        """Count ``delivered`` and ``click`` events; ``segment_of`` None means one segment; ``keep`` (bool
        per customer) restricts counting to some customers; creatives beyond the table are not counted."""
        for kind in ("delivered", "click"):
            events = feedback.get(kind)
            customer = events["customer"]
            if customer.shape[0] == 0:
                continue
            creative = events["creative"]
            mask = creative < self.n_creatives
            if keep is not None:
                mask &= keep[customer]
            if not mask.all():
                customer, creative = customer[mask], creative[mask]
            self.add(kind, None if segment_of is None else segment_of[customer], creative)

    def _merge(self) -> None:
        """Fold the buffered events and counted cells into the sorted cells (sparse tables only).

        They are counted per cell first (a sort of this wave's entries only), then added to the cells already
        there or inserted in order, in one pass (``cell_counting.merge_counts``). When the entries are at least
        half as many as the cells, they are counted by a histogram over the cells instead (linear, where a sort
        of tens of millions of events per wave is not; the same counts)."""
        self._buffered = 0
        cells = self.n_segments * self.n_creatives
        for kind in ("delivered", "click"):
            buffered = self._pending[kind]
            if not buffered:
                continue
            self._pending[kind] = []
            keys = np.concatenate([key for key, _ in buffered])
            if all(count is None for _, count in buffered):
                weights = None
            else:  # counted cells weigh their count, events one each
                weights = np.concatenate(
                    [np.ones(key.shape[0], np.int64) if count is None else count for key, count in buffered]
                )
            del buffered
            if 2 * keys.shape[0] >= cells:
                # float64 sums of whole numbers are exact below 2^53
                histogram = np.bincount(keys, weights=weights, minlength=cells)
                keys = np.flatnonzero(histogram)
                count = histogram[keys].astype(np.int64)
            elif weights is None:
                keys, count = np.unique(keys, return_counts=True)
            else:
                keys, count = sum_by_key(keys, weights)
            into_delivered = kind == "delivered"
            if not add_where_present(
                self._keys, self._delivered, self._clicked, keys, count, into_delivered=into_delivered
            ):
                self._keys, self._delivered, self._clicked = merge_counts(
                    self._keys, self._delivered, self._clicked, keys, count, into_delivered=into_delivered
                )

    def cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(segment, creative, delivered, clicked) of the non-empty cells, in (segment, creative) order."""
        keys, delivered, clicked = self._cell_keys()
        return keys // self.n_creatives, keys % self.n_creatives, delivered, clicked

    def _cell_keys(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(key, delivered, clicked) of the non-empty cells, in increasing key ``segment * C + creative``."""
        if self.dense:
            keys = np.flatnonzero((self._delivered != 0) | (self._clicked != 0))
            return keys, self._delivered[keys], self._clicked[keys]
        self._merge()
        return self._keys, self._delivered, self._clicked

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """(delivered, clicked) as [segments, creatives] views; dense tables only."""
        if not self.dense:
            raise ValueError("a sparse cell table has no dense view")
        shape = (self.n_segments, self.n_creatives)
        return self._delivered.reshape(shape), self._clicked.reshape(shape)

    def row(self, segment: int) -> tuple[np.ndarray, np.ndarray]:
        """Dense (delivered, clicked) over the creatives of one segment."""
        c = self.n_creatives
        if self.dense:
            lo = segment * c
            return self._delivered[lo : lo + c].copy(), self._clicked[lo : lo + c].copy()
        self._merge()
        lo, hi = np.searchsorted(self._keys, [segment * c, (segment + 1) * c])
        delivered, clicked = np.zeros(c), np.zeros(c)
        delivered[self._keys[lo:hi] - segment * c] = self._delivered[lo:hi]
        clicked[self._keys[lo:hi] - segment * c] = self._clicked[lo:hi]
        return delivered, clicked

    def segment_totals(self) -> tuple[np.ndarray, np.ndarray]:
        """(delivered, clicked) summed over creatives, per segment."""
        return self._totals(per_segment=True)

    def creative_totals(self) -> tuple[np.ndarray, np.ndarray]:
        """(delivered, clicked) summed over segments, per creative."""
        return self._totals(per_segment=False)

    def _totals(self, *, per_segment: bool) -> tuple[np.ndarray, np.ndarray]:
        if self.dense:
            shape = (self.n_segments, self.n_creatives)
            axis = 1 if per_segment else 0
            return self._delivered.reshape(shape).sum(axis=axis), self._clicked.reshape(shape).sum(axis=axis)
        segment, creative, delivered, clicked = self.cells()
        key, size = (segment, self.n_segments) if per_segment else (creative, self.n_creatives)
        return (
            np.bincount(key, weights=delivered, minlength=size),
            np.bincount(key, weights=clicked, minlength=size),
        )

    def greedy(self, default: np.ndarray | int = 0) -> np.ndarray:
        """Per segment, the delivered creative with the highest clicks / delivered (ties: lowest index);
        ``default`` for segments with nothing delivered yet."""
        out = np.empty(self.n_segments, np.int32)
        out[:] = default
        keys, delivered, clicked = self._cell_keys()
        # One compiled pass where numba is (1.25 million cells, a 20-million-customer run's: 3.5 → 1.6 ms, with
        # the shards waiting for the wave's rule); the numpy code below is its definition.
        if best_column(keys, delivered, clicked, self.n_creatives, out):
            return out
        tried = delivered > 0
        if not tried.all():
            keys, delivered, clicked = keys[tried], delivered[tried], clicked[tried]
        if keys.shape[0] == 0:
            return out
        rate = clicked / delivered
        # Keys are sorted, so each segment's cells are a contiguous run, found by a search per segment (not
        # a pass over the cells): its best rate is the maximum over the run, and its first cell at that rate
        # holds the lowest creative among the best. No sort: at 1,000 personas and 20,000 creatives there
        # are millions of cells, judged every wave.
        c = self.n_creatives
        bounds = np.searchsorted(keys, np.arange(self.n_segments + 1, dtype=np.int64) * c)
        sizes = np.diff(bounds)
        starts = bounds[:-1][sizes > 0]
        best = np.repeat(np.maximum.reduceat(rate, starts), sizes[sizes > 0])
        at_best = np.flatnonzero(rate == best)
        segment = keys[at_best] // c
        first = at_best[np.flatnonzero(np.diff(segment, prepend=-1))]
        out[keys[first] // c] = keys[first] % c
        return out

    def unseen(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What ``nth_unseen`` needs: per segment the number of creatives never delivered, and the seen
        cells as (segment start offsets, composite keys)."""
        segment, creative, delivered, _ = self.cells()
        seen = delivered > 0
        segment, creative = segment[seen], creative[seen]
        count = np.bincount(segment, minlength=self.n_segments)
        start = np.concatenate(([0], np.cumsum(count)[:-1]))
        rank = np.arange(segment.shape[0]) - start[segment]
        # creative - rank = number of unseen creatives below it, non-decreasing within a segment
        composite = segment * (self.n_creatives + 1) + (creative - rank)
        return self.n_creatives - count, start, composite

    def nth_unseen(self, segment: np.ndarray, nth: np.ndarray, start: np.ndarray, composite: np.ndarray) -> np.ndarray:
        """The ``nth`` (0-based, in increasing creative order) never-delivered creative of each ``segment``.

        The n-th missing value u of a sorted set s_0 < s_1 < ... is n + #{j : s_j − j ≤ n}."""
        below = np.searchsorted(composite, segment * (self.n_creatives + 1) + nth, side="right") - start[segment]
        return (nth + below).astype(np.int32)
