"""The gallery's inbound lessons, sharded: the digest of one replication in one process and in shards.

Run:  python tests/benchmarks/check_sharded_inbound.py [--shards 3] [--workers 2] [--seed 3]

Kept out of the test run (a minute or more; ``--workers`` starts a LocalCluster of that many worker
processes, 0 runs the shards in this process). Each scenario's customers are cut into chunks of 4,096 so a
gallery population of 20,000 to 30,000 customers spreads over several shards (the runs' chunk of 65,536
would hold it whole). Every arm runs, ``declared_data_loop``'s ``individual`` included: it reads the taste
its customers declare in conversations, which the sharded coordinator makes as one process does (docs/model.md
§16.8). The digest covers every metric, pool figure, daily series and purchase histogram of the replication;
the script exits with status 1 if a sharded digest differs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import Any

import numpy as np

import masssim
from masssim.engine.sharded import in_process, simulate_sharded_replication
from masssim.engine.sim import simulate_replication
from masssim.model.streams import replication_sequence, root_sequence
from masssim.reporting.results import dumps_json

CHUNK = 4_096
SCENARIOS = ("respond_all_vs_triage", "declared_data_loop", "classifier_capacity")


def digest(outcomes: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(outcomes):
        outcome = outcomes[name]
        h.update(dumps_json({name: outcome.metrics, "pools": outcome.pools}).encode())
        h.update(np.ascontiguousarray(outcome.series).tobytes())
        for histogram in outcome.purchase_histograms or ():
            h.update(histogram.tobytes())
    return h.hexdigest()[:16]


def gallery_scenario(name: str) -> masssim.Scenario:
    return masssim.load_scenario(masssim.resolve_scenario(name))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="LocalCluster worker processes (0: in this process)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    client = cluster = None
    open_group: Any = in_process
    if args.workers:
        from dask.distributed import Client, LocalCluster

        from masssim.engine.dask_shards import DaskShards

        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
        open_group = lambda *a: DaskShards(client, *a)  # noqa: E731
    differ = False
    try:
        for name in SCENARIOS:
            scenario = gallery_scenario(name)
            seq = replication_sequence(root_sequence(args.seed), 0)
            one = digest(simulate_replication(scenario, seq, chunk_size=CHUNK))
            sharded = digest(simulate_sharded_replication(scenario, seq, open_group, args.shards, chunk_size=CHUNK))
            same = one == sharded
            differ |= not same
            print(f"{name}: one process {one}, {args.shards} shards {sharded} {'same' if same else 'DIFFERENT'}")
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
