"""linucb with continuous CRM scores (``policies/linucb_scores.py``): customers are scored by unit (profile,
history), the score columns' terms apart, after pruning creatives that cannot win. The choice must be the
argmax of the scores ``LinUCBPolicy.scores`` computes for every (customer, creative) pair.

The two computations group the same float64 sums differently, so they agree to rounding, not to the bit: a
score computed either way differs by about 1e-15 relative (a few dozen operations on values of order 1-100).
The tolerance ``TOLERANCE * (1 + |best|)`` with TOLERANCE = 1e-9 is far above that and far below the gaps
between creatives' scores in a run (the smallest seen at 1M customers, 1e-4). Where the best two reference
scores are further apart than it, the choice must be the reference argmax; where they are closer, the chosen
creative's reference score must be within it of the best.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masssim.policies import linucb_scores
from masssim.policies.bandits import LinUCBPolicy
from masssim.policies.base import WaveContext
from masssim.policies.learning_features import HISTORY_BITS, history_keys
from test_linucb_pruning import learned_policy

pytestmark = pytest.mark.skipif(not linucb_scores.available(), reason="the compiled scorer needs numba")

TOLERANCE = 1e-9


def assert_argmax(chosen: np.ndarray, reference: np.ndarray, eligible: np.ndarray) -> None:
    """``chosen`` [n] against the reference scores [n, K] over the ``eligible`` creatives."""
    reference = np.where(eligible, reference, -np.inf)
    best = reference.max(axis=1)
    tolerance = TOLERANCE * (1.0 + np.abs(best))
    top_two = np.sort(reference, axis=1)[:, -2:] if reference.shape[1] > 1 else np.c_[best - 1.0, best]
    clear = top_two[:, 1] - top_two[:, 0] > tolerance
    np.testing.assert_array_equal(chosen[clear], np.argmax(reference, axis=1)[clear])
    rows = np.arange(chosen.shape[0])
    assert np.all(reference[rows, chosen] >= best - tolerance)


def policy_choice(policy: LinUCBPolicy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chosen creatives of every customer now, reference scores [N, K], eligible creatives)."""
    everyone = np.arange(policy.world.customers.n)
    history = history_keys(policy.world, everyone)
    policy.snapshot[everyone] = history
    theta, widths = policy._model()
    chosen = policy._choose_continuous(everyone, history)
    x = policy.contexts(policy.profiles.observables_of(policy.world, everyone), history)
    eligible = ~policy._fresh
    if policy._fresh.any():
        eligible[np.argmax(policy._fresh)] = True
    return chosen, policy.scores(x, widths, theta), eligible


@pytest.mark.parametrize(
    ("creatives", "days", "alpha", "crm_scores"),
    [
        (500, 5, 0.3, 2),
        (300, 6, 3.0, 2),  # wide confidence bounds: many creatives survive the pruning
        (4_000, 3, 3.0, 1),  # many creatives never delivered, one of them stands for all
        (200, 4, 0.1, 5),
        (3, 4, 1.0, 2),  # fewer creatives than seeds
    ],
)
def test_continuous_choice_is_the_argmax(creatives: int, days: int, alpha: float, crm_scores: int) -> None:
    policy = learned_policy(creatives, days, alpha, seed=8, crm_scores=crm_scores)
    assert policy._score_columns is not None  # the unit-wise scorer is the one used
    chosen, reference, eligible = policy_choice(policy)
    assert_argmax(chosen, reference, eligible)


def test_continuous_choice_with_near_and_exact_ties() -> None:
    """States no run reaches: every θ_k close to one vector (many survivors), then creatives 0-49 exact copies
    of creative 50: where that class wins, the lowest index (0) must be chosen."""
    policy = learned_policy(200, 4, 0.5, seed=6, crm_scores=2)
    policy._model()  # adds the run's last deliveries before the state is set by hand
    rng = np.random.default_rng(0)
    policy.b_vector[:] = 1.0 + 1e-6 * rng.standard_normal(policy.b_vector.shape)
    policy._stale[:] = True
    assert_argmax(*policy_choice(policy))
    policy.b_vector[:50] = policy.b_vector[50]
    policy.a_upper[:50] = policy.a_upper[50]
    policy._stale[:] = True
    chosen, reference, eligible = policy_choice(policy)
    assert_argmax(chosen, reference, eligible)
    assert not np.isin(chosen, np.arange(1, 51)).any()


def test_a_plan_gives_each_reachable_customer_the_argmax() -> None:
    """A plan after the run (through ``plan``, as the engine calls it): the reachable customers, each with the
    argmax of the reference scores, and more than one creative chosen."""
    policy = learned_policy(400, 4, 3.0, seed=9, crm_scores=2)  # wide bounds: many creatives chosen
    plan = policy.plan(WaveContext(time_s=5 * 86_400.0, wave_index=5, budget_left=None))
    everyone = np.arange(policy.world.customers.n)
    np.testing.assert_array_equal(plan.customer, everyone[policy.world.customers.reachable(policy.channel)])
    theta, widths = policy._model()
    history = history_keys(policy.world, plan.customer)
    x = policy.contexts(policy.profiles.observables_of(policy.world, plan.customer), history)
    eligible = ~policy._fresh
    if policy._fresh.any():
        eligible[np.argmax(policy._fresh)] = True
    assert_argmax(plan.creative.astype(np.int64), policy.scores(x, widths, theta), eligible)
    assert np.unique(plan.creative).shape[0] > 1


