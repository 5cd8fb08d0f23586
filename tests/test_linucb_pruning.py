"""linucb scores only the creatives that can win (``LinUCBPolicy.best_creatives``): its choices must be the
exact argmax over every creative, ties to the lowest index, whatever the state of the model."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import small_scenario
from masssim.engine.sim import ArmSimulation, build_world
from masssim.model.streams import replication_sequence, root_sequence
from masssim.policies.bandits import LinUCBPolicy, context_groups
from masssim.policies.learning_features import HISTORY_BITS, history_keys


def learned_policy(creatives: int, days: int, alpha: float, seed: int, crm_scores: int = 0) -> LinUCBPolicy:
    scenario = small_scenario(
        horizon_days=days,
        population={"customers": 6_000, "crm_scores": crm_scores},
        creatives={"count": creatives},
        arms=[{"name": "linucb", "policy": "linucb", "alpha": alpha}],
    )
    world = build_world(scenario, replication_sequence(root_sequence(seed), 0))
    sim = ArmSimulation(scenario, world, 0)
    sim.run()
    policy = sim.policy
    assert isinstance(policy, LinUCBPolicy)
    return policy


def every_context(policy: LinUCBPolicy) -> tuple[np.ndarray, np.ndarray]:
    """The contexts of every customer now, distinct and sorted as ``plan`` sorts them, and their groups."""
    everyone = np.arange(policy.world.customers.n)
    keys = np.unique((policy.profiles.of[everyone] << HISTORY_BITS) | history_keys(policy.world, everyone))
    x = policy.contexts(policy.profiles.observables[keys >> HISTORY_BITS], keys)
    return x, context_groups(keys >> HISTORY_BITS)


def assert_exact(policy: LinUCBPolicy) -> None:
    x, groups = every_context(policy)
    theta, widths = policy._model()
    expected = np.argmax(policy.scores(x, widths, theta), axis=1)
    np.testing.assert_array_equal(policy.best_creatives(x, groups), expected)


@pytest.mark.parametrize(
    ("creatives", "days", "alpha"),
    [
        (300, 6, 0.1),  # the default width: few creatives can win
        (300, 6, 3.0),  # wide confidence bounds: many can
        (4_000, 3, 3.0),  # many creatives never delivered and they can win: they tie, the lowest index wins
        (3, 4, 1.0),  # fewer creatives than seeds
    ],
)
def test_pruned_choice_is_the_exact_argmax(creatives: int, days: int, alpha: float) -> None:
    policy = learned_policy(creatives, days, alpha, seed=5)
    assert_exact(policy)


def test_pruned_choice_is_exact_when_creatives_are_nearly_tied() -> None:
    """A state no run reaches: every creative's θ_k close to one common vector, so that bounds and
    scores are close together and many creatives survive the pruning."""
    policy = learned_policy(200, 4, 0.5, seed=6)
    rng = np.random.default_rng(0)
    policy.b_vector[:] = 1.0 + 1e-6 * rng.standard_normal(policy.b_vector.shape)
    policy._stale[:] = True
    assert_exact(policy)
    policy.b_vector[:50] = policy.b_vector[50]  # some exact ties among delivered creatives
    policy.a_upper[:50] = policy.a_upper[50]
    policy._stale[:] = True
    assert_exact(policy)


def test_never_delivered_creatives_win_with_the_lowest_index() -> None:
    """Delivered creatives given clicks against them (b_k < 0), so that the never-delivered ones, which all
    score α·|x|, win most contexts: the lowest-indexed of them must be the one chosen."""
    policy = learned_policy(4_000, 2, 0.1, seed=7)
    fresh = np.all(policy.a_upper == policy._a_start, axis=1) & ~policy.b_vector.any(axis=1)
    assert 0 < fresh.sum() < fresh.shape[0]
    policy.b_vector[~fresh] = -50.0
    policy._stale[:] = True
    assert_exact(policy)
    x, groups = every_context(policy)
    assert np.mean(policy.best_creatives(x, groups) == np.argmax(fresh)) > 0.5


def test_pruned_choice_is_exact_customer_by_customer() -> None:
    """With continuous CRM scores contexts are not shared: each customer is scored, in (profile, history)
    order and groups of close contexts."""
    policy = learned_policy(500, 5, 0.3, seed=8, crm_scores=2)
    assert not policy.profiles.exact
    everyone = np.arange(policy.world.customers.n)
    keys = (policy.profiles.of << HISTORY_BITS) | history_keys(policy.world, everyone)
    order = np.argsort(keys, kind="stable")
    x = policy.contexts(policy.profiles.observables_of(policy.world, order), keys[order] & ((1 << HISTORY_BITS) - 1))
    theta, widths = policy._model()
    expected = np.argmax(policy.scores(x, widths, theta), axis=1)
    np.testing.assert_array_equal(policy.best_creatives(x, context_groups(policy.profiles.of[order])), expected)
