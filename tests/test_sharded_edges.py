"""The parts of the model beyond the plain waves, sharded: bespoke creatives, the fanatics diagnostic, paid
channels and channel orders (docs/model.md §16.2, §16.5). Each gives one process's bytes in 2 and 5 shards
of small chunks (so shards span several chunks), with response blocks of 700 sends (so blocks straddle
shards); a mutation of the protocol gives another digest (the check is not blind)."""

from __future__ import annotations

import numpy as np
import pytest

import masssim
from conftest import small_scenario
from masssim.engine.sharded import in_process, sharding_problem, simulate_sharded_replication
from masssim.engine.sim import simulate_replication
from masssim.model.streams import replication_sequence, root_sequence
from test_sharded_engine import CHUNK, _digest

SEQ = replication_sequence(root_sequence(11), 0)


def _scenario(arms: list[dict[str, object]], **overrides: object) -> masssim.Scenario:
    data: dict[str, object] = {
        "horizon_days": 10,
        "population": {"customers": 6_000},
        "creatives": {"production_cost": 100.0},
        "schedule": {"wave_every_days": 2},
        "arms": arms,
    }
    data.update(overrides)
    return small_scenario(**data)


def _sharded_digests(scenario: masssim.Scenario, shards: tuple[int, ...] = (2, 5)) -> list[str]:
    return [_digest(simulate_sharded_replication(scenario, SEQ, in_process, n, chunk_size=CHUNK)) for n in shards]


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    from masssim.engine.sharded import InProcessShards

    calls: dict[str, int] = {}
    call = InProcessShards.call

    def counted(self: InProcessShards, method: str, args: dict[int, tuple[object, ...]]) -> list[object]:
        calls[method] = calls.get(method, 0) + len(args)
        return call(self, method, args)

    monkeypatch.setattr(InProcessShards, "call", counted)
    return calls


BESPOKE_ARMS: list[dict[str, object]] = [
    # Planned on the shards: generated after the test wave, focused on the best personas afterwards.
    {"name": "bespoke", "policy": "segments", "segments": 4, "bespoke": True},
    {"name": "bespoke_focused", "policy": "segments", "segments": 5, "bespoke": True, "audience_share": 0.5},
    # A paid channel and a channel order.
    {"name": "bespoke_paid", "policy": "segments", "segments": 3, "bespoke": True, "channel": "paid_social"},
    {"name": "bespoke_mix", "policy": "segments", "segments": 3, "bespoke": True, "channels": ["sms", "email"]},
]


def test_bespoke_creatives_sharded_give_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bespoke creatives are generated on the coordinator and their directions sent to the shards (a few
    float32 per creative), which add them with the same ids: the same bytes as one process."""
    from masssim.engine import outbound

    monkeypatch.setattr(outbound, "RESPONSE_CHUNK", 700)
    # The money runs out in the last waves of two arms; paid audiences of 100 are big enough.
    scenario = _scenario(BESPOKE_ARMS, budget_total=1_015.0, channels={"paid_social": {"min_audience": 100}})
    assert sharding_problem(scenario) is None
    one = simulate_replication(scenario, SEQ, chunk_size=CHUNK)
    for arm in BESPOKE_ARMS:  # bespoke creatives were made and sent (a shard without them would fail), and clicked
        metrics = one[str(arm["name"])].metrics
        assert metrics["creatives_used"] > int(arm["segments"]) and metrics["clicks"] > 0, arm
    assert one["bespoke"].metrics["blocked_budget"] > 0 and one["bespoke_paid"].metrics["blocked_budget"] > 0
    reference = _digest(one)
    calls = _count_calls(monkeypatch)
    assert _sharded_digests(scenario) == [reference, reference]
    assert calls["add_creatives"] == 4 * (2 + 5)  # once per arm and shard

    # Not blind: the shards given the generated directions in another order, or a coordinator that judges
    # the winners again every wave (dropping the bespoke creatives), give other bytes.
    from masssim.engine.sharded import ShardWorker
    from masssim.policies.targeting import SegmentsPolicy

    with monkeypatch.context() as m:
        add = ShardWorker.add_creatives
        m.setattr(ShardWorker, "add_creatives", lambda self, d: add(self, np.ascontiguousarray(d[::-1])))
        assert _sharded_digests(scenario, (2,)) != [reference]
    with monkeypatch.context() as m:
        m.setattr(SegmentsPolicy, "_roll_out", SegmentsPolicy._pick_winners)
        assert _sharded_digests(scenario, (2,)) != [reference]


def test_bespoke_creatives_that_read_declared_taste_are_refused() -> None:
    """A bespoke arm aims at declared taste when there is some: a sharded run does not gather it yet."""
    scenario = _scenario(BESPOKE_ARMS[:1], population={"customers": 6_000, "declared_taste_share": 0.1})
    assert sharding_problem(scenario) == (
        "arms[0].bespoke: bespoke creatives (arm 'bespoke') aim at declared taste, which a sharded run does not "
        "gather yet (set population.declared_taste_share = 0, no [inbound], or run unsharded)"
    )


def test_the_fanatics_diagnostic_sharded_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shards' taste norms gathered (4 bytes a customer) give one process's quantile, and the fanatics'
    taste rows its best affinities: the same counts of fanatics, their sends, matches and clicks, on arms
    planned on the shards and on the coordinator."""
    from masssim.engine import outbound, sharded_fanatics

    monkeypatch.setattr(outbound, "RESPONSE_CHUNK", 700)
    arms = [
        {"name": "random", "policy": "random", "audience_share": 0.5},
        {"name": "segments", "policy": "segments", "segments": 4},
        {"name": "paid", "policy": "segments", "segments": 3, "channel": "paid_social"},
    ]
    scenario = _scenario(arms, diagnostics={"fanatic_top_share": 0.03})
    assert sharding_problem(scenario) is None
    one = simulate_replication(scenario, SEQ, chunk_size=CHUNK)
    for arm in one.values():  # the diagnostic counted something on every arm
        assert arm.metrics["fanatics"] > 0 and arm.metrics["fanatic_sends"] > 0
    assert sum(arm.metrics["fanatic_sends_matched"] for arm in one.values()) > 0
    reference = _digest(one)
    assert _sharded_digests(scenario) == [reference, reference]
    # Not blind: the quantile taken over the treated customers only gives other fanatics and other bytes.
    monkeypatch.setattr(
        sharded_fanatics,
        "fanatic_ids",
        lambda norm, treated, top: np.flatnonzero((norm >= np.quantile(norm[treated], 1.0 - top)) & treated),
    )
    assert _sharded_digests(scenario, (2,)) != [reference]


