"""The learning policies learn what the model rewards (statistical checks, fixed seeds).

Each claim is a paired difference against a baseline arm over replications (common random numbers), read
from ``summary["differences_vs_baseline"]``: a claim holds when the 95% CI of the difference excludes 0.
Sizes are chosen so the true effects are several standard errors away from 0, not so that the tests pass
by luck; a failure here means the model or a policy changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import masssim
from conftest import small_scenario
from masssim.estimation.intervals import paired_difference

pytestmark = pytest.mark.slow
# One process: results are the same for any number of workers, and with several worker processes on two
# cores OpenBLAS's own threads oversubscribe the CPU (linucb's small matrix products ran 13x slower).
WORKERS = 1


def differences(seed: int, **scenario: Any) -> dict[str, dict[str, Any]]:
    """Paired differences of every arm against the first one."""
    result = masssim.run(small_scenario(**scenario), seed=seed, workers=WORKERS)
    return result.summary["differences_vs_baseline"]


def test_bandits_beat_random_when_creatives_differ_in_quality() -> None:
    diff = differences(
        31,
        replications=8,
        horizon_days=14,
        population={"customers": 60_000},
        creatives={"count": 6, "quality_sd": 0.3},
        arms=[
            {"name": "random", "policy": "random"},
            {"name": "epsilon_greedy", "policy": "epsilon_greedy"},
            {"name": "thompson", "policy": "thompson"},
        ],
    )
    assert diff["epsilon_greedy"]["clicks"]["ci_low"] > 0
    assert diff["thompson"]["clicks"]["ci_low"] > 0


def test_linucb_beats_a_non_contextual_bandit_when_observables_carry_taste() -> None:
    diff = differences(
        32,
        replications=6,
        horizon_days=14,
        population={"customers": 30_000, "persona_signal": 0.8},
        response={"affinity_click_beta": 1.5},
        arms=[{"name": "thompson", "policy": "thompson"}, {"name": "linucb", "policy": "linucb"}],
    )
    assert diff["linucb"]["clicks"]["ci_low"] > 0


@pytest.mark.parametrize("declared_share", [0.5, 0.0])
def test_individual_needs_declared_taste(declared_share: float) -> None:
    diff = differences(
        33,
        replications=6,
        horizon_days=14,
        population={"customers": 30_000, "declared_taste_share": declared_share},
        arms=[{"name": "broadcast", "policy": "broadcast"}, {"name": "individual", "policy": "individual"}],
    )
    clicks = diff["individual"]["clicks"]
    if declared_share > 0:
        assert clicks["ci_low"] > 0  # 1:1 from declared taste beats one creative for all
    else:
        assert clicks["ci_high"] > 0  # without declared data: no worse than broadcast beyond noise


def test_uplift_beats_response_where_loyal_customers_click_but_gain_little() -> None:
    """A polarised market (small Dirichlet S): most customers are loyal to some brand. Loyal customers of
    ours click a lot (warmth) and buy anyway, so contact gains little from them; a click's effect is all
    adstock (no direct-response purchase). Eight weeks of purchase history before the first wave let both
    policies split personas into never / once / repeatedly bought ours. ``response`` goes for the segments
    that buy most, ``uplift`` for those where contact adds most against its control cell."""
    result = masssim.run(
        small_scenario(
            replications=8,
            horizon_days=112,
            population={"customers": 30_000},
            market={"dirichlet_s": 0.1, "category_purchases_per_year": 24.0},
            response={"direct_purchase_per_click": 0.0, "warmth_click_delta": 1.0},
            schedule={"first_wave_day": 56},
            arms=[{"name": "response", "policy": "response"}, {"name": "uplift", "policy": "uplift"}],
        ),
        seed=34,
        workers=WORKERS,
    )
    diff = result.summary["differences_vs_baseline"]["uplift"]
    assert diff["incremental_purchases_true"]["ci_low"] > 0
    assert diff["click_rate"]["ci_high"] < 0  # response chases the keen clickers...
    per_contact = {
        arm: np.array(result.values(arm, "incremental_purchases_true")) / np.array(result.values(arm, "sends"))
        for arm in ("response", "uplift")
    }
    gain = paired_difference(per_contact["uplift"], per_contact["response"])
    assert gain["ci_low"] is not None and gain["ci_low"] > 0  # ...uplift gets more true purchases per contact
