"""Outcomes in flight: computed at send time, known to the world only when their time comes.

A wave's opens, clicks and unsubscribes are drawn as arrays when the wave is sent, but they *happen*
later (an email is read hours after it is sent). They wait here and are released bucket by bucket, so
state, metrics and the policy's learning all see them with a realistic delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EVENT_FIELDS = ("customer", "creative", "channel", "time_s")
# A batch whose released part reaches this many rows and half its length is cut down to what is left, so
# memory is given back as outcomes mature rather than when a wave's last, slowest read comes in.
COMPACT_MIN_ROWS = 256
# A batch lists where its rows of each of its first this many buckets end (four weeks of hourly buckets).
BUCKET_ENDS_LISTED = 672


@dataclass
class _Batch:
    kinds: tuple[str, ...]  # every kind named here shares these rows (a true read is also a recorded open)
    customer: np.ndarray
    creative: np.ndarray | None  # None: nobody needs these events' creatives (their pieces have none)
    channel: int | np.ndarray  # one channel for the whole batch (the usual case) or one per row
    time_s: np.ndarray | None  # None: nobody needs these events' times (counted opens); ``bucket`` is given
    bucket: np.ndarray | None  # int32 bucket index, ascending; None when time_s itself ascends
    cursor: int = 0
    # With ``bucket``: the first bucket, and for each bucket from it on the end of its rows (counted from the
    # batch's first row as added; ``dropped`` rows were since compacted away). Found once, when the batch is
    # added, so that a release finds its rows by indexing a list: no numpy call per batch and bucket (each
    # one lets go of the interpreter's lock and waits to take it back, hundreds a bucket at 95 million).
    first_bucket: int = 0
    bucket_ends: list[int] | None = None
    dropped: int = 0

    def __post_init__(self) -> None:
        bucket = self.bucket
        if bucket is not None and bucket.shape[0]:
            self.first_bucket = int(bucket[0])
            # Read delays have a long tail (a few reads come years later), so only the first buckets are
            # listed; a release past them searches, as every release did before.
            last = min(int(bucket[-1]), self.first_bucket + BUCKET_ENDS_LISTED - 1)
            every = np.arange(self.first_bucket, last + 1, dtype=bucket.dtype)
            self.bucket_ends = np.searchsorted(bucket, every, side="right").tolist()

    def end_of(self, last_bucket: int) -> int:
        """The row after the last one whose bucket is at most ``last_bucket`` (batches with ``bucket``)."""
        k = last_bucket - self.first_bucket
        if k < 0 or self.bucket is None or self.bucket.shape[0] == 0:
            return 0
        ends = self.bucket_ends
        if ends is not None and k < len(ends):
            return ends[k] - self.dropped
        # Past the listed buckets: the key has the array's dtype (a Python int would copy the array to int64).
        return int(np.searchsorted(self.bucket, self.bucket.dtype.type(last_bucket), side="right"))

    def rows(self) -> int:
        return int(self.customer.shape[0])

    def cut(self, lo: int, hi: int) -> dict[str, Any]:
        channel = self.channel
        piece = {  # one channel for the batch stays a number: concatenate makes its column, once for all pieces
            "customer": self.customer[lo:hi],
            "channel": channel if isinstance(channel, int) else channel[lo:hi],
        }
        if self.time_s is not None:
            piece["time_s"] = self.time_s[lo:hi]
        if self.creative is not None:
            piece["creative"] = self.creative[lo:hi]
        return piece

    def compact(self) -> None:
        """Drop the released rows: copy what is left into arrays of its own size."""
        keep = slice(self.cursor, None)
        self.customer = self.customer[keep].copy()
        if self.time_s is not None:
            self.time_s = self.time_s[keep].copy()
        if self.creative is not None:
            self.creative = self.creative[keep].copy()
        if not isinstance(self.channel, int):
            self.channel = self.channel[keep].copy()
        if self.bucket is not None:
            self.bucket = self.bucket[keep].copy()
        self.dropped += self.cursor
        self.cursor = 0


def concatenate(pieces: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """One kind's released pieces as one set of events. Pieces without creatives or times (see
    ``PendingEvents.add``) give events without them; a piece's channel is a number when its batch has one channel."""
    fields = [name for name in EVENT_FIELDS if all(name in p for p in pieces)]
    channels = [p["channel"] for p in pieces]
    if len(pieces) == 1 and not isinstance(channels[0], int):
        return pieces[0]
    events = {
        name: pieces[0][name] if len(pieces) == 1 else np.concatenate([p[name] for p in pieces])
        for name in fields
        if name != "channel"
    }
    rows = events["customer"].shape[0]
    if all(isinstance(c, int) for c in channels) and len(set(channels)) == 1:
        events["channel"] = np.full(rows, channels[0], np.int8)
    else:
        events["channel"] = np.concatenate(
            [
                np.full(p["customer"].shape[0], c, np.int8) if isinstance(c, int) else c
                for p, c in zip(pieces, channels, strict=True)
            ]
        )
    return {name: events[name] for name in fields}


