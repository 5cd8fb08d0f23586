"""Outcomes in flight: computed at send time, known to the world only when their time comes.

A wave's opens, clicks and unsubscribes are drawn as arrays when the wave is sent, but they *happen*
later (an email is read hours after it is sent). They wait here and are released bucket by bucket, so
state, metrics and the policy's learning all see them with a realistic delay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EVENT_FIELDS = ("customer", "creative", "channel", "time_s")


@dataclass
class _Batch:
    kind: str
    customer: np.ndarray
    creative: np.ndarray
    channel: np.ndarray
    time_s: np.ndarray
    bucket: np.ndarray | None  # int32 bucket index, ascending; None when time_s itself ascends
    cursor: int = 0


class PendingEvents:
    """Events waiting for their bucket. Within a batch, events are ordered by bucket (not by exact time):
    release happens at bucket edges, so that is all the order it needs, and ordering by a small integer
    is a linear-time radix sort instead of a comparison sort of times."""

    def __init__(self, bucket_s: float) -> None:
        self.bucket_s = bucket_s
        self._batches: list[_Batch] = []

    def add(
        self,
        kind: str,
        customer: np.ndarray,
        creative: np.ndarray,
        channel: np.ndarray,
        time_s: np.ndarray,
        *,
        ascending: bool = False,
        sorted_buckets: np.ndarray | None = None,
    ) -> None:
        """Queue events. ``ascending``: the caller guarantees time_s ascends. ``sorted_buckets``: the rows
        are already ordered by bucket and these are their buckets. Otherwise they are ordered here."""
        if customer.shape[0] == 0:
            return
        bucket: np.ndarray | None = None
        if sorted_buckets is not None:
            bucket = sorted_buckets.astype(np.int32, copy=False)
        elif not ascending:
            bucket = self.bucket_of(time_s)
            order = self.order_by_bucket(time_s, bucket)
            customer, creative, channel = customer[order], creative[order], channel[order]
            time_s, bucket = time_s[order], bucket[order].astype(np.int32)
        self._batches.append(_Batch(kind, customer, creative, channel, time_s, bucket))

    def bucket_of(self, time_s: np.ndarray) -> np.ndarray:
        """Bucket k holds the times in ((k-1)b, kb]: it is released at time kb."""
        return np.ceil(time_s / self.bucket_s).astype(np.int64)

    def order_by_bucket(self, time_s: np.ndarray, bucket: np.ndarray | None = None) -> np.ndarray:
        """A permutation that orders events by bucket (stable), for callers that share it across kinds."""
        if bucket is None:
            bucket = self.bucket_of(time_s)
        if bucket.shape[0] == 0:
            return np.empty(0, np.int64)
        low = int(bucket.min())
        span = int(bucket.max()) - low
        key = (bucket - low).astype(np.uint16) if span < 65_536 else bucket
        return np.argsort(key, kind="stable")

    def release(self, until_s: float) -> dict[str, dict[str, np.ndarray]]:
        """Every event not yet released whose bucket ends at or before ``until_s`` (a bucket edge)."""
        last_bucket = round(until_s / self.bucket_s)
        parts: dict[str, list[_Batch]] = {}
        slices: dict[str, list[slice]] = {}
        keep: list[_Batch] = []
        for batch in self._batches:
            if batch.bucket is None:  # times ascend: bucket k ends at k * bucket_s
                end = int(np.searchsorted(batch.time_s, last_bucket * self.bucket_s, side="right"))
            else:
                # The key has the array's dtype: a Python int would make numpy copy the array to int64.
                end = int(np.searchsorted(batch.bucket, np.int32(last_bucket), side="right"))
            if end > batch.cursor:
                parts.setdefault(batch.kind, []).append(batch)
                slices.setdefault(batch.kind, []).append(slice(batch.cursor, end))
                batch.cursor = end
            if batch.cursor < batch.time_s.shape[0]:
                keep.append(batch)
        self._batches = keep
        out: dict[str, dict[str, np.ndarray]] = {}
        for kind, batches in parts.items():
            cuts = slices[kind]
            out[kind] = {
                name: np.concatenate([getattr(b, name)[s] for b, s in zip(batches, cuts, strict=True)])
                for name in EVENT_FIELDS
            }
        return out

    def __len__(self) -> int:
        return sum(b.time_s.shape[0] - b.cursor for b in self._batches)
