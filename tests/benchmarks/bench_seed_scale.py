"""The brief's own scale: 95 million customers, 20,000 creatives, a daily email wave for 30 days.

Run:  python tests/benchmarks/bench_seed_scale.py [--customers 95000000] [--small 10000000]
                                                 [--creatives 20000] [--days 30]
                                                 [--policy broadcast] [--policy segments:1000]
                                                 [--engine threads|dask --workers 2]

Each measurement runs in a fresh subprocess (so its peak memory is its own) through the same code path as
``masssim run``: ``masssim.run`` on one replication, then ``RunResult.save`` (summary.json, timeseries.csv and
the report are written, to a temporary directory removed afterwards). Email's capacity is raised so that
everyone can be sent every day. For each policy the script prints wall time, CPU time (the machine is shared:
CPU time is what the engine itself used), customer-touches per second, peak RSS in GiB and in bytes per
customer, and the same at the smaller N, with the ratio of the two rates: how well the engine scales with N.

With ``--engine dask --workers W`` the replication runs on the sharded engine (docs/model.md §16), one shard
per worker on masssim's own LocalCluster of W worker processes: ``masssim.run(..., engine="dask",
workers=W, shards=W)``, the path of ``masssim run --engine dask --workers W --shards W``. Beside the
coordinator's (this process: the clock, the policy, Dask's scheduler and client) it prints each worker
process's CPU time and peak RSS since it started (read on the workers just before the cluster closes), and
the SUM of every process's peak: the machine's memory is what the 16 GB aim is about (the sum of the peaks
bounds the peak of the sum from above). With ``--engine threads --workers W`` the same sharded engine runs in
this process, its W shards on W threads (``masssim run --workers W --shards W`` on the local engine): no
cluster, no copies between processes. The single-process path (``--engine local``, the default) is as it
was.

Memory first touched costs kernel time, and on a virtual machine whose host takes freed memory back (this
project's does: virtio-balloon free page reporting) it costs far more than on bare metal: about 8 s of kernel
CPU per GiB, against under 0.1 s for memory the guest still has (``bench_first_touch.py``, docs/model.md
§15.4). So each line gives the kernel's share of the CPU and the page faults. ``--prefault GIB`` (local and
threads engines) touches that much memory in the measuring process and frees it before the clock starts; the
allocator keeps it (engine/allocator.py), so the run then reuses memory the host already backs and its
kernel time is nearly nil; the line "touched beforehand" gives the kernel time per GiB the host charged in
the same run. That is not all of the host's effect: in session 9 the user CPU was higher on memory touched
beforehand than cold (§15.4). The peak then holds the memory touched, and the ratio to the smaller N (run
cold) is not given. Quote both kinds of run, and say which is which.

Aims (issue 9): under 2 minutes wall and under 16 GB peak at 95M customers, for ``broadcast`` and for
``segments`` with 1,000 personas.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time

from bench_first_touch import prefault


def scenario_dict(customers: int, creatives: int, days: int, policy: str) -> dict:
    name, _, k = policy.partition(":")
    arm: dict = {"name": policy.replace(":", "_"), "policy": name}
    if name == "segments" and k:
        arm["segments"] = int(k)
    return {
        "name": "bench_seed_scale",
        "seed": 1,
        "replications": 1,
        "horizon_days": days,
        "population": {"customers": customers},
        "creatives": {"count": creatives},
        # Everyone can be sent every day: a whole wave leaves within the day.
        "channels": {"email": {"capacity_per_hour": 1e9}},
        "holdout": {"share": 0.1},
        "arms": [arm],
    }


class RssSampler(threading.Thread):
    """Resident memory over time (every 0.25 s), to tell the population, policy set-up and waves apart."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()
        self._t0 = time.perf_counter()

    def run(self) -> None:
        page = resource.getpagesize()
        while not self._halt.wait(0.25):
            with open("/proc/self/statm") as handle:
                resident = int(handle.read().split()[1]) * page
            self.samples.append((time.perf_counter() - self._t0, resident))

    def stop(self) -> list[tuple[float, int]]:
        self._halt.set()
        self.join()
        return self.samples


