"""The brief's own scale: 95 million customers, 20,000 creatives, a daily email wave for 30 days.

Run:  python tests/benchmarks/bench_seed_scale.py [--customers 95000000] [--small 10000000]
                                                 [--creatives 20000] [--days 30]
                                                 [--policy broadcast] [--policy segments:1000]

Each measurement runs in a fresh subprocess (so its peak memory is its own) through the same code path as
``masssim run``: ``masssim.run`` on one replication, then ``RunResult.save`` (summary.json, timeseries.csv and
the report are written, to a temporary directory removed afterwards). Email's capacity is raised so that
everyone can be sent every day. For each policy the script prints wall time, CPU time (the machine is shared:
CPU time is what the engine itself used), customer-touches per second, peak RSS in GiB and in bytes per
customer, and the same at the smaller N, with the ratio of the two rates: how well the engine scales with N.

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


def _resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def measure(customers: int, creatives: int, days: int, policy: str) -> dict:
    import masssim
    from masssim.engine import sim

    scenario = masssim.scenario_from_dict(scenario_dict(customers, creatives, days, policy))
    clock = PhaseClock()
    clock.wrap(sim, "generate_population", "population")
    clock.wrap(sim, "ArmSimulation", "world + policy set-up")  # holdout, creatives; the arm's state and policy
    interpreter_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sampler = RssSampler()
    sampler.start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = masssim.run(scenario, replications=1, seed=1)
    ran = (time.perf_counter(), time.process_time(), _resident_bytes())
    simulated_wall, simulated_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    with tempfile.TemporaryDirectory() as out:
        run_dir = result.save(out)
        saved = (run_dir / "summary.json").exists()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
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
        "simulate_wall_s": simulated_wall,
        "simulate_cpu_s": simulated_cpu,
        "peak_bytes": peak,
        "interpreter_bytes": interpreter_rss,
        "summary_written": saved,
        "rss_timeline": samples[:: max(1, len(samples) // 40)],
        "phases": phases,
    }


def run_child(customers: int, creatives: int, days: int, policy: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--customers",
            str(customers),
            "--creatives",
            str(creatives),
            "--days",
            str(days),
            "--policy",
            policy,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {"customers": customers, "failed": (out.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe(label: str, r: dict) -> str:
    if "failed" in r:
        return f"  {label:>12} customers: FAILED ({r['failed']})"
    gib = r["peak_bytes"] / 2**30
    per_customer = r["peak_bytes"] / r["customers"]
    return (
        f"  {label:>12} customers: wall {r['wall_s']:7.1f} s, CPU {r['cpu_s']:7.1f} s"
        f" (simulation {r['simulate_wall_s']:.1f} s wall, {r['simulate_cpu_s']:.1f} s CPU),"
        f" {r['touches'] / r['simulate_cpu_s']:,.0f} touches per CPU-second,"
        f" peak {gib:.2f} GiB = {per_customer:.0f} B/customer"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=95_000_000)
    parser.add_argument("--small", type=int, default=10_000_000, help="the smaller N measured beside it")
    parser.add_argument("--creatives", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--policy", action="append", help="broadcast, segments:K, ... (repeatable)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timeline", action="store_true", help="print resident memory over time")
    args = parser.parse_args()
    policies = args.policy or ["broadcast", "segments:1000"]
    if args.child:
        print(json.dumps(measure(args.customers, args.creatives, args.days, policies[0])))
        return

    print(f"{args.creatives:,} creatives, {args.days} daily email waves, 1 replication, summary written")
    for policy in policies:
        small = run_child(args.small, args.creatives, args.days, policy)
        big = run_child(args.customers, args.creatives, args.days, policy)
        print(f"{policy}:")
        for size, r in ((args.small, small), (args.customers, big)):
            print(describe(f"{size:,}", r))
            for label, w, c, rss in r.get("phases", []):
                at_end = f", RSS {rss / 2**30:.2f} GiB at its end" if rss else ""
                print(f"    {label:>22}: wall {w:6.1f} s, CPU {c:6.1f} s{at_end}")
        if "failed" not in small and "failed" not in big:
            small_rate = small["touches"] / small["simulate_cpu_s"]
            big_rate = big["touches"] / big["simulate_cpu_s"]
            print(
                f"  touches per CPU-second at {args.customers:,} / at {args.small:,}: {big_rate / small_rate:.2f}"
                f"   (aims at {args.customers:,}: wall < 120 s -> {big['wall_s']:.0f} s;"
                f" peak < 16 GB -> {big['peak_bytes'] / 1e9:.1f} GB)"
            )
            if args.timeline:
                for t, rss in big["rss_timeline"]:
                    print(f"    t = {t:6.1f} s  RSS {rss / 2**30:6.2f} GiB")


if __name__ == "__main__":
    main()
