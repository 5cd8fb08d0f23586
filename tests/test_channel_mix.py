"""Channel mixes: an arm with a channel preference order sends each planned contact on the first channel that
takes it (opted in, under its weekly cap, within its capacity for the wave and the budget), else passes it on.

The property test compares the engine with a row-by-row statement of the rule (docs/model.md, "Channel
mixes") on random opt-ins, weekly counts, caps, capacities, budgets and plan orders.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import masssim
from conftest import small_scenario
from masssim.config.schema import CHANNEL_NAMES
from masssim.engine.outbound import PlanError
from masssim.engine.sim import ArmSimulation, build_world
from masssim.model.metrics import CHANNEL_FIGURES, channel_metric
from masssim.model.streams import replication_sequence, root_sequence
from masssim.policies.base import ARM_CHANNELS, Plan

CUSTOMERS = 300
UNPAID = ("email", "sms", "messaging")  # paid_social's ad-set rules are tested on their own (test_engine)


@st.composite
def mixes(draw: st.DrawFn) -> dict:
    order = draw(st.permutations(UNPAID).flatmap(lambda p: st.integers(1, 3).map(lambda k: list(p[:k]))))
    return {
        "order": order,
        "caps": {c: draw(st.integers(1, 3)) for c in UNPAID},
        # sends per hour: a low one binds the wave's room (24 x per hour with waves a day apart)
        "capacity": {c: draw(st.sampled_from([1.0, 2.5, 5.0, 1e6])) for c in UNPAID},
        "budget": draw(st.one_of(st.none(), st.floats(0.5, 10.0))),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "plan_share": draw(st.floats(0.2, 1.0)),
    }


def _arm_simulation(mix: dict) -> ArmSimulation:
    scenario = small_scenario(
        replications=1,
        horizon_days=60,
        population={"customers": CUSTOMERS},
        budget_total=mix["budget"],
        creatives={"production_cost": 0.0},
        channels={
            c: {"frequency_cap_per_week": mix["caps"][c], "capacity_per_hour": mix["capacity"][c]} for c in UNPAID
        },
        arms=[{"name": "mix", "policy": "none", "channels": mix["order"]}],
    )
    world = build_world(scenario, replication_sequence(root_sequence(1), 0))
    return ArmSimulation(scenario, world, 0)


def _reference(
    rows: np.ndarray,
    mix: dict,
    contactable: np.ndarray,
    optin: np.ndarray,
    week: dict[int, np.ndarray],
    sim: ArmSimulation,
) -> tuple[dict[int, int], int]:
    """The rule, one row at a time: customer -> channel index sent on, and the number of passes."""
    configs = sim.sender.channels.configs
    remaining = math.inf if mix["budget"] is None else mix["budget"]
    sent: dict[int, int] = {}
    passes = 0
    for level, name in enumerate(mix["order"]):
        c = CHANNEL_NAMES.index(name)
        cfg = configs[c]
        last = level == len(mix["order"]) - 1
        room = math.inf if last else math.floor(cfg.capacity_per_hour * 24 * 3600 / 3600)
        taken, passed = 0, []
        for customer in rows.tolist():
            eligible = (
                contactable[customer] and optin[customer] >> c & 1 and week[c][customer] < cfg.frequency_cap_per_week
            )
            # the budget funds contacts in order while their cumulative price fits (same arithmetic as a cumsum)
            affordable = cfg.cost_per_send * (taken + 1) <= remaining
            if eligible and taken < room and affordable:
                sent[customer] = c
                taken += 1
            else:
                passed.append(customer)
        remaining -= cfg.cost_per_send * taken
        if not last:
            passes += len(passed)
        rows = np.array(passed, np.int64)
        if not passed:
            break
    return sent, passes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixes())
def test_each_contact_goes_on_the_first_channel_of_the_order_that_takes_it(mix: dict) -> None:
    sim = _arm_simulation(mix)
    rng = np.random.default_rng(mix["seed"])
    state = sim.state
    state.optin[:] = rng.integers(0, 16, CUSTOMERS, dtype=np.uint8)
    week = {}
    for name in UNPAID:
        c = CHANNEL_NAMES.index(name)
        week[c] = state.week_counter(c, CUSTOMERS)
        week[c][:] = rng.integers(0, 4, CUSTOMERS, dtype=np.uint8)
    before = {c: w.copy() for c, w in week.items()}
    optin = state.optin.copy()
    rows = rng.permutation(CUSTOMERS)[: max(1, int(mix["plan_share"] * CUSTOMERS))].astype(np.int64)
    expected, passes = _reference(rows, mix, sim.world.contactable, optin, before, sim)

    plan = Plan(
        customer=rows,
        creative=np.zeros(rows.shape[0], np.int32),
        channel=np.full(rows.shape[0], ARM_CHANNELS, np.int8),
    )
    sim.sender.send(plan, 0.0, 0.0)

    sent: dict[int, int] = {}
    for c, w in week.items():
        for customer in np.flatnonzero(w != before[c]).tolist():
            assert customer not in sent, "a customer was sent on two channels in one wave"
            sent[customer] = c
    assert sent == expected
    totals = sim.recorder.totals
    assert totals["channel_fallbacks"] == passes
    assert totals["blocked_horizon_end"] == 0  # the horizon is long enough: every taken contact leaves
    # the per-channel sends add up to the total, and match the channels the customers went on
    for c, name in enumerate(CHANNEL_NAMES):
        assert totals[channel_metric("sends", name)] == sum(1 for v in sent.values() if v == c)
    assert totals["sends"] == len(sent)


def test_per_channel_figures_add_up_to_the_totals() -> None:
    scenario = small_scenario(
        replications=1,
        horizon_days=10,
        arms=[
            {"name": "mix", "policy": "random", "channels": ["sms", "messaging", "email"]},
            {"name": "paid", "policy": "broadcast", "channels": ["paid_social", "email"]},
        ],
    )
    result = masssim.run(scenario, seed=3, workers=1)
    totals = {"cost": ("cost_sends", "cost_media")}
    for arm in ("mix", "paid"):
        used = 0
        for figure in CHANNEL_FIGURES:
            parts = [result.values(arm, channel_metric(figure, name))[0] for name in CHANNEL_NAMES]
            whole = sum(result.values(arm, name)[0] for name in totals.get(figure, (figure,)))
            assert sum(parts) == pytest.approx(whole, rel=1e-9, abs=1e-9), (arm, figure)
            used += sum(p > 0 for p in parts)
        assert used > len(CHANNEL_FIGURES)  # more than one channel carried messages
    timeseries = result.timeseries
    for name in CHANNEL_NAMES:
        assert channel_metric("clicks", name) in timeseries


def test_an_arm_without_an_order_is_unchanged_and_mixed_rows_need_an_order() -> None:
    scenario = small_scenario(replications=1)
    sim = ArmSimulation(scenario, build_world(scenario, replication_sequence(root_sequence(1), 0)), 0)
    assert sim.policy.world.default_channel == CHANNEL_NAMES.index("email")
    plan = Plan(customer=np.array([1, 2]), creative=np.zeros(2, np.int32), channel=np.full(2, ARM_CHANNELS, np.int8))
    with pytest.raises(PlanError, match="channel order"):
        sim.sender.send(plan, 0.0, 0.0)


def test_schedule_channels_apply_unless_an_arm_names_its_own_channel() -> None:
    scenario = small_scenario(
        schedule={"channels": ["messaging", "email"]},
        arms=[
            {"name": "mixed", "policy": "broadcast"},
            {"name": "own", "policy": "broadcast", "channel": "sms"},
            {"name": "other", "policy": "broadcast", "channels": ["email"]},
        ],
    )
    assert [a.channel_order(scenario.schedule) for a in scenario.arms] == [["messaging", "email"], None, ["email"]]


@pytest.mark.parametrize(
    ("arm", "schedule", "field", "words"),
    [
        ({"channels": ["email", "email"]}, {}, "arms[0].channels", "once"),
        ({"channel": "sms", "channels": ["email"]}, {}, "arms[0].channels", "not both"),
        ({"channels": []}, {}, "arms[0].channels", "at least one"),
        ({}, {"channels": ["fax"]}, "schedule.channels[0]", "email"),
    ],
)
def test_a_bad_channel_order_is_named(arm: dict, schedule: dict, field: str, words: str) -> None:
    with pytest.raises(masssim.ScenarioError) as caught:
        small_scenario(schedule=schedule, arms=[{"name": "a", "policy": "broadcast", **arm}])
    assert field in str(caught.value) and words in str(caught.value)


def test_the_report_shows_each_channel_of_a_mixed_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    scenario = small_scenario(
        replications=2,
        arms=[
            {"name": "email", "policy": "broadcast"},
            {"name": "mix", "policy": "broadcast", "channels": ["messaging", "email"]},
        ],
    )
    folder = masssim.run(scenario, seed=4, workers=1).save(tmp_path)
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<h2>By channel</h2>" in page
    for name in ("email", "messaging"):
        for figure in CHANNEL_FIGURES:
            assert f"<code>{channel_metric(figure, name)}</code>" in page
    series = (folder / "timeseries.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "clicks_messaging" in series


def test_a_comparison_of_channels_reports_each_channel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    scenario = small_scenario(replications=2, arms=[{"name": "a", "policy": "broadcast"}])
    result = masssim.compare(scenario, variants=["messaging:schedule.channel=messaging"], seed=4, workers=1)
    folder = result.save(tmp_path)
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<h2>By channel</h2>" in page and "<code>clicks_messaging</code>" in page
