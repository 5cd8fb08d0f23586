"""The engine enforces the rules, delays outcomes realistically, and is exactly reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest

import masssim
from conftest import small_scenario
from masssim.engine.outbound import PlanError
from masssim.engine.sim import ArmSimulation, build_world
from masssim.model.metrics import TIMESERIES
from masssim.model.streams import replication_sequence, root_sequence
from masssim.reporting.results import dumps_json
from policies_for_tests import RecordingPolicy

RECORDER = "policies_for_tests:RecordingPolicy"


def simulate(scenario: masssim.Scenario, arm: int = 0, replication: int = 0) -> tuple[ArmSimulation, dict[str, float]]:
    world = build_world(scenario, replication_sequence(root_sequence(scenario.seed), replication))
    sim = ArmSimulation(scenario, world, arm)
    return sim, sim.run().metrics


def test_same_seed_same_bytes_and_workers_do_not_matter() -> None:
    scenario = small_scenario(
        replications=3,
        arms=[{"name": "b", "policy": "broadcast"}, {"name": "s", "policy": "segments", "segments": 4}],
    )
    one = dumps_json(masssim.run(scenario, seed=5, workers=1).summary)
    again = dumps_json(masssim.run(scenario, seed=5, workers=1).summary)
    two = dumps_json(masssim.run(scenario, seed=5, workers=2).summary)
    assert one == again == two
    other = dumps_json(masssim.run(scenario, seed=6, workers=1).summary)
    assert other != one


def test_timeseries_adds_up_to_totals() -> None:
    result = masssim.run(small_scenario(), seed=3)
    cols = result.timeseries
    for r, rep in enumerate(result.replications):
        rows = cols["replication"] == r
        for name in TIMESERIES:
            assert cols[name][rows].sum() == pytest.approx(rep["broadcast"].metrics[name], rel=1e-9, abs=1e-9)


def test_holdout_and_optouts_are_never_contacted() -> None:
    scenario = small_scenario(arms=[{"name": "r", "policy": RECORDER, "everyone": True}])
    sim, metrics = simulate(scenario)
    policy = sim.policy
    assert isinstance(policy, RecordingPolicy)
    delivered = policy.events("delivered")["customer"]
    assert delivered.shape[0] > 0
    assert sim.world.contactable[delivered].all()
    optin = sim.world.population.optin  # opt-ins at the start (unsubscribes only remove)
    assert ((optin[delivered] & 1) == 1).all()
    not_reachable = (~sim.world.contactable) | ((optin & 1) == 0)
    assert metrics["blocked_not_reachable"] >= not_reachable.sum() * len(sim.days)
    assert not policy.saw_latent


def test_quiet_hours_respected_on_sms() -> None:
    scenario = small_scenario(
        schedule={"channel": "sms", "send_hour": 6.0},
        arms=[{"name": "r", "policy": RECORDER, "channel": "sms"}],
    )
    sim, metrics = simulate(scenario)
    events = sim.policy.events("delivered")
    region_offset = sim.sender.region_rel_s[sim.world.population.region[events["customer"]]]
    local_hour = np.mod((events["time_s"] + region_offset) / 3600.0, 24.0)
    assert events["customer"].shape[0] > 0
    assert ((local_hour >= 8.0) & (local_hour < 21.0)).all()
    assert metrics["deferred_quiet_hours"] == metrics["sends"]


def test_capacity_per_hour_is_respected() -> None:
    scenario = small_scenario(
        horizon_days=2,
        channels={"email": {"capacity_per_hour": 500.0, "delivery_rate": 1.0}},
        schedule={"send_in_local_time": False, "wave_every_days": 365},
        arms=[{"name": "r", "policy": RECORDER}],
    )
    sim, metrics = simulate(scenario)
    times = np.sort(sim.policy.events("delivered")["time_s"])
    per_hour = np.bincount((times // 3600).astype(int))
    assert metrics["sends"] > 3_000
    assert per_hour.max() <= 500
    assert times[-1] - times[0] >= (metrics["sends"] - 1) * 3600 / 500 - 1


def test_weekly_frequency_cap() -> None:
    scenario = small_scenario(
        channels={"email": {"frequency_cap_per_week": 2}}, arms=[{"name": "r", "policy": RECORDER}]
    )
    sim, metrics = simulate(scenario)
    assert sim.state.sends.max() == 2  # seven daily waves in one week, capped at two
    assert metrics["blocked_frequency_cap"] > 0


def test_budget_is_never_exceeded() -> None:
    scenario = small_scenario(budget_total=3_010.0, creatives={"count": 6, "production_cost": 500.0})
    _, metrics = simulate(scenario)
    assert metrics["cost_total"] <= 3_010.0 + 1e-9
    assert metrics["blocked_budget"] > 0


def test_paid_minimum_audience_refused() -> None:
    scenario = small_scenario(
        schedule={"channel": "paid_social"},
        channels={"paid_social": {"min_audience": 10_000}},
        arms=[{"name": "s", "policy": "segments", "segments": 8}],
    )
    _, metrics = simulate(scenario)
    assert metrics["sends"] == 0
    assert metrics["refused_small_audience"] > 0


def test_narrow_paid_audiences_pay_a_premium() -> None:
    def cost_per_impression(segments: int) -> float:
        scenario = small_scenario(
            schedule={"channel": "paid_social"},
            channels={"paid_social": {"min_audience": 0, "narrow_audience_eta": 0.5}},
            arms=[{"name": "s", "policy": "segments", "segments": segments}],
        )
        _, m = simulate(scenario)
        return m["cost_media"] / m["sends"]

    assert cost_per_impression(40) > 1.5 * cost_per_impression(1)


def test_unsubscribes_stop_later_sends() -> None:
    scenario = small_scenario(channels={"email": {"unsubscribe_rate": 0.3}}, arms=[{"name": "r", "policy": RECORDER}])
    sim, _ = simulate(scenario)
    sends = [plan.customer.shape[0] for _, plan in sim.policy.plans]
    assert sends[-1] < 0.5 * sends[0]
    unsubscribed = sim.policy.events("unsubscribe")["customer"]
    assert ((sim.state.optin[unsubscribed] & 1) == 0).all()


def test_outcomes_arrive_late_and_in_order() -> None:
    scenario = small_scenario(arms=[{"name": "r", "policy": RECORDER}])
    sim, _ = simulate(scenario)
    previous = 0.0
    for feedback in sim.policy.feedback:
        for kind in ("open", "click", "delivered"):
            times = feedback.get(kind)["time_s"]
            if times.shape[0]:
                assert times.max() <= feedback.time_s + 1e-6
                assert times.min() > previous - 1e-6
        previous = feedback.time_s
    # no policy ever sees a true read
    assert all("read" not in f.events for f in sim.policy.feedback)
    # a wave's plan is made before any of its own clicks is known
    clicks = sim.policy.events("click")["time_s"]
    first_wave = sim.policy.plans[0][0]
    assert clicks.min() > first_wave


def test_no_marketing_effect_means_no_true_lift() -> None:
    off = {"adstock_per_open": 0.0, "adstock_per_click": 0.0}
    scenario = small_scenario(response={"direct_purchase_per_click": 0.0}, channels={"email": off})
    _, metrics = simulate(scenario)
    assert metrics["clicks"] > 0
    assert metrics["incremental_purchases_true"] == 0.0
    on = small_scenario(channels={"email": {"adstock_per_click": 2.0}})
    _, boosted = simulate(on)
    assert boosted["incremental_purchases_true"] > 0


def test_pull_forward_takes_purchases_from_the_future() -> None:
    def lift(share: float) -> float:
        scenario = small_scenario(
            horizon_days=14,
            response={"direct_purchase_per_click": 1.0, "pull_forward_share": share},
            channels={"email": {"adstock_per_open": 0.0, "adstock_per_click": 0.0}},
        )
        return simulate(scenario)[1]["incremental_purchases_true"]

    assert lift(1.0) < lift(0.0)


def test_malformed_plan_is_a_policy_bug() -> None:
    scenario = small_scenario(arms=[{"name": "d", "policy": "policies_for_tests:DuplicatePolicy"}])
    with pytest.raises(PlanError, match="more than once"):
        simulate(scenario)


def test_summary_is_plain_json() -> None:
    result = masssim.run(
        small_scenario(arms=[{"name": "a", "policy": "broadcast"}, {"name": "b", "policy": "oracle"}]), seed=2
    )
    parsed = json.loads(dumps_json(result.summary))
    assert set(parsed["arms"]) == {"a", "b"}
    diff = parsed["differences_vs_baseline"]["b"]["clicks"]
    assert diff["mean"] == pytest.approx(
        np.mean(np.array(result.values("b", "clicks")) - np.array(result.values("a", "clicks")))
    )
    assert isinstance(diff["excludes_zero"], bool)


def test_capacity_backlog_never_sends_in_quiet_hours() -> None:
    scenario = small_scenario(
        horizon_days=3,
        schedule={"channel": "sms", "send_hour": 20.0, "wave_every_days": 365},
        channels={"sms": {"capacity_per_hour": 400.0, "reach": 1.0, "reach_age_slope": 0.0}},
        arms=[{"name": "r", "policy": RECORDER, "channel": "sms"}],
    )
    sim, metrics = simulate(scenario)
    events = sim.policy.events("delivered")
    offset = sim.sender.region_rel_s[sim.world.population.region[events["customer"]]]
    departure_local = np.mod((events["time_s"] - 12.0 + offset) / 3600.0, 24.0)  # 0.2 min delivery latency
    assert events["customer"].shape[0] > 4_000
    assert ((departure_local >= 8.0) & (departure_local < 21.0)).all()
    assert metrics["deferred_quiet_hours"] > 0


def test_replies_reach_the_policy_in_their_bucket() -> None:
    scenario = small_scenario(
        schedule={"channel": "messaging"},
        channels={"messaging": {"reply_rate": 0.5, "reach": 1.0, "reach_age_slope": 0.0}},
        arms=[{"name": "r", "policy": RECORDER, "channel": "messaging"}],
    )
    sim, metrics = simulate(scenario)
    previous = 0.0
    seen = 0
    for feedback in sim.policy.feedback:
        times = feedback.get("reply")["time_s"]
        seen += times.shape[0]
        if times.shape[0]:
            assert times.max() <= feedback.time_s + 1e-6 and times.min() > previous - 1e-6
        previous = feedback.time_s
    assert seen == metrics["replies"] > 100


@pytest.mark.parametrize("channel", [-1, 7, 2])
def test_a_plan_on_one_channel_is_checked_from_its_one_value(channel: int) -> None:
    """A channel column that is a broadcast view of one value (policies.base.one_channel) is checked by
    reading that value: an unknown channel (-1 without a channel order, 7) is refused as an array's would be."""
    from masssim.engine.outbound import channel_range, validate_plan
    from masssim.policies.base import Plan, one_channel

    column = one_channel(5, channel)
    assert channel_range(column) == (channel, channel)
    assert channel_range(np.array([3, 1, 2], np.int8)) == (1, 3)
    plan = Plan(customer=np.arange(5), creative=np.zeros(5, np.int32), channel=column)
    if channel in (-1, 7):
        with pytest.raises(PlanError, match="unknown channel"):
            validate_plan(plan, 10, 1)
    else:
        assert validate_plan(plan, 10, 1) is plan


