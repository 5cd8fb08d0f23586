"""Targeting policies: registry, user plug-ins, and that learning policies learn what the model rewards."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import masssim
from conftest import small_scenario
from masssim.policies.registry import resolve_targeting, targeting_names
from masssim.policies.targeting import BroadcastPolicy, SegmentsPolicy


def test_builtins_registered() -> None:
    assert {"random", "broadcast", "segments", "oracle"} <= set(targeting_names())
    assert resolve_targeting("segments") is SegmentsPolicy
    assert resolve_targeting("masssim.policies.targeting:BroadcastPolicy") is BroadcastPolicy
    with pytest.raises(LookupError, match="did you mean 'oracle'"):
        resolve_targeting("oracel")


def test_user_policy_by_module_path() -> None:
    scenario = small_scenario(arms=[{"name": "mine", "policy": "policies_for_tests:RecordingPolicy", "channel": "sms"}])
    result = masssim.run(scenario, seed=1)
    assert result.summary["arms"]["mine"]["sends"]["mean"] > 0


def learning_scenario(persona_signal: float) -> masssim.Scenario:
    return small_scenario(
        replications=6,
        horizon_days=10,
        population={"customers": 40_000, "persona_signal": persona_signal},
        response={"affinity_click_beta": 1.5},
        creatives={"count": 4},
        arms=[
            {"name": "broadcast", "policy": "broadcast"},
            {"name": "personas", "policy": "segments", "segments": 12},
            {"name": "oracle", "policy": "oracle"},
            {"name": "random", "policy": "random"},
        ],
    )


def test_ordering_random_broadcast_personas_oracle_when_observables_carry_signal() -> None:
    summary = masssim.run(learning_scenario(0.8), seed=21).summary
    diff = summary["differences_vs_baseline"]
    # personas beat broadcast, the oracle beats both, random is worse than broadcast: paired CIs exclude 0
    assert diff["personas"]["clicks"]["ci_low"] > 0
    assert diff["oracle"]["clicks"]["ci_low"] > diff["personas"]["clicks"]["ci_high"]
    assert diff["random"]["clicks"]["ci_high"] < 0


def test_personas_gain_nothing_when_observables_carry_no_signal() -> None:
    summary = masssim.run(learning_scenario(0.0), seed=22).summary
    personas = summary["differences_vs_baseline"]["personas"]["click_rate"]
    oracle = summary["differences_vs_baseline"]["oracle"]["click_rate"]
    # With rho = 0 personas cannot fit taste: even the top of their gain's paired CI over broadcast is far below
    # the bottom of the oracle's.
    assert oracle["ci_low"] > 0
    assert personas["ci_high"] < 0.25 * oracle["ci_low"]


def test_segment_assignment_covers_everyone_and_caps_k() -> None:
    scenario = small_scenario(arms=[{"name": "s", "policy": "segments", "segments": 100_000}])
    from masssim.engine.sim import ArmSimulation, build_world
    from masssim.model.streams import replication_sequence, root_sequence

    world = build_world(scenario, replication_sequence(root_sequence(1), 0))
    policy = ArmSimulation(scenario, world, 0).policy
    assert isinstance(policy, SegmentsPolicy)
    profiles = np.unique(
        world.population.region.astype(int) * 10_000
        + world.population.age_band.astype(int) * 100
        + world.population.income_band
    ).shape[0]
    assert policy.n_segments == profiles
    assert policy.segment_of.min() == 0 and policy.segment_of.max() == profiles - 1


def test_progress_callback_reaches_one() -> None:
    seen: list[float] = []
    masssim.run(small_scenario(), seed=1, progress=seen.append)
    assert seen and seen[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in itertools.pairwise(seen))


def test_personas_reach_one_to_one_with_distinct_customers() -> None:
    """With CRM scores customers are distinct: k = N (or more, up to the cap) is one persona each, and a
    k close to N still covers everyone with at most k personas."""
    from masssim.engine.sim import ArmSimulation, build_world
    from masssim.model.streams import replication_sequence, root_sequence
    from masssim.policies.targeting import MAX_PERSONAS

    n = 3_000
    for k, expect_all in ((MAX_PERSONAS, True), (n, True), (n - 500, False)):
        scenario = small_scenario(
            population={"customers": n, "crm_scores": 2},
            arms=[{"name": "s", "policy": "segments", "segments": k}],
        )
        world = build_world(scenario, replication_sequence(root_sequence(1), 0))
        policy = ArmSimulation(scenario, world, 0).policy
        assert isinstance(policy, SegmentsPolicy)
        used = np.unique(policy.segment_of)
        np.testing.assert_array_equal(used, np.arange(policy.n_segments))  # every persona has customers
        if expect_all:
            assert policy.n_segments == n
        else:
            assert n / 2 < policy.n_segments <= k


def test_none_policy_contacts_nobody_and_causes_nothing() -> None:
    scenario = masssim.scenario_from_dict(
        {
            "name": "nobody",
            "replications": 2,
            "horizon_days": 14,
            "population": {"customers": 20_000},
            "arms": [{"name": "quiet", "policy": "none"}, {"name": "all", "policy": "broadcast"}],
        }
    )
    arms = masssim.run(scenario, seed=4).summary["arms"]
    quiet = arms["quiet"]
    for metric in ("sends", "cost_total", "clicks", "incremental_purchases_true", "customers_reached"):
        assert quiet[metric]["values"] == [0.0, 0.0], metric
    # The same customers still buy: organic purchases happen in both arms.
    assert quiet["purchases_treated"]["mean"] > 0
    assert arms["all"]["sends"]["mean"] > 0
