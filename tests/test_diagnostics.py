"""Fanatic diagnostics: measured by the simulator (it knows taste), never changing what happens."""

from __future__ import annotations

import masssim
from conftest import small_scenario


def fanatic_scenario(share: float) -> masssim.Scenario:
    return small_scenario(
        replications=4,
        horizon_days=7,
        population={"customers": 20_000, "taste_tail_dof": 3.0, "persona_signal": 0.4, "crm_scores": 2},
        creatives={"count": 10},
        diagnostics={"fanatic_top_share": share},
        arms=[{"name": "personas", "policy": "segments", "segments": 10}, {"name": "oracle", "policy": "oracle"}],
    )


def test_diagnostics_do_not_change_outcomes() -> None:
    on = masssim.run(fanatic_scenario(0.02), seed=1).summary["arms"]
    off = masssim.run(fanatic_scenario(0.0), seed=1).summary["arms"]
    for arm in ("personas", "oracle"):
        for metric in ("sends", "clicks", "purchases_treated", "incremental_purchases_true", "cost_total"):
            assert on[arm][metric]["values"] == off[arm][metric]["values"], (arm, metric)
    assert off["oracle"]["fanatics"]["mean"] == 0
    assert on["oracle"]["fanatics"]["mean"] == on["personas"]["fanatics"]["mean"] > 0


def test_personas_rarely_fit_fanatics_the_oracle_does() -> None:
    summary = masssim.run(fanatic_scenario(0.02), seed=2).summary
    diff = summary["differences_vs_baseline"]["oracle"]["fanatic_match_rate"]
    assert diff["ci_low"] > 0.5  # the oracle matches fanatics far more often, paired CI
    personas = summary["arms"]["personas"]["fanatic_match_rate"]
    assert personas["ci_high"] < 0.35  # personas do little better than picking one of 10 creatives at random