def test_no_reachable_customer_gives_an_empty_plan() -> None:
    policy = learned_policy(50, 2, 0.1, seed=2, crm_scores=1)
    assert policy._choose_continuous(np.empty(0, np.int64), np.empty(0, np.int64)).shape == (0,)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    creatives=st.integers(1, 40),
    scores_m=st.integers(1, 4),
    units=st.integers(1, 12),
    alpha=st.sampled_from([0.0, 0.1, 1.0, 5.0]),
    fresh_share=st.sampled_from([0.0, 0.3, 1.0]),
)
def test_choose_creatives_matches_brute_force(
    seed: int, creatives: int, scores_m: int, units: int, alpha: float, fresh_share: float
) -> None:
    """Random models and customers: the pruned, unit-wise argmax against every (customer, creative) score."""
    rng = np.random.default_rng(seed)
    categorical, history = 3, 3
    d = 1 + categorical + scores_m + history
    columns = np.arange(1 + categorical, 1 + categorical + scores_m)
    unit_x = np.zeros((units, d))
    unit_x[:, 0] = 1.0
    unit_x[:, 1 : 1 + categorical] = rng.choice([-0.6, 0.4, 1.7], size=(units, categorical))
    unit_x[:, d - history :] = rng.uniform(0.0, 2.0, size=(units, history))
    unit_profile = np.sort(rng.integers(0, 3, size=units))
    sizes = rng.integers(1, 300, size=units)
    rows = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    n = int(rows[-1])
    customer_scores = rng.standard_normal((n, scores_m)).astype(np.float16).astype(np.float64)
    unit_of = np.repeat(np.arange(units), sizes)
    for u in range(units):  # Morton order inside a unit, as the policy sorts them
        part = slice(rows[u], rows[u + 1])
        order = np.argsort(linucb_scores.morton_codes(customer_scores[part]), kind="stable")
        customer_scores[part] = customer_scores[part][order]
    ridge = 1.0
    a_matrix = np.broadcast_to(ridge * np.eye(d), (creatives, d, d)).copy()
    b_vector = np.zeros((creatives, d))
    fresh = rng.random(creatives) < fresh_share
    for k in np.flatnonzero(~fresh):
        seen = rng.standard_normal((int(rng.integers(1, 60)), d)) * rng.uniform(0.1, 3.0)
        a_matrix[k] += seen.T @ seen
        b_vector[k] = seen[: int(rng.integers(0, 4))].sum(axis=0)
    inverse = np.linalg.inv(a_matrix)
    inverse = 0.5 * (inverse + np.swapaxes(inverse, 1, 2))
    theta = np.einsum("kij,kj->ki", inverse, b_vector)
    radius = np.sqrt(np.linalg.eigvalsh(inverse)[:, -1] * (1.0 + 1e-9))
    eligible = ~fresh
    if fresh.any():
        eligible[np.argmax(fresh)] = True
    upper, lower = np.triu_indices(d)
    widths = np.ascontiguousarray((inverse[:, upper, lower] * np.where(upper == lower, 1.0, 2.0)).T)
    chosen = linucb_scores.choose_creatives(
        unit_x, rows, unit_profile, customer_scores, columns, theta, inverse, widths, radius, eligible, alpha, 1 << 22
    )
    x = unit_x[unit_of].copy()
    x[:, columns] = customer_scores
    quad = np.einsum("nd,kde,ne->nk", x, inverse, x)
    reference = x @ theta.T + alpha * np.sqrt(np.maximum(quad, 0.0))
    assert_argmax(chosen, reference, eligible)
    if fresh.any() and not eligible[~fresh].any():  # only never-delivered creatives: the lowest index
        assert np.all(chosen == np.argmax(fresh))


def test_updates_by_unit_equal_the_per_message_sums() -> None:
    """``A_k += Σ x xᵀ`` by (creative, unit) pairs against the sum of each message's own x xᵀ (rounding apart:
    both sum a few hundred products of order 1-30, so they agree to about 1e-13 relative)."""
    policy = learned_policy(50, 3, 0.1, seed=3, crm_scores=3)
    rng = np.random.default_rng(1)
    customer = rng.integers(0, policy.world.customers.n, size=5_000)
    creative = rng.integers(0, 50, size=5_000)
    policy._model()  # adds the run's last deliveries
    start = policy.a_upper.copy()
    keys = (policy.profiles.of[customer] << HISTORY_BITS) | policy.snapshot[customer]
    policy._add_by_unit(customer, creative, keys)
    by_unit = policy.a_upper - start
    policy.a_upper = start.copy()
    order = np.argsort(creative, kind="stable")
    policy._add_outer(creative[order].astype(np.int64), policy._context_of(customer[order]), None)
    per_message = policy.a_upper - start
    assert np.abs(per_message).max() > 1.0
    np.testing.assert_allclose(by_unit, per_message, rtol=1e-12, atol=1e-12 * np.abs(per_message).max())


@pytest.mark.parametrize("creatives", [3, 300])
def test_pair_sums_by_table_equal_pair_sums_by_sorting(creatives: int) -> None:
    """The two ways of grouping a batch of messages by (creative, unit) give the same pairs and the same sums,
    bit for bit (both sum each pair's messages in message order)."""
    rng = np.random.default_rng(creatives)
    n = 20_000
    held = rng.standard_normal((5_000, 3)).astype(np.float32)
    customer = rng.integers(0, 5_000, n).astype(np.int64)
    code = rng.integers(0, 40, n).astype(np.int64)
    creative = rng.integers(0, creatives, n).astype(np.int64)
    seen = np.bincount(creative, minlength=creatives) > 0
    present = np.where(seen, np.cumsum(seen) - 1, -1).astype(np.int64)
    by_table = linucb_scores._pair_sums_dense_compiled(creative, code, 40, present, customer, held)
    by_sorting = linucb_scores._pair_sums_sorted(creative, code, 40, creatives, customer, held)
    for table, sorting in zip(by_table, by_sorting, strict=True):
        np.testing.assert_array_equal(table, sorting)
