"""The sharded engine's overheads cut without changing a draw (docs/model.md §16.7): feedback buckets batched
between waves on the shards (one call per shard for every bucket up to the next wave gives the policy exactly
the cells, in the order, that a call per bucket gives it; for a policy planned on the coordinator, one
process's ``observe`` calls, with [inbound] too), and the policy stream's integer draws skipped by checking its
raw outputs."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from masssim.engine import sharded
from masssim.engine.shard_planning import ShardWave, skip_integers, unpack_bucket_cells
from masssim.engine.sharded import InProcessShards, simulate_sharded_replication
from masssim.engine.sim import ArmSimulation, simulate_replication, wave_days
from masssim.model.streams import replication_sequence, root_sequence
from masssim.policies.targeting import SegmentsPolicy
from test_sharded_engine import CHUNK, _digest, _scenario
from test_sharded_inbound import inbound_scenario
from test_sharded_policies import LEARNERS, SEQ, learners_scenario


def _run(monkeypatch: pytest.MonkeyPatch, per_bucket: bool) -> tuple[str, list[Any], dict[str, int]]:
    """Two learning arms in 3 shards of this process; the digest, every ``observe_cells`` call (arm's policy,
    bucket end, cells as lists) and the calls to the shards per method. ``per_bucket``: run each bucket on
    the shards as soon as it ends (the protocol before batching), through the hook called after each bucket."""
    seen: list[Any] = []
    calls: dict[str, int] = {}
    observe = SegmentsPolicy.observe_cells

    def spy(self: SegmentsPolicy, time_s: float, cells: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        listed = {kind: (keys.tolist(), counts.tolist()) for kind, (keys, counts) in sorted(cells.items())}
        seen.append((id(self), time_s, listed))
        observe(self, time_s, cells)

    class Counting(InProcessShards):
        def call(self, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]:
            calls[method] = calls.get(method, 0) + 1
            return super().call(method, args)

    with monkeypatch.context() as patch:
        patch.setattr(SegmentsPolicy, "observe_cells", spy)
        if per_bucket:
            patch.setattr(sharded.ShardedArm, "_after_bucket", lambda arm, t1: arm._observe_pending_buckets())
        arms = [
            {"name": "segments", "policy": "segments", "segments": 4},
            {"name": "broadcast_sms", "policy": "broadcast", "channel": "sms", "test_waves": 2},
        ]
        seq = replication_sequence(root_sequence(11), 0)
        outcomes = simulate_sharded_replication(_scenario(arms=arms), seq, Counting, 3, chunk_size=CHUNK)
    # Policies are compared by the order in which they first observe (ids differ between runs).
    first = {policy: i for i, policy in reversed(list(enumerate(p for p, _, _ in seen)))}
    return _digest(outcomes), [(first[p], t, cells) for p, t, cells in seen], calls


def test_batched_buckets_give_the_policy_the_cells_of_a_call_per_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    digest, seen, calls = _run(monkeypatch, per_bucket=False)
    reference_digest, reference, reference_calls = _run(monkeypatch, per_bucket=True)
    assert seen == reference  # every bucket's cells, in the same order, for each arm
    assert digest == reference_digest
    assert sum(1 for _, _, cells in seen if cells.get("click", ([], []))[0]) > 10  # the cells carry clicks
    # 10 days of hourly buckets in 2 arms: 480 calls per bucket, against one per wave (5) and one at the end.
    assert reference_calls["rule_buckets"] == 2 * 240
    assert calls["rule_buckets"] == 2 * (5 + 1)


def test_bucket_cells_pack_and_unpack() -> None:
    """A kind absent from a bucket stays absent, and one present with no counted cell stays present (empty)."""
    buckets = [
        {"delivered": (np.array([1, 4]), np.array([2, 1]))},
        {},
        {"delivered": (np.array([], np.int64), np.array([], np.int64)), "click": (np.array([3]), np.array([7]))},
    ]

    class Replay(ShardWave):
        def __init__(self) -> None:
            self.next = iter(buckets)

        def bucket_cells(self, t0: float, t1: float, cell_creatives: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
            return next(self.next)

    packed = Replay().buckets_cells(np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]), 5)
    unpacked = unpack_bucket_cells(packed, 3)
    assert [sorted(b) for b in unpacked] == [sorted(b) for b in buckets]
    for got, want in zip(unpacked, buckets, strict=True):
        for kind in want:
            assert np.array_equal(got[kind][0], want[kind][0]) and np.array_equal(got[kind][1], want[kind][1])


@pytest.mark.parametrize("high", [2, 13, 50, 1 << 20, (1 << 31) - 1, (1 << 30) + 1, 1, 1 << 31])
def test_skipping_integers_leaves_the_stream_where_drawing_them_does(high: int) -> None:
    """Counts odd and even, from a fresh state and from a half-used 64-bit output, across pieces; ``high`` near
    2^31 rejects up to half the outputs (the runs with a rejection are drawn), powers of two never, 1 draws
    nothing."""
    for start in (0, 1):
        for count in (0, 1, 2, 7, 1_000, 300_001):
            drawn = np.random.Generator(np.random.PCG64(7))
            skipped = np.random.Generator(np.random.PCG64(7))
            for rng in (drawn, skipped):
                rng.integers(0, 5, size=start, dtype=np.int32)  # 1: leaves half a 64-bit output buffered
            drawn.integers(0, high, size=count, dtype=np.int32)
            skip_integers(skipped, count, high)
            assert skipped.bit_generator.state == drawn.bit_generator.state, (start, count)
            assert np.array_equal(skipped.random(3), drawn.random(3))


def test_skipping_integers_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs cut into pieces of DRAW_PIECE draws give the same state (a rejection inside a later piece)."""
    from masssim.engine import shard_planning

    monkeypatch.setattr(shard_planning, "DRAW_PIECE", 64)
    high = (1 << 30) + 3  # rejects about one output in four
    drawn = np.random.Generator(np.random.PCG64(2))
    skipped = np.random.Generator(np.random.PCG64(2))
    drawn.integers(0, high, size=1_001, dtype=np.int32)
    skip_integers(skipped, 1_001, high)
    assert skipped.bit_generator.state == drawn.bit_generator.state


