"""The grouped argmax of Beta posterior draws (policies.beta_argmax) against full draws of every value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masssim.policies import beta_argmax
from masssim.policies import compiled as compiled_switch
from masssim.policies.beta_argmax import (
    cells_by_posterior,
    fold_row_maxima,
    grouped_posterior_argmax,
    posterior_groups,
    posterior_runs,
    successes_on_lines,
    thompson_argmax,
    unsent_creative,
)


def catalogue(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A third of the creatives never sent (Beta(1, 1)), many sharing a few small states, a few well measured."""
    delivered = np.zeros(k)
    clicked = np.zeros(k)
    sent = np.sort(rng.choice(k, 2 * k // 3, replace=False))
    delivered[sent] = rng.integers(1, 4, sent.shape[0])
    clicked[sent] = rng.binomial(1, 0.2, sent.shape[0]) * (delivered[sent] > 1)
    strong = sent[:12]
    delivered[strong] = rng.integers(100, 300, strong.shape[0])
    clicked[strong] = rng.binomial(delivered[strong].astype(int), 0.993)
    return sent, 1.0 + clicked[sent], 1.0 + delivered[sent] - clicked[sent]


def test_successes_on_lines_are_independent_trials() -> None:
    rng = np.random.default_rng(5)
    p = np.array([0.0, 1e-4, 0.01, 0.2, 0.5, 0.97, 1.0, 0.3])
    length = np.array([20_000, 20_000, 50_000, 20_000, 30_000, 20_000, 20_000, 0])
    line, position = successes_on_lines(rng, p, length)
    assert np.unique(line * length.max() + position).shape[0] == line.shape[0]  # each trial at most once
    assert position.min() >= 0 and np.all(position < length[line])
    count = np.bincount(line, minlength=p.shape[0])
    # a line's count is Binomial(length, p): within 5 standard deviations (fixed seed)
    sd = np.sqrt(length * p * (1 - p))
    assert np.all(np.abs(count - length * p) <= 5 * sd + 1e-9)
    # positions are exchangeable: a line's successes spread evenly over its first and second half
    for j in (3, 4):
        n = count[j]
        first_half = position[line == j] < length[j] // 2
        assert abs(int(first_half.sum()) - n / 2) <= 5 * np.sqrt(n / 4)


def test_groups_hold_every_creative_once_with_its_posterior() -> None:
    rng = np.random.default_rng(2)
    k = 300
    sent, alpha_sent, beta_sent = catalogue(rng, k)
    alpha, beta, size, _start, members = posterior_groups(k, sent, alpha_sent, beta_sent)
    np.testing.assert_array_equal(np.sort(members), np.arange(k))
    full_alpha, full_beta = np.ones(k), np.ones(k)
    full_alpha[sent], full_beta[sent] = alpha_sent, beta_sent
    group = np.repeat(np.arange(size.shape[0]), size)
    np.testing.assert_array_equal(full_alpha[members], alpha[group])
    np.testing.assert_array_equal(full_beta[members], beta[group])
    assert np.unique(np.stack([alpha, beta]), axis=1).shape[1] == alpha.shape[0]  # groups are distinct
    assert size.shape[0] < k // 8  # and few: the point of grouping


# target 0.01: almost every row has nothing above the threshold, which tests the grouped fallback
@pytest.mark.parametrize("target", [beta_argmax.EXCEEDANCE_TARGET, 0.01])
def test_grouped_argmax_has_the_distribution_of_the_argmax_of_full_draws(
    monkeypatch: pytest.MonkeyPatch, target: float
) -> None:
    monkeypatch.setattr(beta_argmax, "EXCEEDANCE_TARGET", target)
    rng = np.random.default_rng(17)
    k = 400
    sent, alpha_sent, beta_sent = catalogue(rng, k)
    alpha, beta = np.ones(k), np.ones(k)
    alpha[sent], beta[sent] = alpha_sent, beta_sent
    rows = 40_000
    grouped = grouped_posterior_argmax(rng, k, sent, alpha_sent, beta_sent, rows)
    grouped_wins = np.bincount(grouped, minlength=k)
    dense = np.concatenate([np.argmax(rng.beta(alpha, beta, size=(4000, k)), axis=1) for _ in range(rows // 4000)])
    dense_wins = np.bincount(dense, minlength=k)
    # Per creative, two binomial proportions from `rows` trials each: their difference has standard error
    # sqrt(2 p (1 - p) / rows) under the same distribution; allow 5 of them (fixed seed; a false alarm in any
    # of the 400 creatives has probability below 400 * 6e-7).
    pooled = (grouped_wins + dense_wins) / (2 * rows)
    se = np.sqrt(2 * pooled * (1 - pooled) / rows)
    assert np.all(np.abs(grouped_wins - dense_wins) / rows <= 5 * se + 1.0 / rows)
    # The never-sent creatives as a whole (their share is what grouping them could get wrong): same rule.
    unsent = np.ones(k, bool)
    unsent[sent] = False
    g, d = grouped_wins[unsent].sum(), dense_wins[unsent].sum()
    p = (g + d) / (2 * rows)
    assert abs(g - d) / rows <= 5 * np.sqrt(2 * p * (1 - p) / rows)
    assert 0.05 < d / rows < 0.95  # the test is informative: both kinds of creative win often
    assert (dense_wins > 0).sum() > 100  # and many creatives win


def test_unsent_creative_is_the_nth_creative_without_a_cell() -> None:
    rng = np.random.default_rng(3)
    k = 50
    present = rng.random((4, k)) < 0.4
    cell_segment, cell_creative = np.nonzero(present)
    segment = np.repeat(np.arange(4), k - present.sum(axis=1))
    nth = np.concatenate([np.arange(m) for m in k - present.sum(axis=1)])
    expected = np.concatenate([np.flatnonzero(~row) for row in present])
    np.testing.assert_array_equal(unsent_creative(k, cell_segment, cell_creative, segment, nth), expected)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 120), st.floats(0.0, 1.0), st.booleans())
def test_unsent_creative_compiled_and_numpy_agree_with_a_dense_search(
    monkeypatch: pytest.MonkeyPatch, seed: int, segments: int, k: int, share: float, shuffled: bool
) -> None:
    """Rows grouped by segment (the table of each segment's never-sent creatives) or in any order (the sorted
    search), segments with no cells or every creative but one sent: the same creatives as a dense scan, with
    and without the compiled code."""
    rng = np.random.default_rng(seed)
    present = rng.random((segments, k)) < share
    present[:, -1] &= rng.random(segments) < 0.5
    present[present.all(axis=1), 0] = False  # every segment keeps a never-sent creative
    cell_segment, cell_creative = np.nonzero(present)
    missing = k - present.sum(axis=1)
    segment = np.repeat(np.arange(segments), missing)
    nth = np.concatenate([np.arange(m) for m in missing])
    shuffle = rng.permutation(segment.shape[0]) if shuffled else np.arange(segment.shape[0])
    segment, nth = segment[shuffle], nth[shuffle]
    expected = np.concatenate([np.flatnonzero(~row) for row in present])[shuffle]
    compiled_result = unsent_creative(k, cell_segment, cell_creative, segment, nth)
    monkeypatch.setattr(compiled_switch, "NUMBA", None)
    numpy_result = unsent_creative(k, cell_segment, cell_creative, segment, nth)
    np.testing.assert_array_equal(compiled_result, expected)
    np.testing.assert_array_equal(numpy_result, expected)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(0, 300), st.integers(1, 3))
def test_fold_row_maxima_in_batches_equals_one_max_then_min(
    monkeypatch: pytest.MonkeyPatch, seed: int, rows: int, n: int, batches: int
) -> None:
    """Folding values batch by batch (compiled, and numpy) gives each row's largest value and the lowest
    creative among the values equal to it, as a maximum then a minimum over all values at once did; values
    drawn from a few levels so that ties are common, -inf included."""
    rng = np.random.default_rng(seed)
    row = rng.integers(0, rows, n)
    value = np.array([-np.inf, 0.25, 0.5, 0.75])[rng.integers(0, 4, n)]
    creative = rng.integers(0, 50, n)
    want_largest = np.full(rows, -np.inf)
    np.maximum.at(want_largest, row, value)
    best = value == want_largest[row]
    want_winner = np.full(rows, np.iinfo(np.int32).max, np.int64)
    np.minimum.at(want_winner, row[best], creative[best])
    cuts = np.sort(rng.integers(0, n + 1, batches - 1))
    for numba_off in (False, True):
        if numba_off:
            monkeypatch.setattr(compiled_switch, "NUMBA", None)
        largest = np.full(rows, -np.inf)
        winner = np.full(rows, np.iinfo(np.int32).max, np.int64)
        for part in np.split(np.arange(n), cuts):
            fold_row_maxima(row[part], value[part], creative[part], largest, winner)
        np.testing.assert_array_equal(largest, want_largest)
        np.testing.assert_array_equal(winner, want_winner)


# margin 0.5: the never-sent maximum falls below the threshold in about e^-0.5 of the draws, which tests the
# draws where every value is below it
@pytest.mark.parametrize("margin", [beta_argmax.UNSENT_MARGIN, 0.5])
def test_thompson_argmax_per_segment_has_the_distribution_of_the_argmax_of_full_draws(
    monkeypatch: pytest.MonkeyPatch, margin: float
) -> None:
    monkeypatch.setattr(beta_argmax, "UNSENT_MARGIN", margin)
    rng = np.random.default_rng(23)
    k = 400
    # segment 0: a third never sent; 1: no cell at all; 2: only 10 never sent (drawn by the slow path); 3: no draw
    sent_0, alpha_0, beta_0 = catalogue(rng, k)
    sent_2 = np.sort(rng.choice(k, k - 10, replace=False))
    alpha_2 = 1.0 + rng.binomial(1, 0.3, sent_2.shape[0])
    beta_2 = 1.0 + rng.integers(1, 4, sent_2.shape[0])
    sent_3, alpha_3, beta_3 = catalogue(rng, k)
    cell_segment = np.repeat([0, 2, 3], [sent_0.shape[0], sent_2.shape[0], sent_3.shape[0]])
    cell_creative = np.concatenate((sent_0, sent_2, sent_3))
    cell_alpha = np.concatenate((alpha_0, alpha_2, alpha_3))
    cell_beta = np.concatenate((beta_0, beta_2, beta_3))
    rows = 20_000
    draws = np.array([rows, rows, rows, 0])
    winner = thompson_argmax(rng, k, cell_segment, cell_creative, cell_alpha, cell_beta, draws)
    assert winner.shape[0] == 3 * rows
    for s, (sent, alpha_sent, beta_sent) in enumerate(
        [(sent_0, alpha_0, beta_0), (np.empty(0, np.int64), np.empty(0), np.empty(0)), (sent_2, alpha_2, beta_2)]
    ):
        alpha, beta = np.ones(k), np.ones(k)
        alpha[sent], beta[sent] = alpha_sent, beta_sent
        wins = np.bincount(winner[s * rows : (s + 1) * rows], minlength=k)
        dense = np.concatenate([np.argmax(rng.beta(alpha, beta, size=(4000, k)), axis=1) for _ in range(rows // 4000)])
        dense_wins = np.bincount(dense, minlength=k)
        # per creative, two binomial proportions from `rows` trials each: within 5 standard errors of their
        # difference, sqrt(2 p (1 - p) / rows) (fixed seed; a false alarm among the 1,200 has probability < 1e-3)
        pooled = (wins + dense_wins) / (2 * rows)
        se = np.sqrt(2 * pooled * (1 - pooled) / rows)
        assert np.all(np.abs(wins - dense_wins) / rows <= 5 * se + 1.0 / rows), s
        assert (dense_wins > 0).sum() > 50


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.integers(1, 20), st.integers(0, 400))
def test_cells_by_posterior_compiled_equals_the_two_radix_sorts(
    monkeypatch: pytest.MonkeyPatch, seed: int, segments: int, n: int
) -> None:
    """The segment-by-segment counting sort gives the order of the two stable sorts (numpy), with shared
    states, fractional counts (``micro`` carries shares of evidence) and states beyond SMALL_STATE."""
    rng = np.random.default_rng(seed)
    segment = np.sort(rng.integers(0, segments, n))
    alpha = 1.0 + rng.choice([0.0, 1.0, 2.0, 0.5, 300.0], n)
    beta = 1.0 + rng.choice([0.0, 3.0, 7.25, 254.0, 255.0, 1000.0], n)
    got = cells_by_posterior(segment, alpha, beta)
    monkeypatch.setattr(compiled_switch, "NUMBA", None)
    np.testing.assert_array_equal(got, cells_by_posterior(segment, alpha, beta))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.integers(1, 20), st.integers(0, 400), st.floats(0.0, 1.0))
def test_posterior_runs_compiled_equals_the_numpy_grouping(
    monkeypatch: pytest.MonkeyPatch, seed: int, segments: int, n: int, kept: float
) -> None:
    """The groups found in one pass along the order equal those of the gathers and comparisons (numpy), with
    some segments left out, shared and fractional states, and states beyond SMALL_STATE (groups of one)."""
    rng = np.random.default_rng(seed)
    present = np.zeros((segments, 60), bool)
    present.flat[rng.choice(present.size, min(n, present.size), replace=False)] = True
    segment, creative = np.nonzero(present)
    alpha = 1.0 + rng.choice([0.0, 1.0, 2.0, 0.5, 300.0], segment.shape[0])
    beta = 1.0 + rng.choice([0.0, 3.0, 7.25, 255.0, 1000.0], segment.shape[0])
    keep = rng.random(segments) < kept
    got = posterior_runs(segment, creative, alpha, beta, keep)
    monkeypatch.setattr(compiled_switch, "NUMBA", None)
    want = posterior_runs(segment, creative, alpha, beta, keep)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_cells_by_posterior_groups_identical_posteriors_with_creatives_in_order() -> None:
    rng = np.random.default_rng(4)
    n = 5_000
    segment = np.sort(rng.integers(0, 30, n))
    alpha = 1.0 + rng.integers(0, 3, n)
    beta = 1.0 + rng.integers(0, 4, n)
    beta[rng.random(n) < 0.01] = 300.0  # beyond the 16-bit code: kept apart
    order = cells_by_posterior(segment, alpha, beta)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    seg, a, b = segment[order], alpha[order], beta[order]
    assert np.all(np.diff(seg) >= 0)
    small = b < 256
    key = ((seg * 1000 + a) * 1000 + b)[small]
    changes = np.count_nonzero(np.diff(key))
    assert changes + 1 == np.unique(key).shape[0]  # each (segment, posterior) in one run
    same = np.diff(key) == 0
    assert np.all(np.diff(order[small])[same] > 0)  # creatives (the given order) increasing within a run
    # the cells kept apart come after their segment's others
    assert np.all(~small[1:] | small[:-1] | (seg[1:] != seg[:-1]))
