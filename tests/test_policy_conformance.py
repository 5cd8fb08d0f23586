"""Every registered targeting policy obeys the rules of the game, checked from the outside.

The suite is parametrised over ``targeting_names()``, so a policy registered later is covered without
editing this file. Each policy runs with its default parameters on a small scenario, wrapped by a
:class:`Harness` that stands in for its factory: it records the world the policy was given, every plan
(copied, with how many planned customers were unreachable at plan time) and every feedback event, and
forwards to the policy exactly the feedback kinds it declared. The engine drops rule-breaking contacts
anyway, so the checks look at the plans as well as at what was delivered.

Rules: plans only name reachable customers (not held out, opted in to the row's channel); nothing is
delivered to a held-out or opted-out customer; weekly frequency caps, the budget and SMS quiet hours hold;
the same seed gives the same plans wave by wave and the same results; latent taste is never read unless
the policy declares ``reads_latent_taste``, which a run with the population's taste replaced by NaN (the
engine keeping the truth for responses) must not notice. Two deliberately bad policies show the checks bite.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import numpy as np
import pytest

import masssim
from conftest import small_scenario
from masssim.engine import sim as sim_module
from masssim.engine.sim import ArmOutcome, ArmSimulation, build_world
from masssim.model.streams import replication_sequence, root_sequence
from masssim.policies.base import (
    ARM_CHANNELS,
    FEEDBACK_KINDS,
    Feedback,
    Plan,
    PolicyBase,
    PolicyParams,
    PolicyWorld,
    WaveContext,
)
from masssim.policies.registry import params_model, resolve_targeting, targeting_names

NAMES = targeting_names()
# The rule checks below need sends to check; `none` (contacts nobody) is checked for exactly that instead.
SENDERS = [name for name in NAMES if name != "none"]
CAP = 2  # email frequency cap per week in the main scenario (seven daily waves in one week)
SEED = 4


# ----------------------------------------------------------------------------------------------------------
# The harness
# ----------------------------------------------------------------------------------------------------------


@dataclass
class PlanRecord:
    wave_index: int
    customer: np.ndarray
    creative: np.ndarray
    channel: np.ndarray
    audience: np.ndarray | None
    unreachable: int  # planned customers held out or not opted in to their row's channel, at plan time


class Harness:
    """Stands in for a policy factory (same ``Params`` and ``reads_latent_taste``) and records what happens.

    It asks the engine for every feedback kind (``feedback_kinds = None``) so that deliveries can be
    checked, and passes the wrapped policy only the kinds the policy itself declared, as the engine would.
    """

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.Params = params_model(factory)
        self.reads_latent_taste = bool(getattr(factory, "reads_latent_taste", False))
        declared = getattr(factory, "feedback_kinds", None)
        self.policy_kinds = FEEDBACK_KINDS if declared is None else FEEDBACK_KINDS & frozenset(declared)
        self.feedback_kinds = None
        self.world: PolicyWorld | None = None
        self.policy: Any = None
        self.plans: list[PlanRecord] = []
        self.delivered: list[dict[str, np.ndarray]] = []

    def __call__(self, params: PolicyParams, world: PolicyWorld) -> _Wrapped:
        self.world = world
        self.policy = self.factory(params, world)
        return _Wrapped(self)

    def delivered_events(self) -> dict[str, np.ndarray]:
        if not self.delivered:
            return {"customer": np.empty(0, np.int64), "time_s": np.empty(0), "channel": np.empty(0, np.int8)}
        return {k: np.concatenate([d[k] for d in self.delivered]) for k in self.delivered[0]}


class _Wrapped:
    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    def plan(self, wave: WaveContext) -> Plan:
        h = self.harness
        assert h.world is not None
        plan = h.policy.plan(wave)
        view = h.world.customers
        customer = np.asarray(plan.customer).astype(np.int64)
        channel = np.asarray(plan.channel)
        # A row left to the arm's channel order (ARM_CHANNELS) must be reachable on one channel of it.
        order_mask = np.uint8(sum(1 << c for c in view.channel_order))
        bits = np.where(channel == ARM_CHANNELS, order_mask, np.uint8(1) << channel.astype(np.uint8))
        reachable = view.contactable[customer] & ((view.optin[customer] & bits) != 0)
        h.plans.append(
            PlanRecord(
                wave.wave_index,
                customer.copy(),
                np.asarray(plan.creative).copy(),
                np.asarray(plan.channel).copy(),
                None if plan.audience is None else np.asarray(plan.audience).copy(),
                int((~reachable).sum()),
            )
        )
        return plan

    def observe(self, feedback: Feedback) -> None:
        h = self.harness
        if "delivered" in feedback.events:
            h.delivered.append({k: v.copy() for k, v in feedback.events["delivered"].items()})
        mine = {kind: events for kind, events in feedback.events.items() if kind in h.policy_kinds}
        if mine:
            h.policy.observe(Feedback(time_s=feedback.time_s, events=mine))


@contextmanager
def _injected(harness: Harness) -> Iterator[None]:
    """Every arm built in this block gets the harness as its policy factory."""
    with mock.patch.object(sim_module, "resolve_targeting", lambda name: harness):
        yield


@dataclass
class Run:
    harness: Harness
    sim: ArmSimulation
    outcome: ArmOutcome
    initial_optin: np.ndarray = field(repr=False)


def run_policy(factory: Any, scenario: masssim.Scenario, *, seed: int = SEED, hide_taste: bool = False) -> Run:
    """One arm of ``scenario`` (replication 0) with ``factory`` as its policy, through the harness.

    ``hide_taste``: the policy's world is built from a copy of the population whose latent taste is NaN,
    while the engine keeps drawing responses from the true taste, so a policy that never reads taste
    cannot tell the difference.
    """
    world = build_world(scenario, replication_sequence(root_sequence(seed), 0))
    initial_optin = world.population.optin.copy()
    harness = Harness(factory)
    with _injected(harness):
        if hide_taste:
            truth = world.population
            blind = dataclasses.replace(truth, taste=np.full_like(truth.taste, np.nan))
            sim = ArmSimulation(scenario, dataclasses.replace(world, population=blind), 0)
            sim.sender.population = truth  # responses still follow the true taste
        else:
            sim = ArmSimulation(scenario, world, 0)
        outcome = sim.run()
    return Run(harness, sim, outcome, initial_optin)


def main_scenario(policy: str = "random") -> masssim.Scenario:
    """Email, two calendar weeks of daily waves (every learning policy gets past its test phase), frequent
    unsubscribes (plans must follow opt-outs), some declared taste (so policies that use it take that path).
    The harness replaces the arm's policy."""
    return small_scenario(
        horizon_days=14,
        population={"customers": 3_000, "declared_taste_share": 0.3},
        channels={"email": {"unsubscribe_rate": 0.05}},
        arms=[{"name": "arm", "policy": policy}],
    )