PAID_ARMS: list[dict[str, object]] = [
    {"name": "paid_random", "policy": "random", "audience_share": 0.7, "channel": "paid_social"},
    {"name": "paid_focused", "policy": "segments", "segments": 4, "audience_share": 0.6, "channel": "paid_social"},
    {"name": "paid_then_email", "policy": "broadcast", "channels": ["paid_social", "email"]},
    {"name": "sms_then_email", "policy": "segments", "segments": 3, "channels": ["sms", "email"]},
]


def _paid_scenario(arms: list[dict[str, object]] = PAID_ARMS, **overrides: object) -> masssim.Scenario:
    """Paid and ordered waves with every rule at work: two regions on one clock, so sends deferred past the
    paid channel's quiet hours tie across groups; queues of 300 an hour that run into quiet hours (paid, from
    19:00) and fill sms's room, which passes rows on; small ad sets refused; a budget that runs out."""
    same_clock = [
        {"name": "a", "utc_offset_hours": 1.0, "share": 0.5},
        {"name": "b", "utc_offset_hours": 1.0, "share": 0.3},
        {"name": "c", "utc_offset_hours": -5.0, "share": 0.2},
    ]
    quiet = {"capacity_per_hour": 300.0, "quiet_hours_start": 21, "quiet_hours_end": 8, "min_audience": 100}
    return _scenario(
        arms,
        budget_total=1_300.0,
        population={"customers": 6_000, "regions": same_clock},
        channels={"paid_social": quiet, "sms": {"capacity_per_hour": 300.0}},
        schedule={"wave_every_days": 2, "send_hour": 19.0},
        **overrides,
    )


def test_paid_channels_and_channel_orders_planned_on_the_shards_give_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Paid waves and channel orders plan on the shards: the ad-set keys gathered in plan order give one
    process's sizes, prices and budget cut-off; each paid block's prices are summed in one process's (plan)
    order; each shard passes the rows a channel does not take on to the next. No arm gathers the view."""
    from masssim.engine import outbound, shard_channels
    from masssim.engine.shard_channels import ChannelShardWave

    monkeypatch.setattr(outbound, "RESPONSE_CHUNK", 700)
    scenario = _paid_scenario()
    one = simulate_replication(scenario, SEQ, chunk_size=CHUNK)
    m = {name: arm.metrics for name, arm in one.items()}
    assert m["paid_random"]["blocked_budget"] > 0 and m["paid_then_email"]["blocked_budget"] > 0
    assert m["paid_focused"]["refused_small_audience"] > 0 and m["paid_random"]["deferred_quiet_hours"] > 0
    assert m["paid_then_email"]["channel_fallbacks"] > 0 and m["sms_then_email"]["channel_fallbacks"] > 0
    assert m["paid_then_email"]["cost_email"] > 0 and m["sms_then_email"]["cost_email"] > 0
    reference = _digest(one)
    calls = _count_calls(monkeypatch)
    assert _sharded_digests(scenario) == [reference, reference]
    assert "dynamic_view" not in calls and "respond" not in calls and calls["rule_offer"] > 0
    assert calls.get("rule_cut", 0) >= 1  # a cut-off (room or budget) fell inside a shard

    # Not blind: a paid block's money summed in another order than one process's (the shards' parts joined
    # last shard first), or the rows a channel refuses dropped instead of passed on: other bytes.
    join = shard_channels.block_rows
    with monkeypatch.context() as patch:
        patch.setattr(shard_channels, "block_rows", lambda pieces: join(pieces[::-1]))
        assert _sharded_digests(scenario, (2,)) != [reference]
    with monkeypatch.context() as patch:
        send = ChannelShardWave.send_channel
        patch.setattr(
            ChannelShardWave, "send_channel", lambda self, c, keep, passing, *a: send(self, c, keep, False, *a)
        )
        assert _sharded_digests(scenario, (2,)) != [reference]