def test_checking_a_plan_says_whether_its_customers_increase() -> None:
    """The plan check's one pass over the customers also says whether they strictly increase (what lets the
    draws find each chunk's rows by binary search): yes for the policies' ascending rows and for no rows, no
    for the same rows in another order; the kernel's numpy twin says the same."""
    from masssim.engine import kernels
    from masssim.engine.outbound import check_plan
    from masssim.policies.base import Plan, one_channel

    def plan(customer: np.ndarray) -> Plan:
        return Plan(
            customer=customer, creative=np.zeros(customer.shape[0], np.int32), channel=one_channel(customer.shape[0], 0)
        )

    ascending = np.array([0, 3, 4, 9], np.int64)
    assert check_plan(plan(ascending), 10, 1) is True
    assert check_plan(plan(ascending[::-1].copy()), 10, 1) is False
    assert check_plan(plan(np.array([3, 0, 4, 9], np.int64)), 10, 1) is False
    assert check_plan(plan(ascending[:0]), 10, 1) is True
    assert kernels.check_plan_customers_numpy(ascending, 10) == kernels.PLAN_CUSTOMERS_INCREASING
    assert kernels.check_plan_customers_numpy(ascending[::-1].copy(), 10) == kernels.PLAN_CUSTOMERS_OK
    with pytest.raises(PlanError, match="more than once"):
        check_plan(plan(np.array([0, 3, 3, 9], np.int64)), 10, 1)