def capped_scenario() -> masssim.Scenario:
    """One calendar week of daily waves with an email cap of CAP sends per week."""
    return small_scenario(
        population={"customers": 3_000},
        channels={"email": {"frequency_cap_per_week": CAP}},
        arms=[{"name": "arm", "policy": "random"}],
    )


# ----------------------------------------------------------------------------------------------------------
# The checks (plain functions: the bad-policy tests call them and expect them to fail)
# ----------------------------------------------------------------------------------------------------------


def check_reachability(run: Run) -> None:
    h = run.harness
    assert h.plans, "the policy was never asked for a plan"
    bad = [(p.wave_index, p.unreachable) for p in h.plans if p.unreachable]
    assert not bad, f"plans named unreachable customers (wave, count): {bad}"
    delivered = h.delivered_events()
    customer = delivered["customer"]
    contactable = run.sim.world.contactable
    assert contactable[customer].all(), "a held-out customer received a message"
    bit = np.uint8(1) << delivered["channel"].astype(np.uint8)
    assert ((run.initial_optin[customer] & bit) != 0).all(), "a customer never opted in received a message"


def check_frequency_cap(run: Run) -> None:
    sends = run.sim.state.sends
    assert int(sends.max()) <= CAP, f"a customer got {int(sends.max())} sends in one week, cap {CAP}"
    delivered = run.harness.delivered_events()["customer"]
    assert np.bincount(delivered).max(initial=0) <= CAP


