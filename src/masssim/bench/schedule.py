"""What the load generator will send, and when, decided before the first query leaves.

A :class:`Schedule` is built up front from the run's seed (one :class:`numpy.random.SeedSequence`, no
global RNG): for the ``server`` scenario, Poisson arrival times at the target rate (exponential gaps); for
every scenario, which corpus samples each query carries. Building it in advance keeps the generator's hot
loop free of random draws and makes a run replayable: the same seed gives the same arrivals and samples.

Streams (fixed keys under the root, never renumbered): 0 = arrival times, 1 = sample choice,
2 = the synthetic corpus, 3 = the classifier's training corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STREAM_ARRIVALS = 0
STREAM_SAMPLES = 1
STREAM_CORPUS = 2
STREAM_TRAINING = 3


def child_sequence(root: np.random.SeedSequence, key: int, *extra: int) -> np.random.SeedSequence:
    """The stream at ``key`` (and ``extra`` sub-keys) under ``root``, addressed directly."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, key, *extra))


def child_generator(root: np.random.SeedSequence, key: int, *extra: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(child_sequence(root, key, *extra)))


@dataclass(frozen=True)
class Schedule:
    """Arrival times (seconds from the run's start; warm-up first) and the queries' sample indices.

    ``samples[i]`` holds the corpus indices of query i (``batch_size`` of them). Queries ``< warmup_count``
    belong to the warm-up and are not measured.
    """

    times_s: np.ndarray  # float64 [n], non-decreasing
    samples: np.ndarray  # int64 [n, batch_size]
    warmup_count: int
    rate: float  # the target rate (queries per second)

    def __len__(self) -> int:
        return int(self.times_s.shape[0])

    @property
    def measured_count(self) -> int:
        return len(self) - self.warmup_count

    @property
    def realised_rate(self) -> float:
        """Queries per second actually drawn for the measured part (a Poisson count differs from the rate)."""
        if self.measured_count < 2:
            return 0.0
        span = float(self.times_s[-1] - self.times_s[self.warmup_count])
        return (self.measured_count - 1) / span if span > 0 else 0.0


def poisson_times(
    rate: float, warmup_s: float, duration_s: float, min_queries: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Poisson arrivals on [0, warmup_s + duration_s], extended until the measured part has ``min_queries``.

    The first arrival at or after ``warmup_s + duration_s`` is kept, so the measured part always reaches
    the minimum duration. Returns (times, number of warm-up arrivals).
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    end = warmup_s + duration_s
    expected = rate * end + 10.0 * np.sqrt(rate * end + 1.0) + 16.0
    gaps = rng.exponential(1.0 / rate, size=int(expected))
    times = np.cumsum(gaps)
    while times[-1] < end:  # pragma: no cover - the margin above makes this vanishingly rare
        more = np.cumsum(rng.exponential(1.0 / rate, size=int(expected))) + times[-1]
        times = np.concatenate([times, more])
    last = int(np.searchsorted(times, end, side="left"))  # index of the first arrival >= end
    warmup_count = int(np.searchsorted(times, warmup_s, side="left"))
    needed = max(last + 1, warmup_count + min_queries)
    while times.shape[0] < needed:
        more = np.cumsum(rng.exponential(1.0 / rate, size=needed - times.shape[0] + 16)) + times[-1]
        times = np.concatenate([times, more])
    return times[:needed], warmup_count


def sample_indices(n_queries: int, batch_size: int, pool: int, rng: np.random.Generator, *, unique: bool) -> np.ndarray:
    """Corpus indices for each query: uniform with replacement, or each sample once (anti-caching)."""
    total = n_queries * batch_size
    if unique:
        if total > pool:
            raise ValueError(f"{total} samples are needed but the pool holds {pool}")
        flat = rng.permutation(pool)[:total]
    else:
        flat = rng.integers(0, pool, size=total)
    return flat.astype(np.int64).reshape(n_queries, batch_size)


def server_schedule(
    root: np.random.SeedSequence,
    *,
    rate: float,
    warmup_s: float,
    duration_s: float,
    min_queries: int,
    batch_size: int,
    pool: int,
    unique: bool,
) -> Schedule:
    times, warmup_count = poisson_times(rate, warmup_s, duration_s, min_queries, child_generator(root, STREAM_ARRIVALS))
    samples = sample_indices(len(times), batch_size, pool, child_generator(root, STREAM_SAMPLES), unique=unique)
    return Schedule(times, samples, warmup_count, rate)


class SampleStream:
    """Sample indices handed out in order, for the closed-loop and offline scenarios whose query count is
    only known at the end. With ``unique``, each sample of the pool is handed out once, then none."""

    def __init__(self, pool: int, rng: np.random.Generator, *, unique: bool) -> None:
        self.pool = pool
        self.unique = unique
        self._rng = rng
        self._order = rng.permutation(pool).astype(np.int64) if unique else np.empty(0, np.int64)
        self._next = 0

    def take(self, k: int) -> np.ndarray | None:
        """``k`` indices, or None when the pool is used up (only with ``unique``)."""
        if self.unique:
            if self._next + k > self.pool:
                return None
            out = self._order[self._next : self._next + k]
            self._next += k
            return out
        return self._rng.integers(0, self.pool, size=k).astype(np.int64)

    @property
    def exhausted(self) -> bool:
        return self.unique and self._next >= self.pool
