"""Organic purchase occasions: the category buying that happens whether or not anyone markets to you.

Occasions are a Poisson process per customer at the category rate lambda_i (NBD across customers). They
are drawn a block of days at a time from the replication's shared OCCASIONS stream, so every arm of a
replication faces exactly the same occasions and the same brand-choice uniforms: the difference between
arms is then caused by marketing alone (common random numbers), and for each occasion the simulator knows
what would have been bought without marketing (the counterfactual behind ``incremental_purchases_true``).

Each (week, customer chunk) has a stream of its own (docs/model.md §16.4), so a stream restricted to some
chunks (a shard) yields exactly the occasions of those chunks that the whole stream yields, in the same order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from masssim.engine import kernels
from masssim.engine.chunks import ChunkLayout, chunk_generators
from masssim.model.population import Population
from masssim.model.streams import chunk_sequence

YEAR_S = 365.25 * 86_400.0
BLOCK_S = 7 * 86_400.0


@dataclass
class Occasions:
    customer: np.ndarray  # int32 (int64 above 2^31 customers)
    time_s: np.ndarray  # float64, ascending
    choice_uniform: np.ndarray  # float64 in [0, 1): our brand is chosen iff below the choice probability

    def __len__(self) -> int:
        return int(self.customer.shape[0])


# A sort of this many rows or fewer is done whole; larger ones are split into slots of about this many rows.
SLOT_ROWS = 1 << 16


def stable_time_order(time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The permutation of ``np.argsort(time_s, kind="stable")`` and the times in that order.

    A stable sort of float64 is a merge sort, several times slower than numpy's default sort, and exact ties
    between drawn times are all but absent; so the default sort orders the times and the positions within
    each run of equal times are then put back in ascending order, which is what stability means.

    A week's occasions at 95 million customers are tens of millions of times, and one sort of them all waits
    on memory: they are first grouped into slots of equal width (a stable counting sort,
    ``kernels.slot_order``; a slot never decreases as the time grows, so equal times share a slot), and each
    slot, small enough for the caches, is sorted on its own. 11 million uniform times: 0.9–1.3 s as one
    sort, 0.5–0.7 s so (docs/model.md §15.10)."""
    n = time_s.shape[0]
    if n <= SLOT_ROWS:
        order = np.argsort(time_s)
        sorted_time = time_s[order]
    else:
        low, high = float(time_s.min()), float(time_s.max())
        slots = n // SLOT_ROWS
        scale = slots / (high - low) if high > low else 0.0
        order, starts = kernels.slot_order(time_s, low, scale, slots)
        sorted_time = time_s[order]
        bounds = starts.tolist()
        for a, b in itertools.pairwise(bounds):
            if b - a > 1:
                within = np.argsort(sorted_time[a:b])
                order[a:b] = order[a:b][within]
                sorted_time[a:b] = sorted_time[a:b][within]
    tied = np.flatnonzero(sorted_time[1:] == sorted_time[:-1])
    if tied.shape[0]:
        # Runs of ties: [start, end) spans of the sorted positions; each run's positions sorted ascending.
        run_start = tied[np.concatenate(([True], tied[1:] != tied[:-1] + 1))]
        run_end = tied[np.concatenate((tied[1:] != tied[:-1] + 1, [True]))] + 2
        for a, b in zip(run_start.tolist(), run_end.tolist(), strict=True):
            order[a:b].sort()
    return order, sorted_time


class OccasionStream:
    """Occasions in time order, generated lazily one block (a week) at a time, for the customers of
    ``chunks`` (default: everyone). Occasions at the same time are ordered by chunk."""

    def __init__(
        self,
        population: Population,
        horizon_s: float,
        seq: np.random.SeedSequence,
        layout: ChunkLayout,
        chunks: range | None = None,
    ) -> None:
        self.population = population
        self.horizon_s = horizon_s
        self.seq = seq
        self.layout = layout
        self.chunks = range(layout.count) if chunks is None else chunks
        self._block_index = -1
        self._block: Occasions | None = None
        self._index_dtype = np.int32 if population.n < 2**31 else np.int64

    def _make_block(self, b: int) -> Occasions:
        # One stream per (block, chunk) keeps the draws independent of how far other blocks were consumed
        # and of which other chunks are drawn.
        start = b * BLOCK_S
        length = min(BLOCK_S, self.horizon_s - start)
        years = length / YEAR_S
        customers: list[np.ndarray] = []
        times: list[np.ndarray] = []
        uniforms: list[np.ndarray] = []
        offset = self.layout.offset  # the population's row 0 is this customer (a shard's own population)
        for lo, hi, rng in chunk_generators(chunk_sequence(self.seq, b), self.layout, self.chunks):
            # The chunk's occasions as one Poisson process of rate sum(lambda_i), each occasion given to
            # customer i with probability lambda_i / sum: that makes each customer's count an independent
            # Poisson(lambda_i * years), as drawing one count per customer would, with draws for the
            # occasions only, not one per customer-week (at six purchases a year, nine weeks in ten have none).
            rate = self.population.category_rate[lo - offset : hi - offset]
            total = kernels.rate_total(rate)
            drawn = int(rng.poisson(total * years))
            points = np.sort(rng.random(drawn)) * total  # ascending: scaling keeps the order
            np.minimum(points, np.nextafter(total, 0.0), out=points)  # a uniform near 1 can round up to the total
            who = kernels.occasion_rows(rate, points, lo - offset, self._index_dtype)
            customers.append(who)
            times.append(start + rng.random(drawn) * length)
            uniforms.append(rng.random(drawn))
        if not customers:
            return Occasions(np.empty(0, self._index_dtype), np.empty(0), np.empty(0))
        time_s = np.concatenate(times)
        order, sorted_time = stable_time_order(time_s)  # ties keep chunk order
        return Occasions(np.concatenate(customers)[order], sorted_time, np.concatenate(uniforms)[order])

    def take(self, t0_s: float, t1_s: float) -> Occasions:
        """Occasions with t0 < time <= t1. Successive calls must move forward in time."""
        t1_s = min(t1_s, self.horizon_s)
        pieces: list[Occasions] = []
        if self._block is None:
            self._block_index, self._block = 0, self._make_block(0)
        while True:
            block = self._block
            lo = int(np.searchsorted(block.time_s, t0_s, side="right"))
            hi = int(np.searchsorted(block.time_s, t1_s, side="right"))
            if hi > lo:
                pieces.append(Occasions(block.customer[lo:hi], block.time_s[lo:hi], block.choice_uniform[lo:hi]))
            block_end = (self._block_index + 1) * BLOCK_S
            if t1_s <= block_end or block_end >= self.horizon_s:
                break
            self._block_index += 1
            self._block = self._make_block(self._block_index)
        if not pieces:
            return Occasions(np.empty(0, self._index_dtype), np.empty(0), np.empty(0))
        if len(pieces) == 1:
            return pieces[0]
        return Occasions(
            np.concatenate([p.customer for p in pieces]),
            np.concatenate([p.time_s for p in pieces]),
            np.concatenate([p.choice_uniform for p in pieces]),
        )
