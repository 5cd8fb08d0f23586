"""Where the feedback buckets' CPU goes in bench_outbound.py's scenario: CPU nanoseconds per touch by phase.

Run:  python tests/benchmarks/bench_bucket_phases.py [--customers 3000000] [--days 30]

The bucket side of the engine is what happens at each feedback bucket: the bucket's organic occasions are
taken from the week's stream and choose a brand with the adstock (``ArmSimulation._purchases``), then the
outcomes whose time has come are released into state, metrics and the policy (``ArmSimulation._release``,
which takes them from ``PendingEvents`` and starts the clicks' direct purchases). This script runs the
benchmark's scenario once, in this process, with each of those steps wrapped in a CPU-time counter, and
prints each one's CPU nanoseconds per touch beside the whole simulation's rate. The steps nest (the release
includes the pending events and the direct purchases; the bucket total includes everything), so the rows do
not add up. The counters cost a few microseconds per call, a few hundred calls per simulated day. The machine
is shared: run it alternately with the code it is compared with and quote medians.
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Callable
from typing import Any

from bench_outbound import measure_vectorised

PHASES = (
    ("occasions: the week's draws and this bucket's slice", "masssim.engine.organic", "OccasionStream", "take"),
    ("organic choices (adstock, brand, market tally, metrics)", "masssim.engine.sim", "ArmSimulation", "_purchases"),
    ("pending events released", "masssim.engine.events", "PendingEvents", "release_pieces"),
    ("pending events released", "masssim.engine.events", "PendingEvents", "release"),
    ("direct purchases after clicks", "masssim.engine.sim", "ArmSimulation", "_direct_purchases"),
    ("release into state (pending and direct included)", "masssim.engine.sim", "ArmSimulation", "_release"),
    ("the whole bucket", "masssim.engine.sim", "ArmSimulation", "_shard_bucket"),
)


def _timed(function: Callable[..., Any], name: str, spent: collections.Counter[str]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.process_time() - start

    return timed


def main() -> None:
    import importlib

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=3_000_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()

    spent: collections.Counter[str] = collections.Counter()
    for name, module, cls_name, method in PHASES:
        cls = getattr(importlib.import_module(module), cls_name)
        if method in vars(cls):  # release_pieces exists only where the release is piecewise
            setattr(cls, method, _timed(getattr(cls, method), name, spent))
    result = measure_vectorised(args.customers, args.days)
    touches = result["touches"]
    print(f"{args.customers:,} customers x {args.days} days, {touches:,.0f} touches")
    cpu = result["simulate_cpu_s"]
    print(f"  simulation: {cpu:.2f} s CPU, {touches / cpu:,.0f} touches per CPU-second")
    for name in dict.fromkeys(name for name, *_ in PHASES):
        print(f"  {name:58s} {spent[name]:6.3f} s CPU  {1e9 * spent[name] / touches:6.2f} ns/touch")


if __name__ == "__main__":
    main()
