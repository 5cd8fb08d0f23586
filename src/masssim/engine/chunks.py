"""Customer chunks: the unit of randomness that makes a replication independent of how it is split.

Customers are cut into chunks of ``CUSTOMER_CHUNK`` consecutive indices. Every random draw that concerns
one customer comes from a stream of that customer's chunk, one stream per chunk *and* per kind of draw
(:class:`Draw`), consumed in the order of the chunk's rows. A numpy generator gives the same numbers for
``random(a)`` then ``random(b)`` as for ``random(a + b)``, so the sizes of the calls (response blocks,
shards) never move a draw from one customer to another: a customer's outcomes depend on the seed and on
the order of its own chunk's rows only. That is what lets the engine run the customers of one replication
in shards, in one process or on several workers, with the same bytes (docs/model.md §16).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from masssim.engine import kernels
from masssim.model.streams import chunk_sequence, generator

CUSTOMER_CHUNK = 1 << 16  # customers per chunk; never change it: it would change every result


class Draw(IntEnum):
    """Kinds of per-customer draws of an arm's response stream, each a stream of its own per chunk.
    Never renumber: it would change every result."""

    SEND = 0  # one float64 per send: its uniform (delivery, read, click rescaled, pre-fetch band) and its
    # unsubscribe uniform, from disjoint bits (kernels.send_uniform_numpy)
    UNSUBSCRIBE = 1  # drawn from until session 19; the send's draw carries it now
    READ_DELAY = 2  # standard normal of the log-normal delay to the read
    ACTIVE_WINDOW = 3  # jitter of a read moved into the customer's active window
    PREFETCH = 4
    REPLY = 5
    DIRECT_START = 6  # does a click start a purchase occasion?
    DIRECT_CHOICE = 7  # is our brand chosen at it?
    PULL_FORWARD = 8  # did it use up a later occasion?
    CONVERSATION_PULL_FORWARD = 9  # the same, for a purchase in a conversation a reply started


# Kinds drawn a few rows at a time for rows in no particular order (a bucket's clicks, spread over every
# chunk): float64 uniforms taken from a buffer per chunk that is refilled from the chunk's stream, rather
# than one generator call per chunk per bucket. The values are the stream's, in the same order.
BUFFERED_KINDS = frozenset({Draw.DIRECT_START, Draw.DIRECT_CHOICE, Draw.PULL_FORWARD, Draw.CONVERSATION_PULL_FORWARD})
BUFFER_ROWS = 1024  # values per chunk and kind held ahead (8 KB); a call needing more grows the buffers


@dataclass(frozen=True)
class ChunkLayout:
    """How ``n`` customers are cut into chunks of ``size``.

    ``offset``: the arrays this layout indexes start at customer ``offset`` (a shard holding customers
    ``offset..``; a multiple of ``size``): row i is customer ``offset + i``, in chunk ``(offset + i) // size``.
    Chunk numbers and :meth:`bounds` are the whole population's; ``n`` is the whole population's size.
    """

    n: int
    size: int = CUSTOMER_CHUNK
    offset: int = 0

    @property
    def count(self) -> int:
        return -(-self.n // self.size)

    def bounds(self, chunk: int) -> tuple[int, int]:
        """Customers of ``chunk`` (whole-population indices)."""
        lo = chunk * self.size
        return lo, min(lo + self.size, self.n)

    def of(self, customer: np.ndarray) -> np.ndarray:
        """Chunk index of each row (a small unsigned type, so a stable sort of it is a radix sort)."""
        customer = np.asarray(customer)
        if self.offset:
            customer = customer + self.offset
        # A power of two (always, but for tests' odd sizes) divides by a shift, several times faster.
        power_of_two = self.size & (self.size - 1) == 0
        chunk = customer >> (self.size.bit_length() - 1) if power_of_two else customer // self.size
        return chunk.astype(np.uint16 if self.count <= 1 << 16 else np.uint32, copy=False)

    def shifted(self, offset: int) -> ChunkLayout:
        """The same chunks, for arrays that start at customer ``offset``."""
        if offset % self.size:
            raise ValueError(f"a shard must start at a chunk boundary (a multiple of {self.size}); got {offset}")
        return ChunkLayout(self.n, self.size, offset)


def sort_by_chunk(layout: ChunkLayout, customer: np.ndarray) -> np.ndarray | None:
    """The stable permutation that orders rows by chunk, or None when they are in one chunk already (or
    already in chunk order). Rows of one chunk keep their order."""
    if customer.shape[0] < 2:
        return None
    chunk = layout.of(customer)
    if not (chunk[1:] < chunk[:-1]).any():
        return None
    return np.argsort(chunk, kind="stable")


# Below this many rows per run of one chunk on average, rows are grouped by a sort instead of drawn run by run.
_MIN_ROWS_PER_RUN = 256


def _increasing_segments(layout: ChunkLayout, customer: np.ndarray) -> Iterator[tuple[int, slice, int]]:
    """:func:`_segments` of rows whose customers increase: each chunk's rows are one slice, whose ends a
    binary search per chunk finds (no pass over the rows). The same rows of each chunk in the same order."""
    n = customer.shape[0]
    if n == 0:
        return
    first = (int(customer[0]) + layout.offset) // layout.size
    last = (int(customer[-1]) + layout.offset) // layout.size
    # Where each later chunk's rows start: its first customer, as a row of the arrays this layout indexes.
    edges = np.arange(first + 1, last + 1, dtype=np.int64) * layout.size - layout.offset
    cuts = np.searchsorted(customer, edges.astype(customer.dtype, copy=False), side="left").tolist()
    for chunk, a, b in zip(range(first, last + 1), [0, *cuts], [*cuts, n], strict=True):
        if b > a:
            yield chunk, slice(a, b), b - a


def _segments(layout: ChunkLayout, customer: np.ndarray) -> Iterator[tuple[int, np.ndarray | slice, int]]:
    """(chunk, rows of ``customer`` in that chunk, their count), covering every row; a chunk's rows come in
    their order (a chunk may come back in several pieces, in row order). A wave's rows are long runs of one
    chunk (customers ascend within each region's group), drawn into contiguous slices; rows in no useful
    order are grouped by a stable sort instead. Either way each chunk's stream is read in row order, so the
    values are the same."""
    n = customer.shape[0]
    if n == 0:
        return
    power_of_two = layout.size & (layout.size - 1) == 0
    if power_of_two:  # one compiled pass finds where the chunk changes, with no per-row temporary
        shift = layout.size.bit_length() - 1
        starts = kernels.chunk_run_starts(customer, layout.offset, shift)
        first = (int(customer[0]) + layout.offset) >> shift
        if starts.shape[0] == 0:
            yield first, slice(None), n
            return
        if (starts.shape[0] + 1) * _MIN_ROWS_PER_RUN <= n:
            for a, b in itertools.pairwise([0, *starts.tolist(), n]):
                yield (int(customer[a]) + layout.offset) >> shift, slice(a, b), b - a
            return
    chunk = layout.of(customer)
    if not power_of_two:
        starts = np.flatnonzero(chunk[1:] != chunk[:-1]) + 1
        if starts.shape[0] == 0:
            yield int(chunk[0]), slice(None), n
            return
        if (starts.shape[0] + 1) * _MIN_ROWS_PER_RUN <= n:
            for a, b in itertools.pairwise([0, *starts.tolist(), n]):
                yield int(chunk[a]), slice(a, b), b - a
            return
    order = np.argsort(chunk, kind="stable")
    sorted_chunk = chunk[order]
    edges = np.flatnonzero(sorted_chunk[1:] != sorted_chunk[:-1]) + 1
    lo = np.concatenate(([0], edges))
    hi = np.concatenate((edges, [n]))
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        yield int(sorted_chunk[a]), order[a:b], b - a


class ChunkDraws:
    """The per-chunk, per-kind generators of one component (an arm's responses): draws for rows of
    customers, each row's value taken from its customer's chunk stream in row order."""

    def __init__(self, sequence: np.random.SeedSequence, layout: ChunkLayout) -> None:
        self.sequence = sequence
        self.layout = layout
        self._generators: dict[tuple[int, int], np.random.Generator] = {}
        self._buffers: dict[int, _ChunkBuffers] = {}

    def generator(self, chunk: int, kind: Draw) -> np.random.Generator:
        key = (chunk, int(kind))
        rng = self._generators.get(key)
        if rng is None:
            rng = generator(chunk_sequence(chunk_sequence(self.sequence, chunk), int(kind)))
            self._generators[key] = rng
        return rng

    def segments(self, customer: np.ndarray, increasing: bool = False) -> list[tuple[int, np.ndarray | slice, int]]:
        """How ``customer``'s rows fall into chunks, for several kinds of draws on the same rows. ``increasing``:
        the caller knows the customers strictly increase (a plan's rows, as the policies here list them, and
        any subsequence of them), so the chunks' ends are found by binary search, not by a pass over the rows."""
        if increasing:
            return list(_increasing_segments(self.layout, customer))
        return list(_segments(self.layout, customer))

    def random(
        self,
        customer: np.ndarray,
        kind: Draw,
        dtype: type = np.float64,
        segments: list[tuple[int, np.ndarray | slice, int]] | None = None,
    ) -> np.ndarray:
        """One uniform in [0, 1) per row (``segments``: :meth:`segments` of ``customer``, if at hand)."""
        return self._per_row("random", customer, kind, dtype, segments)

    def standard_normal(
        self,
        customer: np.ndarray,
        kind: Draw,
        dtype: type = np.float64,
        segments: list[tuple[int, np.ndarray | slice, int]] | None = None,
    ) -> np.ndarray:
        """One standard normal per row."""
        return self._per_row("standard_normal", customer, kind, dtype, segments)

    def _per_row(
        self,
        method: str,
        customer: np.ndarray,
        kind: Draw,
        dtype: type,
        segments: list[tuple[int, np.ndarray | slice, int]] | None,
    ) -> np.ndarray:
        """One draw of the generator's ``method`` per row, each from its chunk's stream in row order."""
        if kind in BUFFERED_KINDS:
            if method != "random" or dtype is not np.float64:
                raise ValueError(f"{kind.name} is drawn as float64 uniforms only (its chunks' buffers hold those)")
            buffers = self._buffers.get(int(kind))
            if buffers is None:
                buffers = self._buffers[int(kind)] = _ChunkBuffers(self, kind)
            return buffers.take(self.layout.of(customer))
        out: np.ndarray = np.empty(customer.shape[0], dtype)
        for chunk, rows, count in segments if segments is not None else _segments(self.layout, customer):
            draw = getattr(self.generator(chunk, kind), method)
            if isinstance(rows, slice):  # drawn in place: no temporary
                draw(dtype=dtype, out=out[rows])
            else:
                out[rows] = draw(count, dtype=dtype)
        return out


class _ChunkBuffers:
    """The next float64 uniforms of each chunk's stream of one kind: chunk k's are ``values[k, cursor[k]:]``.
    Values leave in stream order and a refill appends the stream's next ones, so every row gets the value
    a direct draw would give it (``random(a)`` then ``random(b)`` gives ``random(a + b)``)."""

    def __init__(self, draws: ChunkDraws, kind: Draw) -> None:
        self.draws = draws
        self.kind = kind
        count = draws.layout.count
        self.values = np.empty((count, BUFFER_ROWS))
        self.cursor = np.full(count, BUFFER_ROWS, np.int64)  # every buffer empty until its chunk is drawn

    def take(self, chunk: np.ndarray) -> np.ndarray:
        """One value per row of ``chunk`` (each row's chunk), from its chunk's buffer in row order."""
        if chunk.shape[0] == 0:
            return np.empty(0)
        counts = kernels.counts(chunk, self.cursor.shape[0])  # compiled: numpy's bincount holds the lock
        width = self.values.shape[1]
        if int(counts.max()) > width:  # a call larger than the buffers: widen them, keeping what they hold
            wider = max(int(counts.max()), 2 * width)
            values = np.empty((self.values.shape[0], wider))
            values[:, wider - width :] = self.values
            self.values, self.cursor, width = values, self.cursor + (wider - width), wider
        for k in np.flatnonzero(self.cursor + counts > width).tolist():
            held = width - int(self.cursor[k])
            row = self.values[k]
            row[:held] = row[width - held :].copy()
            self.draws.generator(k, self.kind).random(out=row[held:])
            self.cursor[k] = 0
        return kernels.hand_out(chunk, self.values, self.cursor)  # type: ignore[no-any-return]


def chunk_generators(
    sequence: np.random.SeedSequence, layout: ChunkLayout, chunks: range | None = None
) -> Iterator[tuple[int, int, np.random.Generator]]:
    """(lo, hi, generator) for each chunk of ``chunks`` (default: all): a whole-chunk stream for draws made
    once per customer (holdout, declared taste, a week's occasions)."""
    for chunk in range(layout.count) if chunks is None else chunks:
        lo, hi = layout.bounds(chunk)
        yield lo, hi, generator(chunk_sequence(sequence, chunk))
