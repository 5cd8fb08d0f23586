"""The engine's results do not depend on how customers are grouped into shards (docs/model.md §16.4)."""

from __future__ import annotations

import functools
import hashlib
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import masssim
from conftest import small_scenario
from masssim.engine.chunks import ChunkDraws, ChunkLayout, Draw
from masssim.engine.sharded import (
    in_process,
    shard_ranges,
    sharding_problem,
    simulate_sharded_replication,
)
from masssim.engine.sim import ArmOutcome, ArmSimulation, ShardingUnsupported, build_world, simulate_replication
from masssim.model.streams import replication_sequence, root_sequence
from masssim.reporting.results import dumps_json

# Small chunks, so that a unit-test population has a dozen of them to group into shards.
CHUNK = 512


def _digest(outcomes: dict[str, ArmOutcome]) -> str:
    """sha256 of every arm's metrics (as the summary writes them), daily series, purchase histograms and
    market tallies (raw bytes)."""
    h = hashlib.sha256()
    for name in sorted(outcomes):
        outcome = outcomes[name]
        h.update(dumps_json({name: outcome.metrics}).encode())
        h.update(np.ascontiguousarray(outcome.series).tobytes())
        for histogram in outcome.purchase_histograms or ():
            h.update(histogram.tobytes())
        if outcome.market is not None:  # every brand's buying (the first arm)
            for value in vars(outcome.market).values():
                h.update(np.asarray(value).tobytes())
        if outcome.arm_market is not None:  # every brand's buying under this arm's marketing
            for value in vars(outcome.arm_market).values():
                h.update(np.asarray(value).tobytes())
    return h.hexdigest()


def _scenario(**overrides: object) -> masssim.Scenario:
    """Every easy policy, two channels with capacity, quiet hours and a budget that runs out: the global
    rules of a wave (departure order, budget) and the per-customer draws all have work to do."""
    data: dict[str, object] = {
        "horizon_days": 10,
        "population": {"customers": 6_000},
        "budget_total": 615.0,  # runs out in the last waves of sms and segments
        "creatives": {"production_cost": 100.0},
        "schedule": {"wave_every_days": 2},
        "arms": [
            {"name": "none", "policy": "none"},
            {"name": "random", "policy": "random", "audience_share": 0.5},
            {"name": "broadcast_sms", "policy": "broadcast", "channel": "sms"},
            {"name": "segments", "policy": "segments", "segments": 4},
            # A channel order: rows sms cannot take this wave pass to email (docs/model.md 4.11).
            {"name": "mix", "policy": "broadcast", "channels": ["sms", "email"]},
        ],
    }
    data.update(overrides)
    return small_scenario(**data)


def _run(scenario: masssim.Scenario, shards: int, chunk_size: int = CHUNK) -> dict[str, ArmOutcome]:
    return simulate_replication(
        scenario, replication_sequence(root_sequence(11), 0), shards=shards, chunk_size=chunk_size
    )


def test_chunk_draws_do_not_depend_on_call_sizes() -> None:
    layout = ChunkLayout(5_000, 256)
    seq = np.random.SeedSequence(3)
    customers = np.random.default_rng(0).permutation(5_000)[:3_000]
    whole = ChunkDraws(seq, layout).random(customers, Draw.SEND, np.float32)
    pieces = ChunkDraws(seq, layout)
    cuts = [0, 1, 700, 701, 2_999, 3_000]
    parts = [pieces.random(customers[a:b], Draw.SEND, np.float32) for a, b in itertools.pairwise(cuts)]
    assert np.array_equal(whole, np.concatenate(parts))
    # A customer's draw does not depend on which other chunks are drawn with it.
    mine = customers[layout.of(customers) == 3]
    assert np.array_equal(ChunkDraws(seq, layout).random(mine, Draw.SEND, np.float32), whole[layout.of(customers) == 3])
    # Kinds are independent streams.
    assert not np.array_equal(whole, ChunkDraws(seq, layout).random(customers, Draw.UNSUBSCRIBE, np.float32))