class PhaseClock:
    """Wall and CPU time at the end of the population build and of the policy's set-up, read by wrapping
    the two functions the engine calls for them (the run itself is the unchanged ``masssim.run``)."""

    def __init__(self) -> None:
        self.marks: dict[str, tuple[float, float, int]] = {}

    def wrap(self, module: object, name: str, label: str) -> None:
        inner = getattr(module, name)

        def timed(*args: object, **kwargs: object) -> object:
            out = inner(*args, **kwargs)
            self.marks[label] = (time.perf_counter(), time.process_time(), _resident_bytes())
            return out

        setattr(module, name, timed)


def _huge_page_bytes() -> int:
    """Resident anonymous memory in 2 MiB pages (random access to gigabyte arrays costs less in TLB misses)."""
    try:
        with open("/proc/self/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def _worker_usage() -> tuple[float, int]:
    """On a Dask worker: the CPU seconds of its whole process since it started (every thread) and its peak
    resident bytes (VmHWM)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return time.process_time(), peak


def _read_workers(at_start: dict[str, tuple[float, int]], at_end: dict[str, tuple[float, int]]) -> None:
    """Read every worker's usage once its cluster has started and again as masssim's executor closes it (the
    cluster ``masssim.run`` starts itself), so the run itself takes the path of ``masssim run`` unchanged."""
    from masssim.experiments import replications

    start, close = replications.Executor._start_dask, replications.Executor.__exit__

    def start_then_read(self: replications.Executor) -> None:
        start(self)
        at_start.update(self._client.run(_worker_usage))

    def read_then_close(self: replications.Executor, *exc: object) -> None:
        client = getattr(self, "_client", None)
        if client is not None and not any(exc):
            at_end.update(client.run(_worker_usage))
        close(self, *exc)

    replications.Executor._start_dask = start_then_read  # type: ignore[method-assign]
    replications.Executor.__exit__ = read_then_close  # type: ignore[method-assign]


def measure(
    customers: int,
    creatives: int,
    days: int,
    policy: str,
    engine: str = "local",
    workers: int = 1,
    prefault_gib: float = 0.0,
) -> dict:
    import masssim
    from masssim.engine import sim

    scenario = masssim.scenario_from_dict(scenario_dict(customers, creatives, days, policy))
    clock = PhaseClock()
    workers_started: dict[str, tuple[float, int]] = {}
    workers_usage: dict[str, tuple[float, int]] = {}
    if engine == "local":
        clock.wrap(sim, "generate_population", "population")
        clock.wrap(sim, "ArmSimulation", "world + policy set-up")  # holdout, creatives; the arm's state and policy
        options: dict = {}
    elif engine == "threads":
        from masssim.engine import sharded
        from masssim.experiments import replications

        # The shards' customers (built at once on the threads), then the arm's set-up.
        clock.wrap(replications.Executor, "_open_shards", "shards built")
        clock.wrap(sharded, "ShardedArm", "policy set-up")
        options = {"engine": "local", "workers": workers, "shards": workers}
    else:
        from masssim.engine import sharded
        from masssim.experiments import replications

        # The cluster's start and the shards' customers (built on the workers), then the arm's set-up here.
        clock.wrap(replications.Executor, "_open_shards", "cluster + shards built")
        clock.wrap(sharded, "ShardedArm", "policy set-up")
        _read_workers(workers_started, workers_usage)
        options = {"engine": "dask", "workers": workers, "shards": workers}
    interpreter_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    touched_before = prefault(prefault_gib) if prefault_gib > 0 else None
    sampler = RssSampler()
    sampler.start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    result = masssim.run(scenario, replications=1, seed=1, **options)
    ran = (time.perf_counter(), time.process_time(), _resident_bytes())
    huge_pages = _huge_page_bytes()
    simulated_wall, simulated_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    with tempfile.TemporaryDirectory() as out:
        run_dir = result.save(out)
        saved = (run_dir / "summary.json").exists()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    # The kernel's share of the CPU and the page faults (memory touched for the first time, engine/allocator.py).
    usage = resource.getrusage(resource.RUSAGE_SELF)
    system, faults = usage.ru_stime - usage0.ru_stime, usage.ru_minflt - usage0.ru_minflt
    samples = sampler.stop()
    phases, last = [], (wall0, cpu0)
    for label, (w, c, rss) in [
        *clock.marks.items(),
        ("simulation", ran),
        ("summary and save", (wall0 + wall, cpu0 + cpu, 0)),
    ]:
        phases.append((label, w - last[0], c - last[1], rss))
        last = (w, c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    arm = result.summary["arms"][scenario.arms[0].name]
    return {
        "customers": customers,
        "touches": arm["sends"]["mean"],
        "wall_s": wall,
        "cpu_s": cpu,
        "system_cpu_s": system,
        "page_faults": faults,
        "huge_page_bytes": huge_pages,
        "touched_before": touched_before,
        "simulate_wall_s": simulated_wall,
        "simulate_cpu_s": simulated_cpu,
        "peak_bytes": peak,
        "interpreter_bytes": interpreter_rss,
        "summary_written": saved,
        "rss_timeline": samples[:: max(1, len(samples) // 40)],
        "phases": phases,
        "engine": engine,
        # Per worker process (sorted by address): CPU seconds from its cluster's start to the run's end (its
        # own start-up, the interpreter and Dask, left out; importing masssim is in) and peak resident bytes.
        "workers": [[workers_usage[w][0] - workers_started[w][0], workers_usage[w][1]] for w in sorted(workers_usage)],
    }


def run_child(**case: object) -> dict:
    """``measure(**case)`` in a fresh subprocess, so that its peak memory is its own."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(case)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"customers": case["customers"], "failed": (out.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def total_cpu_s(r: dict) -> float:
    """CPU seconds of every process of the run: this one's simulation and, sharded, each worker's."""
    return r["simulate_cpu_s"] + sum(cpu for cpu, _ in r.get("workers", []))


def total_peak_bytes(r: dict) -> int:
    """The sum of every process's peak resident bytes (one process: its own)."""
    return r["peak_bytes"] + sum(peak for _, peak in r.get("workers", []))


def describe(label: str, r: dict) -> str:
    if "failed" in r:
        return f"  {label:>12} customers: FAILED ({r['failed']})"
    peak = total_peak_bytes(r)
    gib = 2**30
    if not r.get("workers"):
        line = (
            f"  {label:>12} customers: wall {r['wall_s']:7.1f} s, CPU {r['cpu_s']:7.1f} s"
            f" ({r['system_cpu_s']:.1f} s of it in the kernel, {r['page_faults']:,} page faults;"
            f" simulation {r['simulate_wall_s']:.1f} s wall, {r['simulate_cpu_s']:.1f} s CPU),"
            f" {r['touches'] / r['simulate_cpu_s']:,.0f} touches per CPU-second,"
            f" peak {peak / gib:.2f} GiB = {peak / r['customers']:.0f} B/customer"
            f" ({r['huge_page_bytes'] / gib:.2f} GiB in huge pages at the simulation's end)"
        )
        before = r.get("touched_before")
        if before:
            gibs = before["bytes"] / gib
            line += (
                f"\n  {'':>12}   touched beforehand (not in the times above; the peak and RSS include it):"
                f" {gibs:.2f} GiB in {before['wall_s']:.1f} s wall, {before['system_cpu_s']:.1f} s of kernel CPU"
                f" ({before['system_cpu_s'] / gibs:.2f} s per GiB)"
            )
        return line
    workers = "; ".join(
        f"worker {i}: CPU {cpu:.1f} s, peak {p / gib:.2f} GiB" for i, (cpu, p) in enumerate(r["workers"])
    )
    return (
        f"  {label:>12} customers: wall {r['wall_s']:7.1f} s (simulation {r['simulate_wall_s']:.1f} s),"
        f" CPU of every process {total_cpu_s(r):.1f} s, {r['touches'] / total_cpu_s(r):,.0f} touches per"
        f" CPU-second, SUM of the peaks {peak / gib:.2f} GiB = {peak / r['customers']:.0f} B/customer"
        f"\n  {'':>12}   coordinator: CPU {r['cpu_s']:.1f} s (simulation {r['simulate_cpu_s']:.1f} s), peak"
        f" {r['peak_bytes'] / gib:.2f} GiB; {workers}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=95_000_000)
    parser.add_argument("--small", type=int, default=10_000_000, help="the smaller N measured beside it")
    parser.add_argument("--creatives", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--policy", action="append", help="broadcast, segments:K, ... (repeatable)")
    parser.add_argument(
        "--engine",
        choices=("local", "threads", "dask"),
        default="local",
        help="local: one process (default); threads: the sharded engine in this process, one shard per thread;"
        " dask: the sharded engine, one shard per worker",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="with --engine threads or dask: threads or worker processes (= shards)"
    )
    parser.add_argument(
        "--prefault",
        type=float,
        default=0.0,
        metavar="GIB",
        help="local and threads engines: touch this many GiB and free it before the clock starts (the run then"
        " reuses memory already backed; the cost of touching it is printed apart)",
    )
    parser.add_argument("--child", metavar="CASE", help=argparse.SUPPRESS)  # measure()'s arguments, as JSON
    parser.add_argument("--timeline", action="store_true", help="print resident memory over time")
    args = parser.parse_args()
    policies = args.policy or ["broadcast", "segments:1000"]
    if args.prefault and args.engine == "dask":
        parser.error("--prefault touches memory in this process; the Dask workers are other processes")
    if args.child:
        print(json.dumps(measure(**json.loads(args.child))))
        return

    workers = 1 if args.engine == "local" else args.workers
    where = {
        "local": "one process",
        "threads": f"one process, {workers} threads, one shard each",
        "dask": f"Dask, {workers} workers, one shard each",
    }[args.engine]
    print(f"{args.creatives:,} creatives, {args.days} daily email waves, 1 replication, summary written; {where}")
    for policy in policies:
        case = {"creatives": args.creatives, "days": args.days, "policy": policy, "engine": args.engine}
        small = run_child(customers=args.small, workers=workers, **case)
        big = run_child(customers=args.customers, workers=workers, prefault_gib=args.prefault, **case)
        print(f"{policy}:")
        for size, r in ((args.small, small), (args.customers, big)):
            print(describe(f"{size:,}", r))
            for label, w, c, rss in r.get("phases", []):
                at_end = f", RSS {rss / 2**30:.2f} GiB at its end" if rss else ""
                print(f"    {label:>22}: wall {w:6.1f} s, CPU {c:6.1f} s{at_end}")
        if "failed" not in small and "failed" not in big:
            small_rate = small["touches"] / total_cpu_s(small)
            big_rate = big["touches"] / total_cpu_s(big)
            # Only the larger N is run on memory touched beforehand: a ratio would compare it with a cold run,
            # and its peak holds what was touched, so the memory aim is read from a run without --prefault.
            ratio = (
                "not compared (only the larger N ran on memory touched beforehand)"
                if args.prefault
                else f"{big_rate / small_rate:.2f}"
            )
            peak = "see a run without --prefault" if args.prefault else f"{total_peak_bytes(big) / 1e9:.1f} GB"
            print(
                f"  touches per CPU-second at {args.customers:,} / at {args.small:,}: {ratio}"
                f"   (aims at {args.customers:,}: wall < 120 s -> {big['wall_s']:.0f} s; peak < 16 GB -> {peak})"
            )
            if args.timeline:
                for t, rss in big["rss_timeline"]:
                    print(f"    t = {t:6.1f} s  RSS {rss / 2**30:6.2f} GiB")


if __name__ == "__main__":
    main()
