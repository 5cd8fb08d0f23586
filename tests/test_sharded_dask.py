"""Sharded replications on a real Dask LocalCluster: the same bytes as one process (docs/model.md §16)."""

from __future__ import annotations

import os
import signal
from typing import Any

import numpy as np
import pytest

import masssim
from masssim.config.errors import ShardLost
from masssim.model.streams import replication_sequence, root_sequence
from masssim.reporting.results import dumps_json
from test_sharded_engine import CHUNK, _digest, _scenario
from test_sharded_experiments import compare_summary, small_chunks, sweep_cells  # noqa: F401 (a fixture)
from test_sharded_inbound import inbound_scenario, pools_digest

distributed = pytest.importorskip("dask.distributed")

from masssim.engine.dask_shards import DaskShards  # noqa: E402
from masssim.engine.sharded import ShardGroup, simulate_sharded_replication  # noqa: E402
from masssim.engine.sim import simulate_replication  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Any:
    """Two single-threaded workers in this process: real workers, scheduler and actors, cheap to start."""
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as local,
        distributed.Client(local) as client,
    ):
        yield local, client


def test_shards_on_two_workers_give_the_same_bytes_as_one_process(cluster: Any) -> None:
    _, client = cluster
    scenario = _scenario()
    seq = replication_sequence(root_sequence(11), 0)
    reference = _digest(simulate_replication(scenario, seq, chunk_size=CHUNK))
    placements: list[list[str]] = []

    def on_cluster(*args: Any) -> ShardGroup:
        group = DaskShards(client, *args)
        placements.append(group.placement)
        return group

    for shards in (2, 3):
        outcomes = simulate_sharded_replication(scenario, seq, on_cluster, shards, chunk_size=CHUNK)
        assert _digest(outcomes) == reference, f"{shards} shards"
    # Both workers held customers: two shards went to two different workers.
    assert len(set(placements[0])) == 2


def test_learning_policies_on_two_workers_give_the_bytes_of_one_process(cluster: Any) -> None:
    """The policies that plan on the coordinator, with the columns gathered from the workers' shards: CRM
    scores, latent taste, declared taste at the start and, with [inbound], captured in conversations."""
    from test_sharded_policies import LEARNERS, learners_scenario

    _, client = cluster
    seq = replication_sequence(root_sequence(11), 0)
    learners = learners_scenario([LEARNERS[0], LEARNERS[3], LEARNERS[4], LEARNERS[5]], crm_scores=2)
    captured = inbound_scenario(arms=[{"name": "individual", "policy": "individual"}])
    for scenario, shards in ((learners, 3), (captured, 2)):
        reference = pools_digest(simulate_replication(scenario, seq, chunk_size=CHUNK))
        outcomes = simulate_sharded_replication(
            scenario, seq, lambda *a: DaskShards(client, *a), shards, chunk_size=CHUNK
        )
        assert pools_digest(outcomes) == reference, scenario.arms[0].policy


def test_run_with_shards_on_a_scheduler_writes_the_same_summary(cluster: Any) -> None:
    local, _ = cluster
    scenario = _scenario(replications=2)
    one_process = dumps_json(masssim.run(scenario, seed=5).summary)
    sharded = masssim.run(scenario, seed=5, engine="dask", scheduler=local.scheduler_address, shards=2)
    assert dumps_json(sharded.summary) == one_process


def _kill_shard_1_at_call(client: Any, at_call: int, only: str | None = None) -> type[DaskShards]:
    """DaskShards whose ``at_call``-th call (of method ``only`` if given) first kills the worker process of
    shard 1 (a real SIGKILL)."""
    calls = {"n": 0}

    class KillAtCall(DaskShards):
        def call(self, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]:
            counted = only is None or method == only
            calls["n"] += counted
            if counted and calls["n"] == at_call:
                address = self.placement[1]
                os.kill(client.run(os.getpid, workers=[address])[address], signal.SIGKILL)
            return super().call(method, args)

    return KillAtCall


def test_a_worker_that_dies_stops_the_run_with_one_line() -> None:
    """A real worker process killed between waves of an arm that plans on the coordinator (with [inbound]:
    its calls carry every planned row, so they are not kept to rebuild the shard): the next call names the
    lost shard, without hanging."""
    scenario = inbound_scenario(arms=[{"name": "broadcast", "policy": "broadcast"}])
    seq = replication_sequence(root_sequence(11), 0)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local,
        distributed.Client(local) as client,
    ):
        killing = _kill_shard_1_at_call(client, 2, only="sendable")  # in the second wave
        with pytest.raises(ShardLost) as lost:
            simulate_sharded_replication(
                scenario, seq, lambda *a: killing(client, *a, call_timeout_s=60.0), 2, chunk_size=CHUNK
            )
    message = str(lost.value)
    assert "\n" not in message
    assert message.startswith("shard 1 (customers 3,072 to 5,999, on worker ")
    assert message.endswith("the run stopped and wrote no results")


