"""Deliveries on a shard whose waves are planned on the shards, kept only as what the policy learns from them.

A policy that plans on the shards (docs/model.md §16.5) learns from a bucket's deliveries only their number per
(segment, creative) cell. Queued as events, every delivery carried a customer, a creative, a channel and a time
through the events in flight, was joined with the bucket's other pieces, put in chunk order and then counted
(at 95 million customers, one delivery per customer a day). Here a block's deliveries keep only their time and
creative (and segment, with several), and a bucket's are counted when it is released: the same deliveries in
the same buckets (a delivery is released at the first bucket edge at or after its time, as the events in
flight release it), so the same counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from masssim.engine import kernels
from masssim.policies.cell_counting import count_pairs

_NO_SEGMENTS = np.empty(0, np.int32)  # take_delivered's "one segment"


@dataclass
class _Block:
    time_s: np.ndarray  # ascending: a block's deliveries leave in departure order and arrive a fixed latency later
    creative: np.ndarray
    segment: np.ndarray | None
    cursor: int = 0  # rows before it are released


class DeliveryCells:
    """A shard's deliveries in flight, released bucket by bucket as counts per (segment, creative) cell."""

    def __init__(self, bucket_s: float, segment_of: np.ndarray | None, n_segments: int) -> None:
        self.bucket_s = bucket_s
        self.segment_of = segment_of  # segment of each of the shard's customers; None: one segment
        self.n_segments = n_segments
        self._blocks: list[_Block] = []

    def add(
        self,
        rows: np.ndarray | None,
        customer: np.ndarray,
        creative: np.ndarray,
        departure: np.ndarray,
        latency_s: float,
    ) -> None:
        """The deliveries among a block's sends: its rows ``rows`` (None: every row), which left at ``departure``
        (ascending over the block) and are delivered ``latency_s`` later."""
        segment_of = self.segment_of
        if rows is None:
            time_s = departure + latency_s
            segment = None if segment_of is None else segment_of[customer]
        else:  # one compiled pass gathers the delivered rows (and their segments, when there are several)
            time_s, creative, segment = kernels.take_delivered(
                rows, departure, latency_s, creative, customer, _NO_SEGMENTS if segment_of is None else segment_of
            )
            if segment_of is None:
                segment = None
        if time_s.shape[0] == 0:
            return
        self._blocks.append(_Block(time_s, creative, segment))

    def release(self, until_s: float, cell_creatives: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The deliveries up to the bucket edge ``until_s``, counted per cell ``segment * cell_creatives +
        creative`` (creatives from ``cell_creatives`` on are not counted): (sorted cells, int64 counts), or None
        when there were none."""
        edge = round(until_s / self.bucket_s) * self.bucket_s  # what PendingEvents.release_pieces compares with
        creative_parts: list[np.ndarray] = []
        segment_parts: list[np.ndarray] = []
        keep: list[_Block] = []
        for block in self._blocks:
            end = int(np.searchsorted(block.time_s, edge, side="right"))
            if end > block.cursor:
                creative_parts.append(block.creative[block.cursor : end])
                if block.segment is not None:
                    segment_parts.append(block.segment[block.cursor : end])
                block.cursor = end
            if block.cursor < block.time_s.shape[0]:
                keep.append(block)
        self._blocks = keep
        if not creative_parts:
            return None
        creative = creative_parts[0] if len(creative_parts) == 1 else np.concatenate(creative_parts)
        segment = None
        if segment_parts:
            segment = segment_parts[0] if len(segment_parts) == 1 else np.concatenate(segment_parts)
        return count_cells(segment, creative, self.n_segments, cell_creatives)

    def nbytes(self) -> int:
        """Bytes held by the deliveries in flight."""
        return sum(
            b.time_s.nbytes + b.creative.nbytes + (0 if b.segment is None else b.segment.nbytes) for b in self._blocks
        )


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