def test_same_replication_in_any_number_of_shards() -> None:
    scenario = _scenario()
    one = _run(scenario, 1)
    # The run did something worth comparing: sends on both channels, the budget ran out, clicks, purchases.
    assert one["random"].metrics["sends"] > 0 and one["broadcast_sms"].metrics["sends"] > 0
    assert one["broadcast_sms"].metrics["blocked_budget"] > 0 and one["random"].metrics["blocked_budget"] == 0
    assert one["segments"].metrics["clicks"] > 0 and one["none"].metrics["sends"] == 0
    reference = _digest(one)
    for shards in (2, 3, 5, 40):  # 40 > the 12 chunks: some shards are empty
        assert _digest(_run(scenario, shards)) == reference, f"{shards} shards"
    # The digest is sensitive: another chunk size cuts the streams differently and changes the bytes.
    assert _digest(_run(scenario, 1, chunk_size=1_024)) != reference


def test_shards_split_the_work() -> None:
    scenario = _scenario()
    world = build_world(scenario, replication_sequence(root_sequence(11), 0), chunk_size=CHUNK)
    sim = ArmSimulation(scenario, world, 2, shards=3)
    assert [(s.lo, s.hi) for s in sim.shards] == [(0, 2_048), (2_048, 4_096), (4_096, 6_000)]
    sim.run()


def test_inbound_cannot_run_sharded_yet() -> None:
    scenario = small_scenario(inbound={})
    world = build_world(scenario, replication_sequence(root_sequence(1), 0), chunk_size=CHUNK)
    with pytest.raises(ShardingUnsupported, match="inbound"):
        ArmSimulation(scenario, world, 0, shards=2)


def test_a_range_of_customers_is_the_same_rows_of_the_whole_population(monkeypatch: pytest.MonkeyPatch) -> None:
    from masssim.model import population as population_module

    monkeypatch.setattr(population_module, "POPULATION_CHUNK", 1_000)  # ranges then cut chunks
    scenario = small_scenario(population={"customers": 4_500, "crm_scores": 2, "declared_taste_share": 0.0})
    seq = np.random.SeedSequence(9)

    def generate(customers: range | None) -> population_module.Population:
        return population_module.generate_population(
            scenario.population, scenario.market, scenario.channels.by_name(), seq, customers=customers
        )

    whole = generate(None)
    for rows in (range(1_000), range(1_500, 3_200), range(1_200, 1_700), range(3_999, 4_500), range(4_499, 4_500)):
        part = generate(rows)
        assert part.n == len(rows)
        for name in population_module.PER_CUSTOMER_ARRAYS:
            assert np.array_equal(getattr(part, name), getattr(whole, name)[rows.start : rows.stop]), (rows, name)
    with pytest.raises(ValueError, match="customers must be"):
        generate(range(4_000, 5_000))


def test_shards_with_their_own_customers_give_the_same_bytes() -> None:
    """Shards that build only their customers and talk to a coordinator (the layout a cluster uses)."""
    scenario = _scenario()
    seq = replication_sequence(root_sequence(11), 0)
    reference = _digest(simulate_replication(scenario, seq, chunk_size=CHUNK))
    for shards in (1, 2, 5):
        outcomes = simulate_sharded_replication(scenario, seq, in_process, shards, chunk_size=CHUNK)
        assert _digest(outcomes) == reference, f"{shards} shards"


def test_shards_on_threads_give_the_same_bytes_and_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    """``InProcessShards`` with threads (``masssim run --workers W --shards S`` on the local engine): a call
    goes to the shards at once, on the pool's threads, and the results are one process's bytes."""
    import threading

    from masssim.engine.sharded import ShardWorker

    scenario = _scenario()
    seq = replication_sequence(root_sequence(11), 0)
    reference = _digest(simulate_replication(scenario, seq, chunk_size=CHUNK))
    for shards, threads in ((2, 2), (5, 2), (3, 3)):
        outcomes = simulate_sharded_replication(
            scenario, seq, functools.partial(in_process, threads=threads), shards, chunk_size=CHUNK
        )
        assert _digest(outcomes) == reference, f"{shards} shards on {threads} threads"
    # Both shards' first call must be running at the same time to pass the barrier (one after the other, the
    # first would wait out the timeout and break it).
    barrier = threading.Barrier(2, timeout=30)
    static_view = ShardWorker.static_view

    def meet_then_answer(self: ShardWorker) -> Any:
        barrier.wait()
        return static_view(self)

    monkeypatch.setattr(ShardWorker, "static_view", meet_then_answer)
    outcomes = simulate_sharded_replication(
        scenario, seq, functools.partial(in_process, threads=2), 2, chunk_size=CHUNK
    )
    assert _digest(outcomes) == reference and not barrier.broken


