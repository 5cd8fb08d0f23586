"""policies/bounded_integers.py: the random policy's creatives drawn in one compiled pass are numpy's own
``integers`` to the value, and leave the generator in numpy's state to the bit, whatever came before (a half-used
output, other draws) and whether or not numpy would reject a value in the run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masssim.policies import bounded_integers
from masssim.policies.bounded_integers import draw_int32

# Bounds whose rejections are rare (a few creatives, 20,000), never (powers of two) or frequent (about 0.75% of
# values for 852,516,352: a run of a thousand values almost surely has one).
HIGHS = [2, 3, 6, 20_000, 1 << 20, 852_516_352, 1 << 31]


@settings(max_examples=120, deadline=None, derandomize=True)
@given(
    high=st.sampled_from(HIGHS),
    counts=st.lists(st.integers(0, 3_000), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    between=st.sampled_from(["none", "uniform", "one integer"]),
)
def test_draws_are_numpys_integers_and_leave_its_state(high: int, counts: list[int], seed: int, between: str) -> None:
    numpy_rng, ours = np.random.default_rng(seed), np.random.default_rng(seed)
    for count in counts:
        want = numpy_rng.integers(0, high, size=count, dtype=np.int32)
        got = draw_int32(ours, high, count)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.int32
        assert ours.bit_generator.state == numpy_rng.bit_generator.state
        if between == "uniform":  # the policy's keep uniforms between waves
            numpy_rng.random(3)
            ours.random(3)
        elif between == "one integer":  # leaves half an output in the state
            numpy_rng.integers(0, 5, size=1, dtype=np.int32)
            ours.integers(0, 5, size=1, dtype=np.int32)


def test_a_run_with_a_rejection_is_still_numpys() -> None:
    """With about one value in 133 rejected, every run of a few thousand has some: the draws stay numpy's."""
    numpy_rng, ours = np.random.default_rng(7), np.random.default_rng(7)
    threshold = (1 << 32) % 852_516_352
    raw = np.random.default_rng(7).bit_generator.random_raw(2_000).view(np.uint32).astype(np.uint64)
    assert ((raw * 852_516_352) % (1 << 32) < threshold).any()  # the run does contain a rejection
    np.testing.assert_array_equal(
        draw_int32(ours, 852_516_352, 4_000), numpy_rng.integers(0, 852_516_352, size=4_000, dtype=np.int32)
    )
    assert ours.bit_generator.state == numpy_rng.bit_generator.state


@pytest.mark.parametrize("high", [6, 852_516_352])
def test_outputs_read_a_piece_at_a_time_give_the_same_draws(monkeypatch: pytest.MonkeyPatch, high: int) -> None:
    """With pieces of 16 outputs, a call crosses many pieces (and, for the second bound, meets a rejection in
    one of the later ones): still numpy's values and state."""
    monkeypatch.setattr(bounded_integers, "PIECE_PAIRS", 16)
    for count in (64, 65, 1_001, 5_000):
        numpy_rng, ours = np.random.default_rng(count), np.random.default_rng(count)
        np.testing.assert_array_equal(
            draw_int32(ours, high, count), numpy_rng.integers(0, high, size=count, dtype=np.int32)
        )
        assert ours.bit_generator.state == numpy_rng.bit_generator.state
