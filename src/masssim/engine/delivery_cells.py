"""Deliveries on a shard whose waves are planned on the shards, kept only as what the policy learns from them.

A policy that plans on the shards (docs/model.md §16.5) learns from a bucket's deliveries only their number per
(segment, creative) cell. Queued as events, every delivery carried a customer, a creative, a channel and a time
through the events in flight, was joined with the bucket's other pieces, put in chunk order and then counted
(at 95 million customers, one delivery per customer a day). Here a block's deliveries are counted per cell as
they are sent, in the bucket that will release them (the first bucket edge at or after the delivery's time, as
the events in flight release it, ``kernels.delivered_buckets``), and a bucket's counts are handed over when it
is released: the same deliveries in the same buckets, so the same counts. Nothing is kept per delivery (until
session 14 a block kept each delivery's time, creative and segment, and counted them at release).
"""

from __future__ import annotations

import numpy as np

from masssim.engine import kernels
from masssim.policies.cell_counting import count_pairs, sum_by_key

_NO_SEGMENTS = np.empty(0, np.int32)  # delivered_buckets' "one segment"
# kernels.delivered_cells counts the usual block (one creative per persona's bucket, small tables) in one
# pass; False (the tests) keeps every block on the general path, its definition.
FAST_PATH = True


class DeliveryCells:
    """A shard's deliveries in flight, counted per (segment, creative) cell in their release bucket as they are
    sent, and released bucket by bucket as those counts."""

    def __init__(self, bucket_s: float, segment_of: np.ndarray | None, n_segments: int) -> None:
        self.bucket_s = bucket_s
        self.segment_of = segment_of  # segment of each of the shard's customers; None: one segment
        self.n_segments = n_segments
        # bucket -> the cells counted in it, a piece per run of a block: (segments or None, creatives, counts).
        self._buckets: dict[int, list[tuple[np.ndarray | None, np.ndarray, np.ndarray]]] = {}

    def add(
        self,
        rows: np.ndarray | None,
        customer: np.ndarray,
        creative: np.ndarray,
        departure: np.ndarray,
        latency_s: float,
        span: tuple[float, float] | None = None,
    ) -> None:
        """The deliveries among a block's sends: its rows ``rows`` (None: every row), which left at ``departure``
        (in any order) and are delivered ``latency_s`` later; ``span``, bounds of the block's departures."""
        segment_of = self.segment_of
        segments = _NO_SEGMENTS if segment_of is None else segment_of
        if FAST_PATH and kernels.delivered_cells is not None and span is not None:
            first_s, last_s = span
            done, buckets, piece_start, cell_segment, cell_creative, cell_count = kernels.delivered_cells(
                rows,
                departure,
                first_s,
                last_s,
                latency_s,
                self.bucket_s,
                creative,
                customer,
                segments,
                self.n_segments,
            )
            if done:  # the usual block: every bucket's cells counted in one compiled pass
                starts = piece_start.tolist()
                for j, bucket in enumerate(buckets.tolist()):
                    lo, hi = starts[j], starts[j + 1]
                    piece = (
                        None if segment_of is None else cell_segment[lo:hi],
                        cell_creative[lo:hi],
                        cell_count[lo:hi],
                    )
                    self._buckets.setdefault(bucket, []).append(piece)
                return
        run_bucket, run_start, creative, segment, width = kernels.delivered_buckets(
            rows, departure, latency_s, self.bucket_s, creative, customer, segments
        )
        starts = run_start.tolist()
        for j, bucket in enumerate(run_bucket.tolist()):
            lo, hi = starts[j], starts[j + 1]
            piece = _count_run(None if segment_of is None else segment[lo:hi], creative[lo:hi], self.n_segments, width)
            self._buckets.setdefault(bucket, []).append(piece)

    def release(self, until_s: float, cell_creatives: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The deliveries up to the bucket edge ``until_s``, counted per cell ``segment * cell_creatives +
        creative`` (creatives from ``cell_creatives`` on are not counted): (sorted cells, int64 counts), or None
        when there were none."""
        last = round(until_s / self.bucket_s)  # the bucket ending at this edge, as PendingEvents releases it
        due = sorted(bucket for bucket in self._buckets if bucket <= last)
        if not due:
            return None
        pieces = [piece for bucket in due for piece in self._buckets.pop(bucket)]
        cells = []
        counts = []
        for segment, creative, count in pieces:
            counted = creative < cell_creatives
            cell = creative.astype(np.int64)
            if segment is not None:
                cell += segment.astype(np.int64) * cell_creatives
            cells.append(cell[counted])
            counts.append(count[counted])
        if len(pieces) == 1:  # a piece's cells are distinct and ascending already
            return cells[0], counts[0]
        return sum_by_key(np.concatenate(cells), np.concatenate(counts))

    def nbytes(self) -> int:
        """Bytes held by the counts in flight."""
        return sum(
            creative.nbytes + count.nbytes + (0 if segment is None else segment.nbytes)
            for pieces in self._buckets.values()
            for segment, creative, count in pieces
        )


def _count_run(
    segment: np.ndarray | None, creative: np.ndarray, n_segments: int, width: int
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """One bucket's deliveries of a block as (segments or None, creatives, int64 counts) of their distinct
    cells, in ascending (segment, creative) order; ``width``: one more than the largest creative."""
    if segment is None:
        if width <= 4 * creative.shape[0] + (1 << 16):  # a histogram no wider than the events: one pass
            histogram = kernels.counts(creative, width)
            used = np.flatnonzero(histogram)
            return None, used.astype(np.int32), histogram[used]
        used, count = np.unique(creative, return_counts=True)
        return None, used.astype(np.int32), count.astype(np.int64)
    keys, count = count_pairs(segment, creative, n_segments, width)
    row = keys // width
    return row.astype(np.int32), (keys - row * width).astype(np.int32), count


def count_cells(
    segment: np.ndarray | None, creative: np.ndarray, n_segments: int, cell_creatives: int
) -> tuple[np.ndarray, np.ndarray]:
    """Events counted per cell ``segment * cell_creatives + creative`` (``segment`` None: one segment; creatives
    from ``cell_creatives`` on are not counted): (sorted distinct cells, int64 counts), in linear time
    (``count_pairs``, what ``np.unique`` of the cells with their counts gives)."""
    counted = creative < cell_creatives
    if not counted.all():
        creative = creative[counted]
        segment = None if segment is None else segment[counted]
    if segment is None:
        segment = np.zeros(creative.shape[0], np.int32)
    return count_pairs(segment, creative, n_segments, cell_creatives)