def test_shard_ranges_are_whole_chunks() -> None:
    assert shard_ranges(6_000, 3, 512) == [range(2_048), range(2_048, 4_096), range(4_096, 6_000)]
    assert shard_ranges(1_000, 4, 512) == [range(512), range(512, 1_000)]  # no empty shard


def test_a_policy_that_cannot_be_sharded_says_so_in_one_line() -> None:
    assert sharding_problem(_scenario()) is None
    # Every built-in policy runs sharded, CRM scores included (tests/test_sharded_policies.py).
    arms = [{"name": "broadcast", "policy": "broadcast"}, {"name": "upper_bound", "policy": "oracle"}]
    assert sharding_problem(_scenario(arms=arms, population={"customers": 6_000, "crm_scores": 2})) is None
    arms = [{"name": "broadcast", "policy": "broadcast"}, {"name": "b", "policy": "segments", "bespoke": True}]
    assert sharding_problem(_scenario(arms=arms)) is None  # bespoke runs sharded (tests/test_sharded_edges.py)
    problem = sharding_problem(_scenario(arms=arms, population={"customers": 6_000, "declared_taste_share": 0.1}))
    assert problem is not None and problem.startswith("arms[1].bespoke: bespoke creatives (arm 'b') aim at declared")
    assert "\n" not in problem
    assert sharding_problem(small_scenario(inbound={})) is None  # [inbound] runs sharded (test_sharded_inbound)


def test_cli_shards_in_process_and_a_policy_that_cannot_be_sharded(tmp_path: Path) -> None:
    from test_bad_input import cli, one_line_error, write

    base = 'name = "sharded"\nseed = 3\nreplications = 2\nhorizon_days = 4\n[population]\ncustomers = 800\n'
    good = write(tmp_path, base + '[[arms]]\nname = "b"\npolicy = "broadcast"\n')
    summaries = []
    for extra in ((), ("--shards", "3")):
        out = tmp_path / f"out{len(extra)}"
        code, stdout, err = cli("run", good, "-q", "-o", str(out), *extra)
        assert code == 0, err
        summaries.append((Path(stdout.strip()) / "summary.json").read_bytes())
    assert summaries[0] == summaries[1]
    policy = "policies_for_tests:MisnamedColumnsPolicy"
    bad = write(tmp_path, base + f'[[arms]]\nname = "m"\npolicy = "{policy}"\n', "bad.toml")
    line = one_line_error(("run", bad, "--shards", "2", "-o", str(tmp_path / "x")), "bad.toml", "arms[0].policy")
    assert f"policy '{policy}' (arm 'm') names view columns 'purchases' that do not exist" in line
    assert not (tmp_path / "x").exists()


