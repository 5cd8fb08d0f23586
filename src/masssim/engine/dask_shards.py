"""Shards of a replication on Dask workers: each shard is an actor that keeps its customers between calls.

A :class:`DaskShards` places shard i on worker i mod W (workers sorted by address, so the placement is
the same on every run) and forwards the coordinator's calls (:class:`masssim.engine.sharded.ShardGroup`).
Calls to different shards run at once; results are taken in shard order, so merges are in chunk order.

A worker that dies takes its shard's state with it. The run then stops with :class:`ShardLost`, one line
naming the shard's customers and the step that was running; no result is written (docs/model.md §16.6).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from masssim.config.errors import ShardLost, one_line
from masssim.config.schema import Scenario
from masssim.engine.sharded import ShardWorker

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
    ) -> None:
        self.client = client
        self.ranges = ranges
        self.call_timeout_s = call_timeout_s
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
            r = self.ranges[shard]
            reason = one_line(f"{type(exc).__name__}: {exc}")
            raise ShardLost(
                f"shard {shard} (customers {r.start:,} to {r.stop - 1:,}, on worker {self.placement[shard]}) "
                f"was lost while {step} ({reason}); the run stopped and wrote no results"
            ) from exc

    def call(self, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]:
        pending = [(s, getattr(self.actors[s], method)(*a)) for s, a in sorted(args.items())]
        return [self._wait(s, f"running '{method}'", future) for s, future in pending]

    def close(self) -> None:
        self.actors = []  # the actors go when nothing refers to them any more
