"""The inbound pipeline inside `masssim run`: off by default, on with an [inbound] table."""

from __future__ import annotations

from typing import Any

import pytest

import masssim
from masssim.config.errors import ScenarioError
from masssim.model.metrics import INBOUND_METRICS
from masssim.reporting.results import dumps_json


def base(**extra: Any) -> dict[str, Any]:
    return {
        "name": "inbound_run",
        "seed": 7,
        "replications": 2,
        "horizon_days": 3,
        "population": {"customers": 2_000},
        "arms": [
            {"name": "broadcast", "policy": "broadcast"},
            {"name": "personas", "policy": "segments", "segments": 2},
        ],
        **extra,
    }


def with_inbound(**inbound: Any) -> dict[str, Any]:
    return base(
        inbound={
            "mentions": {
                "sources": [
                    {"name": "social", "base_rate_per_hour": 20.0},
                    {"name": "email", "base_rate_per_hour": 2.0, "diurnal": "business_hours"},
                ]
            },
            **inbound,
        }
    )


def values(result: masssim.RunResult, arm: str, metric: str) -> list[float]:
    return list(result.summary["arms"][arm][metric]["values"])


def test_inbound_metrics_are_set_and_consistent() -> None:
    # Without replies the arms' desks see the same stream with the same draws.
    result = masssim.run(masssim.scenario_from_dict(with_inbound(replies={"enabled": False})))
    for arm in ("broadcast", "personas"):
        volume = values(result, arm, "inbound_volume")
        needles = values(result, arm, "inbound_needles")
        assert all(v > 0 for v in volume) and all(n > 0 for n in needles)
        assert all(n <= v for n, v in zip(needles, volume, strict=True))
        for metric in ("sla_attainment", "abandonment_share", "classifier_precision", "classifier_recall"):
            assert all(0.0 <= x <= 1.0 for x in values(result, arm, metric)), metric
        assert all(m <= n for m, n in zip(values(result, arm, "missed_needles"), needles, strict=True))
        assert all(f <= v for f, v in zip(values(result, arm, "false_alarms"), volume, strict=True))
        assert all(x > 0 for x in values(result, arm, "classification_delay_p50_s"))
        p50, p99 = values(result, arm, "response_time_p50_s"), values(result, arm, "response_time_p99_s")
        assert all(a <= b for a, b in zip(p50, p99, strict=True))
    # Without replies, inbound does not depend on the targeting strategy: the arms share it (common random
    # numbers: the same organic stream, classifier and draws).
    for metric in INBOUND_METRICS:
        assert values(result, "broadcast", metric) == values(result, "personas", metric)
    # Replications differ (each has its own inbound stream).
    assert len(set(values(result, "broadcast", "inbound_volume"))) == 2


NEUTRAL_OUTCOMES = {
    "conversion_max": 0.0,
    "churn_after_unanswered_complaint": 0.0,
    "declare_share": 0.0,
}
FREE_POOLS = [
    {"name": "bot", "kind": "bot", "agents": 20, "handle_time_median_minutes": 0.5},
    {"name": "human", "kind": "human", "agents": 10, "handle_time_median_minutes": 6.0},
]


def test_without_inbound_metrics_are_zero_and_neutral_inbound_leaves_outbound_unchanged() -> None:
    """Inbound acts on outbound only through its outcomes and its costs: with both switched off, every
    outbound figure is identical to a run without inbound."""
    off = masssim.run(masssim.scenario_from_dict(base()))
    neutral = {"outcomes": NEUTRAL_OUTCOMES, "pools": FREE_POOLS, "core": {"cost_per_1000": 0.0}}
    on = masssim.run(masssim.scenario_from_dict(with_inbound(**neutral)))
    for arm in ("broadcast", "personas"):
        for metric in INBOUND_METRICS:
            assert values(off, arm, metric) == [0.0, 0.0], metric
        for metric in off.summary["arms"][arm]:
            if metric not in INBOUND_METRICS:
                assert values(off, arm, metric) == values(on, arm, metric), metric


def test_same_seed_same_summary_with_inbound() -> None:
    scenario = masssim.scenario_from_dict(with_inbound(response_policy="bot_first"))
    one = dumps_json(masssim.run(scenario, seed=11).summary)
    again = dumps_json(masssim.run(scenario, seed=11).summary)
    other = dumps_json(masssim.run(scenario, seed=12).summary)
    assert one == again and one != other


def test_bot_first_escalates() -> None:
    result = masssim.run(masssim.scenario_from_dict(with_inbound(response_policy="bot_first")))
    assert all(x > 0 for x in values(result, "broadcast", "escalations"))


@pytest.mark.parametrize(
    ("inbound", "field", "words"),
    [
        ({"core": {"batch_size": 0}}, "inbound.core.batch_size", "1, 100000"),
        ({"classifier": "hashd"}, "inbound.classifier", "did you mean 'hashed'"),
        ({"classifier": "hashed", "classifier_params": {"bitz": 12}}, "inbound.classifier_params.bitz", "did you mean"),
        ({"response_policy": "treshold"}, "inbound.response_policy", "did you mean 'threshold'"),
        ({"response_params": {"min_priority": 2.0}}, "inbound.response_params.min_priority", "less than"),
        (
            {"pools": [{"name": "solo", "agents": 1, "handle_time_median_minutes": 5.0}]},
            "inbound.response_params.pool",
            "pools",
        ),
        ({"mentions": {"needle_share": 2.0}}, "inbound.mentions.needle_share", "[0, 1]"),
        ({"mentions": {"language_shares": {"xx": 1.0}}}, "inbound.mentions.language_shares", "allowed"),
        ({"core": {"batch_sise": 4}}, "inbound.core.batch_sise", "did you mean 'batch_size'"),
        ({"sla_minutes": -1.0}, "inbound.sla_minutes", ""),
        (
            {
                "pools": [
                    {"name": "bot", "kind": "bot", "agents": 1, "handle_time_median_minutes": 1.0},
                    {
                        "name": "human",
                        "agents": 1,
                        "handle_time_median_minutes": 5.0,
                        "handle_time_median_minutes_by_intent": {"complain": 9.0},
                    },
                ]
            },
            "inbound.pools[1].handle_time_median_minutes_by_intent.complain",
            "allowed: complaint",
        ),
        ({"outcomes": {"declare_share": 1.5}}, "inbound.outcomes.declare_share", ""),
        ({"replies": {"intent_shares": {"praise": -1.0}}}, "inbound.replies.intent_shares.praise", "non-negative"),
    ],
)
def test_bad_inbound_fields_are_named(inbound: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        masssim.scenario_from_dict(base(inbound=inbound))
    assert info.value.field == field
    assert words in str(info.value)
