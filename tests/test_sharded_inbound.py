"""``[inbound]`` in a sharded replication: the desk on the coordinator, the customers on the shards, and
the same bytes as one process (docs/model.md §16.8)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import masssim
from masssim.engine.sharded import in_process, sharding_problem, simulate_sharded_replication
from masssim.engine.sharded_inbound import CoordinatorConversations, declared_at_start
from masssim.engine.sim import build_world, simulate_replication
from masssim.model.streams import replication_sequence, root_sequence
from test_sharded_engine import CHUNK, _digest, _scenario


def inbound_scenario(**overrides: Any) -> masssim.Scenario:
    """Replies on messaging (so the desk gets replies from every shard), customers who declared their taste
    before the run, and a desk too small for its load, so complaints go unanswered and customers leave:
    every way a conversation changes a customer has work to do."""
    data: dict[str, Any] = {
        "horizon_days": 8,
        "population": {"customers": 6_000, "declared_taste_share": 0.05},
        "schedule": {"channel": "messaging", "wave_every_days": 2},
        "channels": {"messaging": {"reply_rate": 0.3}},
        "arms": [
            {"name": "broadcast", "policy": "broadcast"},
            {"name": "segments", "policy": "segments", "segments": 3, "channel": "sms"},
        ],
        "inbound": {
            "training_messages": 2_000,
            "mentions": {"sources": [{"name": "social", "base_rate_per_hour": 10.0}]},
            "outcomes": {"churn_after_unanswered_complaint": 1.0, "conversion_max": 0.8, "declare_share": 0.8},
            "pools": [
                {"name": "bot", "kind": "bot", "agents": 1, "handle_time_median_minutes": 2.0},
                {"name": "human", "kind": "human", "agents": 2, "handle_time_median_minutes": 20.0},
            ],
        },
    }
    data.update(overrides)
    return _scenario(**data)


def pools_digest(outcomes: dict[str, Any]) -> str:
    return _digest(outcomes) + repr(sorted((name, sorted(o.pools.items())) for name, o in outcomes.items()))


def test_inbound_in_any_number_of_shards_gives_the_bytes_of_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = inbound_scenario()
    assert sharding_problem(scenario) is None
    seq = replication_sequence(root_sequence(11), 0)
    one_process = simulate_replication(scenario, seq, chunk_size=CHUNK)
    metrics = one_process["broadcast"].metrics
    # The scenario exercises what crosses the wire: replies to the desk, conversation purchases, churn
    # and declarations back to the customers, and declarations made before the run.
    assert metrics["replies"] > 50
    assert metrics["conversions_from_replies"] > 0  # pull-forward coins drawn on the shards
    assert metrics["churned_customers"] > 0
    assert metrics["customers_with_declared_taste"] > metrics["declarations_captured"] > 0
    reference = pools_digest(one_process)
    for shards in (1, 3, 5):
        outcomes = simulate_sharded_replication(scenario, seq, in_process, shards, chunk_size=CHUNK)
        assert pools_digest(outcomes) == reference, f"{shards} shards"
    # Not blind: shards that never hear what the conversations did (churn, purchases) give other bytes.
    monkeypatch.setattr(CoordinatorConversations, "take_outcomes", lambda self: {})
    outcomes = simulate_sharded_replication(scenario, seq, in_process, 3, chunk_size=CHUNK)
    assert pools_digest(outcomes) != reference


def test_a_shard_finds_the_declarations_of_one_process() -> None:
    scenario = inbound_scenario()
    seq = replication_sequence(root_sequence(11), 0)
    world = build_world(scenario, seq, chunk_size=CHUNK)
    assert world.declared_row is not None and world.layout is not None
    rows = range(2 * CHUNK, 6_000)  # a shard's customers: chunks 2 to the last
    found = declared_at_start(scenario, seq, world.layout.shifted(rows.start), range(2, world.layout.count), rows)
    np.testing.assert_array_equal(found, world.declared_row[rows.start :] >= 0)
    assert found.any()


def test_run_with_inbound_and_shards_writes_the_same_summary() -> None:
    scenario = inbound_scenario(replications=2)
    one_process = masssim.run(scenario, seed=5).summary
    assert masssim.run(scenario, seed=5, shards=2).summary == one_process
    assert masssim.run(scenario, seed=5, shards=2, workers=2).summary == one_process  # the shards on 2 threads