def _observed(
    monkeypatch: pytest.MonkeyPatch, scenario: Any, shards: int | None
) -> tuple[list[Any], dict[str, int], int]:
    """Every ``observe`` call of the scenario's policies, which plan on the coordinator (arm, bucket end, and
    per kind each field's dtype and sha256), in one process (``shards=None``) or in ``shards`` shards of this
    process; with the calls to the shards per method and the number of waves."""

    seen: list[Any] = []
    calls: dict[str, int] = {}

    def spied(policy: Any, arm: str) -> None:
        observe = policy.observe

        def spy(feedback: Any) -> None:
            events = {
                kind: {
                    name: (values.dtype.str, hashlib.sha256(values.tobytes()).hexdigest()) for name, values in e.items()
                }
                for kind, e in sorted(feedback.events.items())
            }
            seen.append((arm, feedback.time_s, events))
            observe(feedback)

        policy.observe = spy

    class Counting(InProcessShards):
        def call(self, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]:
            calls[method] = calls.get(method, 0) + 1
            return super().call(method, args)

    with monkeypatch.context() as patch:
        for engine in (ArmSimulation, sharded.ShardedArm):
            init = engine.__init__

            def spying_init(self: Any, *args: Any, _init: Any = init, **kwargs: Any) -> None:
                _init(self, *args, **kwargs)
                if getattr(self, "policy", None) is not None:
                    spied(self.policy, self.arm.name)

            patch.setattr(engine, "__init__", spying_init)
        if shards is None:
            simulate_replication(scenario, SEQ, chunk_size=CHUNK)
        else:
            simulate_sharded_replication(scenario, SEQ, Counting, shards, chunk_size=CHUNK)
    return seen, calls, len(wave_days(scenario))


def test_coordinator_policies_get_one_process_feedback_from_one_call_per_wave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The policies that plan on the coordinator (oracle, thompson, linucb, ...) get from a sharded run the
    ``observe`` calls of one process: the same buckets, in the same order, with the same bytes; and the
    shards are called once at the start of each wave (the buckets put off, the calendar week and the view in one
    call) and once at the arm's end (a call per bucket, as before batching, fails the count: 192 buckets per
    arm against 5 calls)."""
    scenario = learners_scenario(LEARNERS)
    reference, _, waves = _observed(monkeypatch, scenario, None)
    learners = {arm for arm, _, _ in reference}
    assert len(learners) == len(LEARNERS) - 1  # every policy but the oracle (it learns nothing) observed
    assert sum(1 for _, _, events in reference if "click" in events) > 50  # the calls carry clicks
    for shards in (2, 3):
        seen, calls, _ = _observed(monkeypatch, scenario, shards)
        assert seen == reference, f"{shards} shards"
        # Per arm (the oracle's too: its outcomes are released): a wave starts with one call (the buckets put
        # off, the week, the view), and one more runs the buckets after the last wave.
        assert "bucket" not in calls and "start_week" not in calls
        assert calls["wave_start"] == len(LEARNERS) * waves, f"{shards} shards"
        assert calls["buckets"] == len(LEARNERS), f"{shards} shards"
        assert calls["dynamic_view"] == len(LEARNERS)  # once before each policy is built


def test_with_inbound_the_buckets_are_batched_unless_the_policy_reads_declared_taste(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With [inbound] the desk settles each bucket's conversations on the coordinator; batched, the shards apply
    what they did to their customers right after that bucket, in the one call per wave, and the policy then
    observes each bucket's feedback and its conversation purchases in one process's order. A policy that
    reads declared taste (``individual``: the desk grows its table) keeps a call per bucket."""
    arms = [{"name": "uplift", "policy": "uplift"}, {"name": "individual", "policy": "individual"}]
    scenario = inbound_scenario(arms=arms)
    reference, _, waves = _observed(monkeypatch, scenario, None)
    conversation_purchases = [
        (arm, t) for arm, t, events in reference if list(events) == ["purchase"] and arm == "uplift"
    ]
    assert len(conversation_purchases) > 5  # observe calls of the desk's purchases alone, between the buckets'
    buckets = round(scenario.horizon_days * 24 * 60 / scenario.feedback_bucket_minutes)
    for shards in (2, 3):
        seen, calls, _ = _observed(monkeypatch, scenario, shards)
        assert seen == reference, f"{shards} shards"
        assert calls["wave_start"] == 2 * waves  # individual's carry no bucket
        assert calls["buckets"] == 1  # uplift's after its last wave
        assert calls["bucket"] == buckets  # individual's