def _run_with_shard_1_killed(scenario: Any, seq: Any, at_call: int, only: str | None = None) -> tuple[int, Any]:
    """Run the replication on a real two-worker LocalCluster whose worker holding shard 1 is killed at that
    call; returns how many times the shard group rebuilt a shard, and the outcomes."""
    groups: list[DaskShards] = []
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local,
        distributed.Client(local) as client,
    ):
        killing = _kill_shard_1_at_call(client, at_call, only=only)

        def on_cluster(*a: Any) -> ShardGroup:
            group = killing(client, *a, call_timeout_s=60.0)
            groups.append(group)
            return group

        outcomes = simulate_sharded_replication(scenario, seq, on_cluster, 2, chunk_size=CHUNK)
    return groups[0].rebuilt, outcomes


def test_a_lost_shard_of_an_arm_planned_on_the_shards_is_rebuilt_with_the_same_bytes() -> None:
    """A worker killed in the middle of an arm that plans on the shards (segments): its shard is built again on
    the other worker from the seed, its calls since the arm started are replayed, and the run ends with one
    process's bytes (docs/model.md §16.6)."""
    arms = [{"name": "segments", "policy": "segments", "segments": 4}, {"name": "random", "policy": "random"}]
    scenario = _scenario(arms=arms)
    seq = replication_sequence(root_sequence(11), 0)
    reference = _digest(simulate_replication(scenario, seq, chunk_size=CHUNK))
    rebuilt, outcomes = _run_with_shard_1_killed(scenario, seq, 15)  # the first arm's third batch of buckets
    assert rebuilt == 1
    assert _digest(outcomes) == reference


def test_a_lost_shard_of_a_paid_channel_order_with_bespoke_creatives_and_fanatics_is_rebuilt() -> None:
    """The same with a channel order that starts on a paid channel, bespoke creatives and the fanatics
    diagnostic (tests/test_sharded_edges.py): the rebuilt shard gets its fanatics again, then the arm's calls
    (the generated creatives, the channels' offers and cut-offs), and the run ends with one process's bytes."""
    from test_sharded_edges import _paid_scenario

    arms = [{"name": "mix", "policy": "segments", "segments": 3, "bespoke": True, "channels": ["paid_social", "email"]}]
    scenario = _paid_scenario(arms, diagnostics={"fanatic_top_share": 0.03})
    seq = replication_sequence(root_sequence(11), 0)
    one = simulate_replication(scenario, seq, chunk_size=CHUNK)
    assert one["mix"].metrics["fanatic_sends"] > 0 and one["mix"].metrics["channel_fallbacks"] > 0
    reference = _digest(one)
    rebuilt, outcomes = _run_with_shard_1_killed(scenario, seq, 3, only="rule_offer")  # after the bespoke creatives
    assert rebuilt == 1
    assert _digest(outcomes) == reference


def test_placement_is_the_same_on_every_run(cluster: Any) -> None:
    _, client = cluster
    scenario = _scenario()
    seq = replication_sequence(root_sequence(11), 0)
    ranges = [range(3_072), range(3_072, 6_000)]
    first = DaskShards(client, scenario, seq, ranges, CHUNK)
    second = DaskShards(client, scenario, seq, ranges, CHUNK)
    assert first.placement == second.placement
    sizes = first.call("nbytes", {0: (), 1: ()})
    assert all(size > 0 for size in sizes) and np.isclose(sizes[0] / sizes[1], 3_072 / 2_928, rtol=0.01)
    first.close()
    second.close()


def test_compare_and_sweep_with_shards_on_a_scheduler(
    cluster: Any,
    small_chunks: list[int],  # noqa: F811 (the imported fixture)
    tmp_path: Any,
) -> None:
    """``compare`` and ``sweep`` with ``shards`` on the cluster's workers: the one-process bytes."""
    local, _ = cluster
    on_cluster = {"engine": "dask", "scheduler": local.scheduler_address, "shards": 2}
    assert compare_summary(**on_cluster) == compare_summary()
    assert sweep_cells(tmp_path / "cluster", **on_cluster) == sweep_cells(tmp_path / "one")
    assert small_chunks == [2] * 8  # every replication of both ran in two shards


def test_inbound_on_the_cluster_gives_the_bytes_of_one_process(cluster: Any) -> None:
    """The desk on the coordinator, replies and conversation outcomes to and from shards on two workers."""
    _, client = cluster
    scenario = inbound_scenario()
    seq = replication_sequence(root_sequence(11), 0)
    reference = pools_digest(simulate_replication(scenario, seq, chunk_size=CHUNK))
    outcomes = simulate_sharded_replication(scenario, seq, lambda *a: DaskShards(client, *a), 3, chunk_size=CHUNK)
    assert pools_digest(outcomes) == reference