def check_latent_taste(run: Run) -> None:
    h = run.harness
    assert h.world is not None
    if h.reads_latent_taste:
        assert h.world.customers.latent_taste is not None
        assert h.world.catalogue.quality is not None
    else:
        assert h.world.customers.latent_taste is None, "latent taste given to a policy that did not declare it"
        assert h.world.catalogue.quality is None, "creative quality given to a policy that did not declare it"
        assert h.world.affinity_click_beta is None


def assert_same_plans(a: Run, b: Run) -> None:
    pa, pb = a.harness.plans, b.harness.plans
    assert len(pa) == len(pb), "not the same number of waves"
    for x, y in zip(pa, pb, strict=True):
        for name in ("customer", "creative", "channel"):
            assert np.array_equal(getattr(x, name), getattr(y, name)), f"wave {x.wave_index}: {name} differs"
        assert (x.audience is None) == (y.audience is None)
        if x.audience is not None and y.audience is not None:
            assert np.array_equal(x.audience, y.audience), f"wave {x.wave_index}: audience differs"


def assert_same_outcome(a: Run, b: Run) -> None:
    assert a.outcome.metrics == b.outcome.metrics
    assert np.array_equal(a.outcome.series, b.outcome.series)


# ----------------------------------------------------------------------------------------------------------
# Tests over every registered policy
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def main_runs() -> dict[str, Run]:
    """One run of every registered policy on the main scenario (shared by the checks that only read it)."""
    scenario = main_scenario()
    return {name: run_policy(resolve_targeting(name), scenario) for name in NAMES}


def test_every_builtin_is_covered() -> None:
    expected = {"random", "broadcast", "segments", "oracle", "micro", "individual"}
    expected |= {"epsilon_greedy", "thompson", "linucb", "uplift", "response"}
    assert expected <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_params_are_described_and_defaults_valid(name: str) -> None:
    factory = resolve_targeting(name)
    model = params_model(factory)
    model()  # every field has a valid default
    undocumented = [f for f, info in model.model_fields.items() if not info.description]
    assert not undocumented, f"parameters without a description: {undocumented}"
    declared = getattr(factory, "feedback_kinds", None)
    assert declared is None or frozenset(declared) <= FEEDBACK_KINDS


@pytest.mark.parametrize("name", SENDERS)
def test_plans_only_reachable_customers_and_nothing_reaches_the_holdout(name: str, main_runs: dict[str, Run]) -> None:
    run = main_runs[name]
    check_reachability(run)
    assert run.outcome.metrics["blocked_not_reachable"] == 0
    assert run.outcome.metrics["sends"] > 0


def test_the_no_contact_policy_plans_nobody(main_runs: dict[str, Run]) -> None:
    run = main_runs["none"]
    assert run.harness.plans  # it was asked at every wave
    assert all(record.customer.shape[0] == 0 for record in run.harness.plans)
    assert run.outcome.metrics["sends"] == 0
    assert run.outcome.metrics["cost_total"] == 0


