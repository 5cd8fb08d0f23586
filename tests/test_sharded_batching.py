"""Feedback buckets batched between waves on the shards (docs/model.md §16.2, §16.7): one call per shard for
every bucket up to the next wave gives the policy exactly the cells, in the order, that a call per bucket
gives it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from masssim.engine import sharded
from masssim.engine.shard_planning import ShardWave, unpack_bucket_cells
from masssim.engine.sharded import InProcessShards, simulate_sharded_replication
from masssim.model.streams import replication_sequence, root_sequence
from masssim.policies.targeting import SegmentsPolicy
from test_sharded_engine import CHUNK, _digest, _scenario


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
