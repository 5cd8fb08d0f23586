"""Organic occasions (engine/organic.py, docs/model.md §5.1): each customer's count is Poisson at their rate,
independently of every other customer's, and a stream restricted to some chunks (a shard) gives those
chunks' occasions exactly as the whole stream does."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from scipy import stats

from masssim.engine.chunks import CUSTOMER_CHUNK, ChunkLayout
from masssim.engine.organic import BLOCK_S, YEAR_S, OccasionStream

LEVELS = np.array([0.0, 0.5, 3.0, 20.0], np.float32)  # purchases a year
WEEKS = 26
Z = 4.5  # two-sided tail of about 7e-6 per check, with a fixed seed


def _stream(n: int, seed: int, chunks: range | None = None) -> tuple[OccasionStream, np.ndarray]:
    rate = LEVELS[np.arange(n) % LEVELS.shape[0]]
    population = SimpleNamespace(n=n, category_rate=rate)
    layout = ChunkLayout(n)
    stream = OccasionStream(population, WEEKS * BLOCK_S, np.random.SeedSequence(seed), layout, chunks)  # type: ignore[arg-type]
    return stream, rate


def _counts(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each customer's count over the horizon, rates, each customer's count in the first week)."""
    stream, rate = _stream(n, seed)
    occasions = stream.take(0.0, WEEKS * BLOCK_S)
    first_week = occasions.customer[occasions.time_s <= BLOCK_S]
    return np.bincount(occasions.customer, minlength=n), rate, np.bincount(first_week, minlength=n)


def test_each_customers_count_is_poisson_at_their_rate() -> None:
    """Mean and share of zeros per rate level within Z standard errors of Poisson(rate * horizon); customers
    with no rate never buy; the counts are as dispersed as Poisson's (variance / mean within its error)."""
    n = 2 * CUSTOMER_CHUNK + 10_000  # three chunks, the last one short
    counts, rate, _ = _counts(n, seed=3)
    years = WEEKS * BLOCK_S / YEAR_S
    assert counts[rate == 0].sum() == 0
    for level in LEVELS[1:]:
        got = counts[rate == level]
        mean = float(level) * years
        m = got.shape[0]
        assert abs(got.mean() - mean) <= Z * np.sqrt(mean / m), (level, got.mean(), mean)
        p0 = np.exp(-mean)
        assert abs((got == 0).mean() - p0) <= Z * np.sqrt(p0 * (1 - p0) / m) + 1 / m, (level, (got == 0).mean(), p0)
        # Poisson's variance equals its mean; the sample variance's standard error is about
        # sqrt((mu + 2 mu^2) / m) for Poisson(mu).
        assert abs(got.var(ddof=1) - mean) <= Z * np.sqrt((mean + 2 * mean**2) / m), (level, got.var(), mean)


def test_customers_counts_are_independent_of_each_other() -> None:
    """Neighbouring customers of one rate level (who share a chunk's one Poisson total each week) have
    uncorrelated weekly counts, and the counts of a whole level pass a chi-squared test against Poisson."""
    n = 2 * CUSTOMER_CHUNK
    _, rate, week = _counts(n, seed=11)
    years = BLOCK_S / YEAR_S
    level = LEVELS[3]
    got = week[rate == level]
    m = got.shape[0] // 2
    r = np.corrcoef(got[0 : 2 * m : 2], got[1 : 2 * m : 2])[0, 1]
    assert abs(r) <= Z / np.sqrt(m), r
    mean = float(level) * years
    k = np.arange(4)
    expected = np.append(stats.poisson.pmf(k, mean), stats.poisson.sf(k[-1], mean)) * got.shape[0]
    observed = np.append(np.bincount(np.minimum(got, 4), minlength=5)[:4], (got >= 4).sum())
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_a_stream_of_some_chunks_gives_exactly_their_occasions() -> None:
    """A shard's stream (some chunks) yields the whole stream's occasions of those chunks, in the same order."""
    n = 3 * CUSTOMER_CHUNK
    whole, _ = _stream(n, seed=5)
    part, _ = _stream(n, seed=5, chunks=range(1, 2))
    a = whole.take(0.0, 3 * BLOCK_S)
    b = part.take(0.0, 3 * BLOCK_S)
    mine = (a.customer >= CUSTOMER_CHUNK) & (a.customer < 2 * CUSTOMER_CHUNK)
    assert b.customer.shape[0] > 0
    np.testing.assert_array_equal(a.customer[mine], b.customer)
    np.testing.assert_array_equal(a.time_s[mine], b.time_s)
    np.testing.assert_array_equal(a.choice_uniform[mine], b.choice_uniform)