@pytest.mark.parametrize("name", SENDERS)
def test_weekly_frequency_cap(name: str) -> None:
    run = run_policy(resolve_targeting(name), capped_scenario())
    check_reachability(run)
    check_frequency_cap(run)
    assert run.outcome.metrics["blocked_frequency_cap"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_latent_taste_only_when_declared(name: str, main_runs: dict[str, Run]) -> None:
    check_latent_taste(main_runs[name])


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_given_its_stream(name: str, main_runs: dict[str, Run]) -> None:
    again = run_policy(resolve_targeting(name), main_scenario())
    assert_same_plans(main_runs[name], again)
    assert_same_outcome(main_runs[name], again)


@pytest.mark.parametrize("name", NAMES)
def test_the_harness_changes_nothing(name: str, main_runs: dict[str, Run]) -> None:
    """The harness asks the engine for every feedback kind; results must equal a plain run's."""
    scenario = main_scenario(name)
    world = build_world(scenario, replication_sequence(root_sequence(SEED), 0))
    plain = ArmSimulation(scenario, world, 0).run()
    assert plain.metrics == main_runs[name].outcome.metrics


@pytest.mark.parametrize("name", [n for n in NAMES if not getattr(resolve_targeting(n), "reads_latent_taste", False)])
def test_blind_to_latent_taste(name: str, main_runs: dict[str, Run]) -> None:
    blind = run_policy(resolve_targeting(name), main_scenario(), hide_taste=True)
    assert_same_plans(main_runs[name], blind)
    assert_same_outcome(main_runs[name], blind)


@pytest.mark.parametrize("name", SENDERS)
def test_mixes_channels_in_an_arm_with_a_channel_order(name: str) -> None:
    """With ``channels`` the policy plans on the order (ARM_CHANNELS) and the engine picks the channel."""
    scenario = small_scenario(
        population={"customers": 3_000},
        arms=[{"name": "arm", "policy": "random", "channels": ["messaging", "email"]}],
    )
    run = run_policy(resolve_targeting(name), scenario)
    check_reachability(run)
    assert all((p.channel == ARM_CHANNELS).all() for p in run.harness.plans)
    metrics = run.outcome.metrics
    assert metrics["sends_messaging"] > 0 and metrics["sends_email"] > 0
    assert metrics["sends_messaging"] + metrics["sends_email"] == metrics["sends"]


@pytest.mark.parametrize("name", SENDERS)
def test_budget_is_respected(name: str) -> None:
    budget = 4.0
    scenario = small_scenario(
        population={"customers": 3_000},
        budget_total=budget,
        creatives={"production_cost": 0.25},
        arms=[{"name": "arm", "policy": "random"}],
    )
    metrics = run_policy(resolve_targeting(name), scenario).outcome.metrics
    assert metrics["cost_total"] <= budget + 1e-9
    assert metrics["blocked_budget"] > 0


@pytest.mark.parametrize("name", SENDERS)
def test_sms_quiet_hours(name: str) -> None:
    scenario = small_scenario(
        population={"customers": 3_000, "crm_scores": 2},  # continuous observables: every customer distinct
        schedule={"channel": "sms", "send_hour": 6.0},
        arms=[{"name": "arm", "policy": "random"}],
    )
    run = run_policy(resolve_targeting(name), scenario)
    check_reachability(run)
    delivered = run.harness.delivered_events()
    assert delivered["customer"].shape[0] > 0
    assert (delivered["channel"] == 1).all()  # sms, the schedule's channel, is every policy's default
    offset = run.sim.sender.region_rel_s[run.sim.world.population.region[delivered["customer"]]]
    local_hour = np.mod((delivered["time_s"] + offset) / 3600.0, 24.0)
    assert ((local_hour >= 8.0) & (local_hour < 21.0)).all(), "an SMS was delivered in local quiet hours"


# ----------------------------------------------------------------------------------------------------------
# The checks catch rule breakers
# ----------------------------------------------------------------------------------------------------------


class PlansEveryone(PolicyBase):
    """Breaks a rule: plans every customer, held-out and opted-out ones included (the engine drops them)."""

    feedback_kinds = frozenset()

    def plan(self, wave: WaveContext) -> Plan:
        n = self.world.customers.n
        return Plan(customer=np.arange(n), creative=np.zeros(n, np.int32), channel=np.zeros(n, np.int8))


class PeeksAtTaste(PolicyBase):
    """Breaks a rule: finds latent taste behind the observables callable and sends each customer the
    creative closest to it."""

    feedback_kinds = frozenset()

    def plan(self, wave: WaveContext) -> Plan:
        view = self.world.customers
        who = np.flatnonzero(view.reachable(self.world.default_channel))
        taste = view.observables.__self__.taste[who]
        creative = np.argmax(taste @ self.world.catalogue.directions.T, axis=1).astype(np.int32)
        return Plan(customer=who, creative=creative, channel=np.zeros(who.shape[0], np.int8))


def test_the_reachability_check_catches_a_policy_that_plans_the_holdout() -> None:
    run = run_policy(PlansEveryone, main_scenario())
    assert run.outcome.metrics["blocked_not_reachable"] > 0  # the engine protected the customers...
    with pytest.raises(AssertionError, match="unreachable"):
        check_reachability(run)  # ...and the suite still fails the policy


def test_the_blind_run_catches_a_policy_that_reads_taste_by_a_back_door() -> None:
    seeing = run_policy(PeeksAtTaste, main_scenario())
    check_latent_taste(seeing)  # the front door was closed...
    blind = run_policy(PeeksAtTaste, main_scenario(), hide_taste=True)
    with pytest.raises(AssertionError, match="creative differs"):
        assert_same_plans(seeing, blind)  # ...the NaN taste shows it read taste anyway
