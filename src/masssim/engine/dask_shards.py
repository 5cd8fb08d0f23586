"""Shards of a replication on Dask workers: each shard is an actor that keeps its customers between calls.

A :class:`DaskShards` places shard i on worker i mod W (workers sorted by address, so the placement is
the same on every run) and forwards the coordinator's calls (:class:`masssim.engine.sharded.ShardGroup`).
Calls to different shards run at once; results are taken in shard order, so merges are in chunk order.

A worker that dies takes its shard's state with it. While the arm plans on the shards, every call made to a
shard since its arm started is small and kept (its journal), so the shard is rebuilt on a live worker from
the replication's seed and the journal replayed: the shard is deterministic in its calls, so it is again
what it was, and the run goes on with the same bytes. Otherwise (the arm plans on the coordinator, whose
calls carry every planned row, or no worker is left) the run stops with :class:`ShardLost`, one line naming
the shard's customers and the step that was running; no result is written (docs/model.md §16.6).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from masssim.config.errors import ShardLost, one_line
from masssim.config.schema import Scenario
from masssim.engine.sharded import ShardWorker

# Calls that change a shard only through small arguments: kept in its journal and replayed to rebuild it.
REPLAYABLE = frozenset(
    {
        "start_arm",
        "add_creatives",
        "rule_segments",
        "rule_reachable",
        "rule_draw",
        "rule_rows",
        "rule_cut",
        "rule_send",
        "rule_buckets",
        "rule_channel_segments",
        "rule_creatives",
        "rule_offer",
        "rule_audiences",
        "rule_channel_send",
    }
)
# Calls that set up a shard's world for every arm (small arguments): kept and replayed before the arm's journal.
WORLD = frozenset({"set_fanatics"})
# Calls that do not change a shard.
READ_ONLY = frozenset({"static_view", "shares", "nbytes", "taste_norms", "taste_rows", "declarers_taste"})

# Dask's own periodic work, turned down on the clusters masssim starts itself (a LocalCluster): each worker's
# statistical profiler samples its threads every 10 ms and every Dask server checks its event loop every 20
# ms, together about 30 ms of CPU a second per idle worker and 40 on the coordinator (which holds the
# scheduler), taken from the simulation when every core runs a shard (docs/model.md §16.7). The profiler
# feeds only Dask's dashboard, which masssim does not start; a coarser tick only makes Dask's "event loop
# was blocked" warning coarser. A cluster at ``--scheduler`` keeps its own settings.
QUIET_DASK = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s"}

# How long a single call to a shard may take before the run is declared stuck (a dead worker whose loss
# the scheduler has not noticed yet). A wave to a shard of tens of millions of customers takes seconds.
CALL_TIMEOUT_S = 3_600.0


class DaskShards:
    """The shards of one replication as actors on the workers of ``client``."""

    def __init__(
        self,
        client: Any,
        scenario: Scenario,
        replication_seq: np.random.SeedSequence,
        ranges: list[range],
        chunk_size: int,
        *,
        call_timeout_s: float = CALL_TIMEOUT_S,
        recover: bool = True,
    ) -> None:
        self.client = client
        self.ranges = ranges
        self.call_timeout_s = call_timeout_s
        self.build_args = (scenario, replication_seq, chunk_size)
        self.recover = recover
        # Per shard: the calls made to it since its arm started, or None when they cannot be replayed.
        self.journal: list[list[tuple[str, tuple[Any, ...]]] | None] = [[] for _ in ranges]
        self.world_calls: list[list[tuple[str, tuple[Any, ...]]]] = [[] for _ in ranges]
        self.rebuilt = 0  # shards rebuilt after their worker was lost
        workers = sorted(client.scheduler_info().get("workers", {}))
        if not workers:
            raise ShardLost("the Dask cluster has no workers to hold the shards")
        self.placement = [workers[i % len(workers)] for i in range(len(ranges))]
        futures = [
            client.submit(
                ShardWorker,
                scenario,
                replication_seq,
                r.start,
                r.stop,
                chunk_size,
                actor=True,
                workers=[address],
                allow_other_workers=False,
                pure=False,
            )
            for r, address in zip(ranges, self.placement, strict=True)
        ]
        self.actors = [self._wait(s, "building its customers", f) for s, f in enumerate(futures)]

    def _wait(self, shard: int, step: str, future: Any) -> Any:
        try:
            return future.result(timeout=self.call_timeout_s)
        except Exception as exc:
            raise self._lost(shard, step, exc) from exc

    def _lost(self, shard: int, step: str, exc: BaseException) -> ShardLost:
        r = self.ranges[shard]
        reason = one_line(f"{type(exc).__name__}: {exc}")
        return ShardLost(
            f"shard {shard} (customers {r.start:,} to {r.stop - 1:,}, on worker {self.placement[shard]}) "
            f"was lost while {step} ({reason}); the run stopped and wrote no results"
        )

    def _note(self, shard: int, method: str, args: tuple[Any, ...]) -> None:
        """Keep the call in the shard's journal (a new arm starts a new one); a call that cannot be replayed
        ends it until the next arm."""
        if method in READ_ONLY:
            return
        if method in WORLD:
            self.world_calls[shard].append((method, args))
            return
        if method == "start_arm":
            self.journal[shard] = []
        if method == "finish_arm" or method not in REPLAYABLE:
            self.journal[shard] = None if method != "finish_arm" else []
            return
        journal = self.journal[shard]
        if journal is not None:
            journal.append((method, args))

    def call(self, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]:
        # What rebuilds each shard as it is before this call: its journal so far (nothing for a new arm).
        prior: dict[int, tuple[list[tuple[str, tuple[Any, ...]]], int] | None] = {}
        pending = []
        for s, a in sorted(args.items()):
            journal = self.journal[s]
            prior[s] = ([], 0) if method == "start_arm" else None if journal is None else (journal, len(journal))
            self._note(s, method, a)
            pending.append((s, a, getattr(self.actors[s], method)(*a)))
        out = []
        for s, a, future in pending:
            try:
                out.append(future.result(timeout=self.call_timeout_s))
            except Exception as exc:
                before = prior[s]
                if not self.recover or before is None:
                    raise self._lost(s, f"running '{method}'", exc) from exc
                out.append(self._rebuild(s, before[0][: before[1]], method, a, exc))
        return out

    def _rebuild(
        self, shard: int, journal: list[tuple[str, tuple[Any, ...]]], method: str, args: tuple[Any, ...], exc: Exception
    ) -> Any:
        """Build the shard again on a live worker (another one if there is), replay its journal, and make the
        call that failed. Any failure on the way stops the run as a lost shard."""
        lost_on = self.placement[shard]
        try:
            workers = sorted(self.client.scheduler_info().get("workers", {}))
            others = [w for w in workers if w != lost_on] or workers
            if not others:
                raise self._lost(shard, f"running '{method}'", exc)
            address = others[shard % len(others)]
            r = self.ranges[shard]
            future = self.client.submit(
                ShardWorker,
                *self.build_args[:2],
                r.start,
                r.stop,
                self.build_args[2],
                actor=True,
                workers=[address],
                allow_other_workers=False,
                pure=False,
            )
            actor = future.result(timeout=self.call_timeout_s)
            for name, a in self.world_calls[shard] + journal:
                getattr(actor, name)(*a).result(timeout=self.call_timeout_s)
            result = getattr(actor, method)(*args).result(timeout=self.call_timeout_s)
        except ShardLost:
            raise
        except Exception as again:
            raise self._lost(shard, f"running '{method}' (and rebuilding it failed)", again) from exc
        self.actors[shard] = actor
        self.placement[shard] = address
        self.rebuilt += 1
        return result

    def close(self) -> None:
        self.actors = []  # the actors go when nothing refers to them any more
