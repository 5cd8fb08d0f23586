"""The fanatics diagnostic in a sharded run (docs/model.md §16.5).

One process finds the fanatics from every customer's taste norm (a global quantile), then the best affinity of
each to the starting catalogue (:func:`masssim.engine.outbound.find_fanatics`). Sharded, once per
replication: each shard computes its customers' norms (a row's norm depends on that row only) and the
coordinator gathers them (4 bytes per customer), so the quantile, the threshold and the fanatics are one
process's; the shards then send the fanatics' taste rows (``taste_dims`` float16 each, a top share of the
customers), on which the coordinator computes the best affinities with the same array and the same operation
as one process; each shard gets its fanatics (its own indices) and their affinities. The shards count the
diagnostic's sends, matches and clicks as one process does (integers, added up).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from masssim.config.schema import Scenario
from masssim.engine.outbound import best_affinity, fanatic_ids
from masssim.model.creatives import make_catalogue
from masssim.model.streams import Component, component_sequence, generator


def share_fanatics(
    scenario: Scenario, replication_seq: np.random.SeedSequence, group: Any, contactable: np.ndarray
) -> None:
    """Find the replication's fanatics from the shards' rows and give each shard its own (no-op at share 0)."""
    top_share = scenario.diagnostics.fanatic_top_share
    if top_share <= 0:
        return
    shards = range(len(group.ranges))
    norm = np.concatenate(group.call("taste_norms", dict.fromkeys(shards, ())))
    ids = fanatic_ids(norm, contactable, top_share)
    del norm
    bounds = np.searchsorted(ids, [r.start for r in group.ranges] + [group.ranges[-1].stop])
    local = [ids[bounds[s] : bounds[s + 1]] - group.ranges[s].start for s in shards]
    taste = np.concatenate(group.call("taste_rows", {s: (local[s],) for s in shards}))
    catalogue = make_catalogue(
        scenario.creatives,
        scenario.population.taste_dims,
        generator(component_sequence(replication_seq, Component.CREATIVES)),
    )
    best = best_affinity(taste, catalogue)
    group.call("set_fanatics", {s: (local[s], best[bounds[s] : bounds[s + 1]]) for s in shards})
