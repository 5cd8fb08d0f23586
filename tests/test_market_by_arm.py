"""Every brand's buying under each arm's marketing (masssim.model.market, docs/model.md 5.5).

Statistical checks use a fixed seed and a tolerance derived from the number of draws: a brand's frequency
among N independent occasions has binomial standard error sqrt(p(1 - p)/N), and each table allows Z of them,
Z set by Bonferroni over the table's comparisons so that the table fails by chance with probability below
0.001 (test_market.z_for). The run-level checks are exact identities, not estimates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import masssim
from conftest import small_scenario
from masssim.engine.sim import simulate_replication
from masssim.model.market import brand_with_marketing, brand_without_marketing
from masssim.model.streams import replication_sequence, root_sequence
from test_conversations import loop_scenario
from test_market import z_for

ROW = np.array([0.3, 0.4, 0.2, 0.1], np.float32)
N = 400_000


def _rows(n: int) -> np.ndarray:
    return np.broadcast_to(ROW, (n, ROW.size))


def test_adstock_takes_the_same_fraction_from_every_rival() -> None:
    """With adstock a, our brand's probability is p0' = p0 + (1 - p0)(1 - e^-a) and rival k's becomes
    p_k e^-a: each rival loses the same fraction (docs/model.md 5.5)."""
    rng = np.random.default_rng(21)
    u = rng.random(N)
    p0, adstock = np.float64(ROW[0]), 0.7
    p_ours = np.full(N, p0 + (1 - p0) * -math.expm1(-adstock))
    brand = brand_with_marketing(_rows(N), u, p_ours, u < p_ours)
    assert np.array_equal(brand == 0, u < p_ours)
    expected = np.concatenate([[p_ours[0]], ROW[1:].astype(np.float64) * math.exp(-adstock)])
    observed = np.bincount(brand, minlength=ROW.size) / N
    z = z_for(ROW.size)
    assert np.all(np.abs(observed - expected) < z * np.sqrt(expected * (1 - expected) / N)), (observed, expected)


def test_without_adstock_the_brand_is_the_no_marketing_worlds_exactly() -> None:
    rng = np.random.default_rng(22)
    u = rng.random(50_000)
    prob = rng.dirichlet(np.ones(5), u.size).astype(np.float32)
    p0 = prob[:, 0].astype(np.float64)
    p_ours = p0 + (1.0 - p0) * -np.expm1(-np.zeros(u.size))  # the engine's formula at zero adstock
    assert np.array_equal(brand_with_marketing(prob, u, p_ours, u < p_ours), brand_without_marketing(prob, u))


def test_a_customer_who_left_buys_rivals_in_their_own_proportions() -> None:
    rng = np.random.default_rng(23)
    u = rng.random(N)
    p_ours = np.full(N, 0.6)
    brand = brand_with_marketing(_rows(N), u, p_ours, np.zeros(N, bool), gone=np.ones(N, bool))
    assert not np.any(brand == 0)
    expected = ROW[1:].astype(np.float64) / (1 - np.float64(ROW[0]))
    observed = np.bincount(brand, minlength=ROW.size)[1:] / N
    z = z_for(expected.size)
    assert np.all(np.abs(observed - expected) < z * np.sqrt(expected * (1 - expected) / N)), (observed, expected)


def _scenario() -> masssim.Scenario:
    # The horizon inside the market's period, so the market window is the whole run; the none arm second, so
    # its market is tallied by its own engine, not the first arm's no-marketing tally.
    return small_scenario(
        horizon_days=10,
        population={"customers": 6_000},
        arms=[
            {"name": "broadcast", "policy": "broadcast"},
            {"name": "none", "policy": "none"},
            {"name": "random", "policy": "random", "audience_share": 0.5},
        ],
    )


def test_a_none_arm_buys_exactly_as_the_world_without_marketing() -> None:
    outcomes = simulate_replication(_scenario(), replication_sequence(root_sequence(5), 0))
    world = outcomes["broadcast"].market
    none = outcomes["none"].arm_market
    assert world is not None and none is not None
    for name, value in vars(world).items():
        assert np.array_equal(np.asarray(value), np.asarray(getattr(none, name))), name
    marketed = outcomes["broadcast"].arm_market
    assert marketed is not None and not np.array_equal(marketed.purchases, world.purchases)


def test_the_summary_per_arm_and_what_marketing_did_to_the_market() -> None:
    scenario = _scenario()
    assert scenario.horizon_days <= scenario.market.period_days
    summary = masssim.run(scenario, replications=2, seed=4).summary
    market = summary["market"]
    by_arm = market["by_arm"]["arms"]
    assert list(by_arm) == ["broadcast", "none", "random"]
    none = by_arm["none"]
    for brand, figures in market["brands"].items():
        for key in ("share", "penetration", "purchases_per_buyer", "bought_a_rival"):
            assert none["brands"][brand][key]["values"] == figures[key]["values"], (brand, key)
            assert none["brands"][brand][key]["change"]["mean"] == 0.0
        for other, stat in figures["duplication"].items():
            assert none["brands"][brand]["duplication"][other]["values"] == stat["values"]
    # Every figure given is defined once (model/metrics.py, pasted into docs/model.md 5.5).
    from masssim.model.metrics import MARKET_FIGURES

    defined = {m.name for m in MARKET_FIGURES}
    for figures in by_arm.values():
        assert {f"category.{key}" for key in figures["category"]} <= defined
        for brand in figures["brands"].values():
            assert set(brand) <= defined
            assert "change" in brand["share"] and "change" not in next(iter(brand["duplication"].values()))
    customers = market["customers_per_replication"]
    ours = next(iter(market["brands"]))
    for arm in ("broadcast", "random"):
        figures = by_arm[arm]
        # Our extra purchases in the market are the engine's true incremental purchases, replication by
        # replication (the window is the whole run; the holdout's buying is the same in both worlds).
        category = np.array(figures["category"]["purchases_per_customer"]["values"]) * customers
        extra = (
            np.array(figures["brands"][ours]["share"]["values"]) * category
            - np.array(market["brands"][ours]["share"]["values"])
            * np.array(none["category"]["purchases_per_customer"]["values"])
            * customers
        )
        true = np.array(summary["arms"][arm]["incremental_purchases_true"]["values"])
        assert np.allclose(extra, true, rtol=0, atol=1e-6), (arm, extra, true)
        assert figures["brands"][ours]["share"]["change"]["mean"] > 0
    # Broadcast's click-started occasions add category purchases (docs/model.md 5.5): the category grows.
    assert by_arm["broadcast"]["category"]["purchases_per_customer"]["change"]["mean"] > 0


def test_the_run_report_shows_each_arms_market() -> None:
    from masssim.reporting.report_market import market_html

    summary = masssim.run(_scenario(), replications=2, seed=4).summary
    market = summary["market"]
    section = market_html(summary).split("The market under each arm")[1]
    ours = next(iter(market["brands"]))
    rows = {row.split("</b>")[0]: row for row in section.split("<tr><td><b>")[1:]}
    assert list(rows) == list(market["by_arm"]["arms"])
    for arm, figures in market["by_arm"]["arms"].items():
        share = figures["brands"][ours]["share"]
        assert f"{100 * share['mean']:.1f}%<small>{100 * share['change']['mean']:+.1f} pts" in rows[arm]
        assert f"{100 * figures['brands'][ours]['penetration']['mean']:.1f}%" in rows[arm]
    # share and penetration unchanged
    assert rows["none"].count("+0.0 pts</small><small>(+0.0 pts to +0.0 pts)</small>") == 2


NO_HUMANS = [
    {"name": "bot", "kind": "bot", "agents": 5, "handle_time_median_minutes": 0.5},
    {"name": "human", "kind": "human", "agents": 0, "handle_time_median_minutes": 6.0},
]


@pytest.mark.parametrize(
    ("inbound", "exercised"),
    [
        ({}, "conversation_purchases"),  # conversations that end in a purchase (not in the market tally)
        (  # complaints nobody answers: their authors leave and buy rivals from then on
            {"pools": NO_HUMANS, "outcomes": {"churn_after_unanswered_complaint": 1.0}},
            "purchases_lost_to_churn",
        ),
    ],
)
def test_with_inbound_the_market_counts_our_occasion_purchases_exactly(inbound: dict[str, Any], exercised: str) -> None:
    """Our purchases in an arm's market are its purchases of ours at purchase occasions: every purchase the
    engine counts (treated and holdout) but those started in conversations, none by a customer who left."""
    scenario = masssim.scenario_from_dict(loop_scenario(**inbound))
    assert scenario.horizon_days <= scenario.market.period_days  # the window is the whole run
    result = masssim.run(scenario)
    seen = 0.0
    for replication in result.replications:
        for arm, outcome in replication.items():
            m = outcome.metrics
            assert outcome.arm_market is not None
            occasions_ours = m["purchases_treated"] + m["purchases_holdout"] - m["conversation_purchases"]
            assert outcome.arm_market.purchases[0] == occasions_ours, arm
            seen += m[exercised]
    assert seen > 0, f"the scenario must exercise {exercised}"
