"""Lesson claims about the market section (masssim.reporting.lesson_market) and the duplication-of-purchase lesson."""

from __future__ import annotations

from typing import Any

import pytest

import masssim
from masssim.config.schema import MarketClaim
from masssim.lessons.gallery import GALLERY, markdown, problems
from masssim.reporting.lesson_market import evaluate_market, figure_problem, figure_values
from masssim.reporting.lesson_reading import evaluate, read_lesson

BRANDS = ["ours", "big", "small"]


def _section(dup_big: list[float], dup_small: list[float], pen_big: list[float], pen_small: list[float]) -> dict:
    """A market section with just the figures the claims below read."""

    def stat(values: list[float]) -> dict[str, Any]:
        return {"values": values}

    return {
        "brands": {
            "ours": {
                "bought_a_rival": stat([0.8, 0.82, 0.79]),
                "duplication": {"big": stat(dup_big), "small": stat(dup_small)},
                "penetration": stat([0.5, 0.5, 0.5]),
            },
            "big": {"penetration": stat(pen_big), "duplication": {}},
            "small": {"penetration": stat(pen_small), "duplication": {}},
        }
    }


def claim(**fields: Any) -> MarketClaim:
    return MarketClaim.model_validate(fields)


def test_figures_are_named_kind_brand_other() -> None:
    assert figure_problem("duplication.ours.big", BRANDS) is None
    assert figure_problem("penetration.small", BRANDS) is None
    assert "unknown market figure" in (figure_problem("loyalty.ours", BRANDS) or "")
    assert "KIND.BRAND.OTHER" in (figure_problem("duplication.ours", BRANDS) or "")
    assert "KIND.BRAND" in (figure_problem("penetration.ours.big", BRANDS) or "")
    assert "unknown brand 'rival'" in (figure_problem("duplication.ours.rival", BRANDS) or "")
    assert "two different" in (figure_problem("duplication.ours.ours", BRANDS) or "")


def test_the_coefficient_is_duplication_over_the_other_brands_penetration() -> None:
    market = _section([0.6, 0.5, 0.4], [0.1, 0.1, 0.1], [0.5, 0.4, 0.5], [0.1, 0.2, 0.1])
    assert figure_values(market, "duplication_coefficient.ours.big") == pytest.approx([1.2, 1.25, 0.8])
    assert figure_values(market, "duplication.ours.big") == [0.6, 0.5, 0.4]
    assert figure_values(market, "duplication.big.ours") is None  # not in this section


def test_sign_and_within_claims_hold_only_with_a_clear_interval() -> None:
    market = _section([0.60, 0.62, 0.61], [0.12, 0.11, 0.13], [0.55, 0.56, 0.57], [0.11, 0.10, 0.12])
    claims = [
        claim(figure="bought_a_rival.ours", versus=0.5, sign="positive"),  # 0.80 - 0.5: held
        claim(figure="bought_a_rival.ours", versus=0.5, sign="negative"),  # wrong side
        claim(figure="duplication.ours.big", versus="duplication.ours.small", sign="positive"),
        claim(figure="duplication_coefficient.ours.big", versus="duplication_coefficient.ours.small", within=0.05),
        claim(figure="duplication_coefficient.ours.big", versus="duplication_coefficient.ours.small", within=0.001),
    ]
    results = evaluate_market(claims, market, first_index=3)
    assert [r.held for r in results] == [True, False, True, True, False]
    assert [r.index for r in results] == [3, 4, 5, 6, 7]
    assert "did NOT hold" in results[1].sentence() and "the sign is the other one" in results[1].sentence()
    assert "beyond the margin" in results[4].sentence()
    assert "points" in results[0].difference_text()  # a share minus a number reads in percentage points
    # Coefficients 1.091, 1.107, 1.070 vs 1.091, 1.100, 1.083: differences 0, +0.007, -0.013; CI inside 0.05.
    assert results[3].held
    one = evaluate_market(claims[:1], _one_replication(), first_index=1)[0]
    assert not one.held and "one replication" in one.sentence()
    missing = evaluate_market(claims[:1], None)[0]
    assert not missing.held and "not read" in missing.sentence()


def _one_replication() -> dict:
    market = _section([0.6], [0.1], [0.5], [0.1])
    market["brands"]["ours"]["bought_a_rival"] = {"values": [0.8]}
    return market


def test_a_claim_gives_a_sign_or_a_margin() -> None:
    with pytest.raises(masssim.ScenarioError, match="exactly one of sign"):
        masssim.scenario_from_dict(
            {
                "name": "s",
                "lesson": {
                    "purpose": "p",
                    "market_claims": [{"figure": "penetration.ours", "versus": 0.1, "sign": "positive", "within": 1}],
                },
            }
        )


def _lesson_scenario(lesson: dict[str, Any]) -> masssim.Scenario:
    return masssim.scenario_from_dict({"name": "s", "lesson": {"purpose": "p", **lesson}})


def test_market_claims_are_checked_against_the_brands_and_need_a_run() -> None:
    bad_brand = {"market_claims": [{"figure": "duplication.ours.rival_z", "versus": 0.5, "sign": "positive"}]}
    with pytest.raises(masssim.ScenarioError) as info:
        problems(_lesson_scenario(bad_brand), "s.toml")
    assert info.value.field == "lesson.market_claims[0].figure" and "rival_z" in str(info.value)
    with pytest.raises(masssim.ScenarioError, match="market claims read a run's market section"):
        _lesson_scenario(
            {
                "command": "compare",
                "variants": ["b:market.dirichlet_s=2"],
                "market_claims": [{"figure": "penetration.ours", "versus": 0.1, "sign": "positive"}],
            }
        )
    with pytest.raises(masssim.ScenarioError, match="headline"):
        _lesson_scenario({})  # neither a headline nor a market claim: nothing to read


def test_the_duplication_lesson_holds_when_run() -> None:
    """The gallery lesson as shipped (its own seed, replications and customers): every claim holds."""
    scenario = masssim.load_scenario(GALLERY / "duplication_of_purchase.toml")
    assert scenario.lesson is not None
    problems(scenario, "duplication_of_purchase.toml")
    summary = masssim.run(scenario).summary
    source_market = summary["market"]
    from masssim.reporting.lesson_reading import Source

    results = evaluate(scenario.lesson, Source(arms=summary["arms"], market=source_market))
    assert len(results) == len(scenario.lesson.market_claims)
    assert all(r.held for r in results), [r.sentence() for r in results]
    lines = read_lesson(scenario.lesson, Source(arms=summary["arms"], market=source_market))
    assert lines[0].startswith("Lesson: ") and all("held" in line for line in lines[1:])
    # The rival buying the claims talk about is what the Dirichlet predicts for this market.
    ours = source_market["brands"]["ours"]
    assert ours["bought_a_rival"]["ci_low"] <= ours["bought_a_rival"]["predicted"] <= ours["bought_a_rival"]["ci_high"]


def test_markdown_lists_market_claims() -> None:
    from masssim.lessons.gallery import LessonRun

    market = _section([0.60, 0.62, 0.61], [0.12, 0.11, 0.13], [0.55, 0.56, 0.57], [0.11, 0.10, 0.12])
    results = evaluate_market([claim(figure="bought_a_rival.ours", versus=0.5, sign="positive")], market)
    text = markdown([LessonRun("m", "masssim run m --workers 2", "purpose", list(results), 1.0)])
    assert "| 1 | market: (share of the buyers of ours who bought another brand) minus (50.0%) above 0 |" in text