class PendingEvents:
    """Events waiting for their bucket. Within a batch, events are ordered by bucket (not by exact time):
    release happens at bucket edges, so that is all the order it needs, and ordering by a small integer
    is a linear-time radix sort instead of a comparison sort of times.

    Memory follows what is still in flight: a batch keeps its unreleased rows only (see ``COMPACT_MIN_ROWS``),
    and kinds that share rows (a read is also a recorded open) share one batch.
    """

    def __init__(self, bucket_s: float) -> None:
        self.bucket_s = bucket_s
        self._batches: list[_Batch] = []
        # Events that are only ever counted, never read row by row: for each kind, how many in each bucket.
        self._counted: dict[str, dict[int, int]] = {}

    def add(
        self,
        kind: str | tuple[str, ...],
        customer: np.ndarray,
        creative: np.ndarray | None,
        channel: int | np.ndarray,
        time_s: np.ndarray | None,
        *,
        ascending: bool = False,
        sorted_buckets: np.ndarray | None = None,
    ) -> None:
        """Queue events of one kind (or of several kinds that share the rows). ``channel``: one channel index
        for every row, or an int8 array. ``creative``: None when nobody will read these events' creatives
        (their pieces then have no "creative"). ``ascending``: the caller guarantees time_s ascends.
        ``sorted_buckets``: the rows are already ordered by bucket and these are their buckets. Otherwise
        they are ordered here. ``time_s`` may be None with ``sorted_buckets``, when nobody will read the
        events' times (their pieces then have no "time_s")."""
        if customer.shape[0] == 0:
            return
        if time_s is None and sorted_buckets is None:
            raise ValueError("events without times need their buckets (sorted_buckets)")
        kinds = (kind,) if isinstance(kind, str) else tuple(kind)
        if not isinstance(channel, int | np.ndarray):
            channel = int(channel)
        bucket: np.ndarray | None = None
        if sorted_buckets is not None:
            bucket = sorted_buckets.astype(np.int32, copy=False)
        elif not ascending:
            assert time_s is not None
            bucket = self.bucket_of(time_s)
            order = self.order_by_bucket(time_s, bucket)
            customer = customer[order]
            if creative is not None:
                creative = creative[order]
            if not isinstance(channel, int):
                channel = channel[order]
            time_s, bucket = time_s[order], bucket[order].astype(np.int32)
        self._batches.append(_Batch(kinds, customer, creative, channel, time_s, bucket))

    def add_counts(self, kind: str, first_bucket: int, counts: np.ndarray) -> None:
        """Queue events that are only counted when released: ``counts[k]`` of them in bucket
        ``first_bucket + k``. Nothing is kept of them but those counts (:meth:`release_counts`)."""
        held = self._counted.setdefault(kind, {})
        for k in np.flatnonzero(counts).tolist():
            bucket = first_bucket + k
            held[bucket] = held.get(bucket, 0) + int(counts[k])

    def release_counts(self, until_s: float) -> dict[str, int]:
        """How many of the counted events of each kind (:meth:`add_counts`) are in the buckets that end at or
        before ``until_s``, which leave the queue as the rows of :meth:`release_pieces` do."""
        last_bucket = self.last_bucket(until_s)
        released: dict[str, int] = {}
        for kind, held in self._counted.items():
            due = [bucket for bucket in held if bucket <= last_bucket]
            if due:
                released[kind] = sum(held.pop(bucket) for bucket in due)
        return released

    def last_bucket(self, until_s: float) -> int:
        """The last bucket that ends at or before ``until_s`` (a bucket edge)."""
        return round(until_s / self.bucket_s)

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
        return {kind: concatenate(pieces) for kind, pieces in self.release_pieces(until_s).items()}

    def release_pieces(self, until_s: float) -> dict[str, list[dict[str, Any]]]:
        """:meth:`release`'s events of each kind as the pieces they come in, one per batch, in the order that
        :meth:`release` concatenates them: a caller that applies them piece by piece, in order, copies none."""
        last_bucket = self.last_bucket(until_s)
        parts: dict[str, list[dict[str, Any]]] = {}
        keep: list[_Batch] = []
        for batch in self._batches:
            if batch.bucket is None:  # times ascend: bucket k ends at k * bucket_s
                assert batch.time_s is not None
                end = int(np.searchsorted(batch.time_s, last_bucket * self.bucket_s, side="right"))
            else:
                end = batch.end_of(last_bucket)
            if end > batch.cursor:
                piece = batch.cut(batch.cursor, end)
                for kind in batch.kinds:
                    parts.setdefault(kind, []).append(piece)
                batch.cursor = end
            if batch.cursor < batch.rows():
                if batch.cursor >= COMPACT_MIN_ROWS and 2 * batch.cursor >= batch.rows():
                    batch.compact()
                keep.append(batch)
        self._batches = keep
        return parts

    def __len__(self) -> int:
        return sum(b.rows() - b.cursor for b in self._batches)

    def nbytes(self) -> int:
        """Bytes held by the events in flight (released rows awaiting compaction included)."""
        total = 0
        for b in self._batches:
            arrays = [a for a in (b.customer, b.time_s, b.creative, b.bucket) if a is not None]
            if not isinstance(b.channel, int):
                arrays.append(b.channel)
            total += sum(a.nbytes for a in arrays)
        return total