def test_runs_and_sorted_groups_give_the_same_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows in long runs of one chunk are drawn slice by slice, others grouped by a sort: the same values."""
    from masssim.engine import chunks

    rng = np.random.default_rng(5)
    customers = np.sort(rng.choice(100_000, 30_000, replace=False))
    grouped = customers[np.argsort(rng.integers(0, 4, customers.shape[0]), kind="stable")]  # as a wave sends
    for size in (1_000, 4_096):  # a chunk size that is not a power of two takes the division
        layout = ChunkLayout(100_000, size)
        assert np.array_equal(layout.of(grouped), grouped // size)
        seq = np.random.SeedSequence(8)
        by_runs = ChunkDraws(seq, layout).standard_normal(grouped, Draw.READ_DELAY)
        monkeypatch.setattr(chunks, "_MIN_ROWS_PER_RUN", 10**9)
        by_sort = ChunkDraws(seq, layout).standard_normal(grouped, Draw.READ_DELAY)
        monkeypatch.undo()
        assert np.array_equal(by_runs, by_sort)


def test_waves_planned_on_the_shards_give_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policies that plan on the shards (docs/model.md §16.2) do, and give one process's bytes: with a
    focused audience and several test waves (the policy's draws cut at shard boundaries), a budget that
    runs out inside a shard, quiet hours that defer a queue's sends, and response blocks (of 700 sends here)
    that straddle shards. A paid channel and a channel order plan there too (tests/test_sharded_edges.py)."""
    from masssim.engine import outbound
    from masssim.engine.sharded import InProcessShards

    monkeypatch.setattr(outbound, "RESPONSE_CHUNK", 700)
    arms = [
        {"name": "random", "policy": "random", "audience_share": 0.5},
        {"name": "random_all", "policy": "random"},
        {"name": "broadcast_sms", "policy": "broadcast", "channel": "sms", "test_waves": 2},
        {"name": "focused", "policy": "segments", "segments": 5, "audience_share": 0.4},
        {"name": "paid", "policy": "segments", "segments": 3, "channel": "paid_social"},
        {"name": "mix", "policy": "broadcast", "channels": ["sms", "email"]},
    ]
    # sms's queue (300 an hour from 19:00) runs into its quiet hours (21:00 to 8:00): sends are deferred.
    scenario = _scenario(
        arms=arms,
        channels={"sms": {"capacity_per_hour": 300.0}},
        schedule={"wave_every_days": 2, "send_hour": 19.0},
    )
    seq = replication_sequence(root_sequence(11), 0)
    one = simulate_replication(scenario, seq, chunk_size=CHUNK)
    assert one["random_all"].metrics["blocked_budget"] > 0 and one["random_all"].metrics["sends"] > 700
    assert one["broadcast_sms"].metrics["deferred_quiet_hours"] > 0 and one["focused"].metrics["sends"] > 0
    reference = _digest(one)
    calls: dict[str, int] = {}
    call = InProcessShards.call

    def counted(self: InProcessShards, method: str, args: dict[int, tuple[object, ...]]) -> list[object]:
        calls[method] = calls.get(method, 0) + len(args)
        return call(self, method, args)

    monkeypatch.setattr(InProcessShards, "call", counted)
    for shards in (2, 5):
        calls.clear()
        assert _digest(simulate_sharded_replication(scenario, seq, in_process, shards, chunk_size=CHUNK)) == reference
        # No arm gathers the view; the cut-off row of the budget fell inside a shard (one call to that shard).
        assert "dynamic_view" not in calls and calls["rule_offer"] > 0
        assert calls.get("rule_cut", 0) >= 1 and calls["rule_send"] > 0


def test_the_policy_stream_cut_at_shard_boundaries_is_the_stream() -> None:
    """Uniforms moved on by counting, integers skipped by drawing: each piece and what follows are the
    draws of one generator (a half-used 32-bit output of an earlier int32 draw included)."""
    from masssim.engine.shard_planning import _generator, integer_states, uniform_states

    whole = np.random.Generator(np.random.PCG64(4))
    whole.integers(0, 5, size=3, dtype=np.int32)  # leaves half a 64-bit output buffered
    split = np.random.Generator(np.random.PCG64(4))
    split.integers(0, 5, size=3, dtype=np.int32)
    counts = [7, 0, 1_000, 3]
    expected = whole.random(sum(counts))
    states = uniform_states(split, counts)
    got = np.concatenate([_generator(s).random(c) for s, c in zip(states, counts, strict=True)])
    assert np.array_equal(got, expected)
    expected = whole.integers(0, 13, size=sum(counts), dtype=np.int32)
    states = integer_states(split, counts, 13)
    got = np.concatenate(
        [_generator(s).integers(0, 13, size=c, dtype=np.int32) for s, c in zip(states, counts, strict=True)]
    )
    assert np.array_equal(got, expected)
    assert np.array_equal(split.random(5), whole.random(5))


def test_affordable_sends_is_searchsorted_of_the_running_cost() -> None:
    from masssim.engine.shard_planning import affordable_sends

    for each, n, limit in [(0.01, 1_000, 3.0), (0.1, 50, 0.3), (0.003, 7, -1.0), (0.0, 9, 0.0), (0.07, 0, 5.0)]:
        cost = each * np.arange(1, n + 1)
        assert affordable_sends(each, n, limit) == int(np.searchsorted(cost, limit, side="right"))


def test_a_focused_rule_counts_personas_nobody_can_reach_as_empty() -> None:
    """The shards count reachable customers per persona up to the last one that has any: the rule pads."""
    from masssim.policies.base import WaveContext

    arms = [{"name": "focused", "policy": "segments", "segments": 5, "audience_share": 0.4}]
    scenario = _scenario(arms=arms)
    world = build_world(scenario, replication_sequence(root_sequence(11), 0), chunk_size=CHUNK)
    policy = ArmSimulation(scenario, world, 0).policy
    assert policy.n_segments > 2
    rule = policy.shard_rule(WaveContext(time_s=0.0, wave_index=3, budget_left=None), np.array([40, 60]))
    assert rule.keep is not None and rule.keep.shape == (policy.n_segments,)
    assert not rule.keep[2:].any()  # nobody to keep there
