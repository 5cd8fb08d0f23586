"""One replication across Dask workers: wall and CPU time per process, peak memory per worker, speed-up.

Run:  python tests/benchmarks/bench_sharded.py [--customers 20000000] [--days 14] [--workers 1,2]
      [--method-times] [--profile FILE] [--dask-defaults] [--json]

For each worker count W a fresh LocalCluster of W single-threaded worker processes (population chunks filled
one at a time: a worker is one core; Dask's settings as masssim starts its own cluster, ``QUIET_DASK``, unless
``--dask-defaults``) runs, after an untimed warm-up replication, the same scenario (a daily email wave from
the ``random`` policy to every reachable customer, one arm) with one shard per worker (``masssim run
--engine dask --workers W --shards W``). The script checks that every W gives the same results to the byte.

How to read it, per run:

* ``wall`` and ``speed-up 1 -> W``: only meaningful on an otherwise idle machine. The ``load average``
  (1 minute, before and after) says how busy it was: above the number of cores, the wall times are the
  machine's, not the engine's. The coordinator and Dask's own threads share the cores with the workers.
* ``CPU s per worker`` (each worker process's own CPU during the run) and ``coordinator`` (this process:
  the policy, the whole-plan rules, and Dask's client and scheduler): the figures that hold under load. The
  work divides well when each of W workers spends about 1/W of the one worker's CPU.
* ``peak MiB per worker`` (VmHWM, reset before the run) against ``before the run`` (the interpreter, Dask
  and masssim: the fixed overhead). The aim (issue 11): memory per worker about 1/W of one process's above
  that overhead, plus the overhead.
* ``coordinator's calls to the shards``: one call reaches every shard named in it at once (a round trip).
* ``--method-times``: the CPU each worker spends in each shard method (``__init__`` builds the shard's
  customers, ``rule_send`` sends a wave and draws its responses, ``rule_buckets`` runs the feedback buckets
  between two waves) and outside them (Dask's threads, serialisation).
* ``--profile FILE``: a cProfile of the coordinator's main thread (waiting on the shards shows as lock
  ``acquire``); Dask's threads in the coordinator are not in it.

The aim (issue 11): at least 1.7x on 2 workers at 20 million customers. The machine may be shared: quote the
command and the load average, and repeat before citing a wall time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import time
from typing import Any


def scenario_dict(customers: int, days: int) -> dict[str, Any]:
    return {
        "name": "bench_sharded",
        "seed": 1,
        "replications": 1,
        "horizon_days": days,
        "population": {"customers": customers},
        "holdout": {"share": 0.1},
        "arms": [{"name": "all", "policy": "random"}],
    }


def _rss_now() -> int:
    """Resident bytes of the calling process now (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _rss_peak() -> int:
    """Peak resident bytes of the calling process since the last :func:`_reset_peak` (Linux VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> None:
    """Start the peak over from the resident memory now (Linux: "5" to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def _one_core_each() -> None:
    """A worker is one core here: its population chunks are filled one at a time (by default a process
    fills chunks on every core it sees, which would give the one-worker run the machine's cores too)."""
    from masssim.model import population

    population.POPULATION_THREADS = 1


SHARD_METHODS: tuple[str, ...] = ("__init__", "start_arm", "rule_reachable", "rule_draw", "rule_rows", "rule_cut")
SHARD_METHODS += ("rule_send", "rule_bucket", "rule_buckets", "finish_arm", "dynamic_view", "sendable", "respond")
SHARD_METHODS += ("bucket", "buckets", "wave_start")


def _time_shard_methods() -> None:
    """On a worker: time the CPU (this thread's) spent in each method of the shards from now on."""
    import functools

    from masssim.engine import sharded

    spent: dict[str, float] = {}
    sharded.ShardWorker._bench_spent = spent  # type: ignore[attr-defined]
    for name in SHARD_METHODS:
        method = getattr(sharded.ShardWorker, name, None)
        if method is None:  # a method of another version of the shards
            continue

        def timed(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return _method(*args, **kwargs)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.thread_time() - t0

        setattr(sharded.ShardWorker, name, functools.wraps(method)(timed))


def _shard_method_times() -> dict[str, float]:
    from masssim.engine import sharded

    return dict(sharded.ShardWorker._bench_spent)  # type: ignore[attr-defined]


def _cpu_s() -> float:
    return time.process_time()


def _counting_shards(client: Any, calls: dict[str, int]) -> Any:
    """A factory of the replication's :class:`DaskShards` that counts the coordinator's calls per method (one
    call reaches every shard named in it at once)."""
    from masssim.engine.dask_shards import DaskShards

    class CountingShards(DaskShards):
        def call(self, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]:
            calls[method] = calls.get(method, 0) + 1
            return super().call(method, args)

    return lambda *a: CountingShards(client, *a)


def measure(
    customers: int,
    days: int,
    workers: int,
    method_times: bool = False,
    profile: str | None = None,
    dask_defaults: bool = False,
) -> dict[str, Any]:
    import dask
    from dask.distributed import Client, LocalCluster

    import masssim
    from masssim.engine.dask_shards import QUIET_DASK, DaskShards
    from masssim.engine.sharded import simulate_sharded_replication
    from masssim.model.streams import replication_sequence, root_sequence
    from masssim.reporting.results import dumps_json

    scenario = masssim.scenario_from_dict(scenario_dict(customers, days))
    seq = replication_sequence(root_sequence(1), 0)
    with (
        dask.config.set({} if dask_defaults else QUIET_DASK),  # as masssim starts its own LocalCluster
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit=0
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_one_core_each)
        # Not timed: imports, numba's compiled kernels and a tiny replication, so the figures are the run's.
        warm = masssim.scenario_from_dict(scenario_dict(70_000, 1))
        simulate_sharded_replication(warm, seq, lambda *a: DaskShards(client, *a), workers)
        if method_times:
            client.run(_time_shard_methods)
        before = client.run(_rss_now)
        client.run(_reset_peak)
        _reset_peak()
        cpu_before = client.run(_cpu_s)
        load_before = os.getloadavg()
        calls: dict[str, int] = {}
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t0, coordinator_cpu = time.perf_counter(), time.process_time()
        outcomes = simulate_sharded_replication(scenario, seq, _counting_shards(client, calls), workers)
        wall = time.perf_counter() - t0
        coordinator_cpu = time.process_time() - coordinator_cpu
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        peak = client.run(_rss_peak)
        cpu = {w: t - cpu_before[w] for w, t in client.run(_cpu_s).items()}
        load_after = os.getloadavg()
        methods = client.run(_shard_method_times) if method_times else {}
    metrics = outcomes["all"].metrics
    digest = hashlib.sha256(dumps_json(metrics).encode() + outcomes["all"].series.tobytes()).hexdigest()
    return {
        "workers": workers,
        "wall_s": wall,
        "sends": metrics["sends"],
        "worker_rss_before_bytes": sorted(before.values()),
        "worker_peak_bytes": sorted(peak.values()),
        "worker_cpu_s": sorted(cpu.values()),
        "worker_cpu_s_by_address": [cpu[w] for w in sorted(methods)] if methods else [],
        "coordinator_cpu_s": coordinator_cpu,
        "coordinator_peak_bytes": _rss_peak(),
        "load_average_1min": [load_before[0], load_after[0]],
        "shard_method_cpu_s": [methods[w] for w in sorted(methods)],
        "coordinator_calls": calls,
        "digest": digest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    parser.add_argument(
        "--method-times", action="store_true", help="also time the CPU each worker spends in each shard method"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="cProfile the coordinator's measured runs into FILE.0, FILE.1, ... and print their top lines",
    )
    parser.add_argument(
        "--dask-defaults",
        action="store_true",
        help="start the cluster with Dask's default settings instead of masssim's (QUIET_DASK)",
    )
    args = parser.parse_args()
    runs = [
        measure(
            args.customers,
            args.days,
            int(w),
            args.method_times,
            args.profile and f"{args.profile}.{i}",
            args.dask_defaults,
        )
        for i, w in enumerate(args.workers.split(","))
    ]
    mib = 1 << 20
    print(f"{args.customers:,} customers, {args.days} days, one daily email wave ('random'), one shard per worker")
    for run in runs:
        peaks = ", ".join(f"{p / mib:,.0f}" for p in run["worker_peak_bytes"])
        befores = ", ".join(f"{b / mib:,.0f}" for b in run["worker_rss_before_bytes"])
        print(
            f"  {run['workers']} worker(s): {run['wall_s']:8.1f} s  {run['sends'] / run['wall_s']:,.0f} sends/s  "
            f"peak MiB per worker [{peaks}] (before the run [{befores}])  "
            f"coordinator peak {run['coordinator_peak_bytes'] / mib:,.0f} MiB"
        )
        cpus = ", ".join(f"{c:,.1f}" for c in run["worker_cpu_s"])
        load = run["load_average_1min"]
        print(
            f"      CPU s per worker [{cpus}], coordinator {run['coordinator_cpu_s']:,.1f} s; "
            f"load average (1 min) {load[0]:.2f} before, {load[1]:.2f} after"
        )
        calls = run["coordinator_calls"]
        listed = ", ".join(f"{name} {n}" for name, n in sorted(calls.items(), key=lambda kv: -kv[1]))
        print(f"      coordinator's calls to the shards ({sum(calls.values())}): {listed}")
        for spent, total in zip(run["shard_method_cpu_s"], run["worker_cpu_s_by_address"] or [], strict=False):
            inside = ", ".join(f"{name} {t:.2f}" for name, t in sorted(spent.items(), key=lambda kv: -kv[1]))
            outside = total - sum(spent.values())
            print(f"      CPU s in shard methods ({sum(spent.values()):.1f} s; {outside:.1f} s outside them): {inside}")
    # Medians per worker count (a list such as 1,2,1,2 repeats them), and the speed-up of the median walls.
    by_workers: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        by_workers.setdefault(run["workers"], []).append(run)
    print("  medians per worker count:")
    for w, same in by_workers.items():
        wall = statistics.median(r["wall_s"] for r in same)
        worker = statistics.median(c for r in same for c in r["worker_cpu_s"])
        coordinator = statistics.median(r["coordinator_cpu_s"] for r in same)
        peak = statistics.median(p for r in same for p in r["worker_peak_bytes"]) / mib
        print(
            f"    {w} worker(s), {len(same)} run(s): wall {wall:.1f} s, CPU per worker {worker:.1f} s, "
            f"coordinator CPU {coordinator:.1f} s, peak per worker {peak:,.0f} MiB"
        )
    walls = {w: statistics.median(r["wall_s"] for r in same) for w, same in by_workers.items()}
    first = runs[0]["workers"]
    for w, wall in walls.items():
        if w != first:
            print(f"  speed-up {first} -> {w} workers (median walls): {walls[first] / wall:.2f}x")
    identical = len({run["digest"] for run in runs}) == 1
    print(f"  results identical across worker counts: {'yes' if identical else 'NO'}")
    if args.json:
        print(json.dumps(runs, indent=2))
    if args.profile:
        import pstats

        for i, run in enumerate(runs):
            print(f"coordinator profile, {run['workers']} worker(s) (top 25 by own time; {args.profile}.{i}):")
            pstats.Stats(f"{args.profile}.{i}").sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
