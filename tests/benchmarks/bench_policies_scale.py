"""Targeting policies at scale: each policy at N customers x C creatives, and personas from k = 8 to 1:1.

Run:  python tests/benchmarks/bench_policies_scale.py [--customers 1000000] [--creatives 20000] [--days 14]
      [--policies broadcast,thompson,...] [--params '{"segments": 1000}'] [--crm-scores 2]
      [--segments-customers 1000000] [--no-segments] [--repeat 1]

Every measurement runs the real engine (``ArmSimulation``, as ``masssim run`` does, with one BLAS thread) in a
fresh subprocess, so its peak memory is its own. Per policy it prints the setup time (building the arm, the
policy's clustering included), the simulation's wall and CPU time, the peak RSS per customer, and the ratio of
the simulation time to ``broadcast`` measured in the same run. Then ``segments`` with k = 8 against k = N (every
customer its own persona; the population has two continuous CRM scores so that customers are distinct), optionally
with ``bespoke`` creatives (one generated per persona). The machine may be shared: quote the CPU time beside
the wall time, repeat with --repeat and quote medians.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

POLICIES = ("broadcast", "thompson", "linucb", "epsilon_greedy", "micro", "individual", "oracle")


def scenario_dict(customers: int, creatives: int, days: int, arm: dict, crm_scores: int) -> dict:
    return {
        "name": "bench_policies_scale",
        "seed": 1,
        "replications": 1,
        "horizon_days": days,
        "population": {"customers": customers, "crm_scores": crm_scores},
        "creatives": {"count": creatives},
        "holdout": {"share": 0.1},
        "arms": [{"name": "arm", **arm}],
    }


def measure(customers: int, creatives: int, days: int, arm: dict, crm_scores: int) -> dict:
    import masssim
    from masssim.engine.sim import ArmSimulation, build_world, one_blas_thread
    from masssim.model.streams import replication_sequence, root_sequence

    scenario = masssim.scenario_from_dict(scenario_dict(customers, creatives, days, arm, crm_scores))
    world = build_world(scenario, replication_sequence(root_sequence(1), 0))
    after_world = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with one_blas_thread():  # as every replication runs (engine.sim.simulate_replication)
        t0, c0 = time.perf_counter(), time.process_time()
        sim = ArmSimulation(scenario, world, 0)
        t1, c1 = time.perf_counter(), time.process_time()
        metrics = sim.run().metrics
        t2, c2 = time.perf_counter(), time.process_time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "sends": metrics["sends"],
        "clicks": metrics["clicks"],
        "setup_s": t1 - t0,
        "setup_cpu_s": c1 - c0,
        "simulate_s": t2 - t1,
        "simulate_cpu_s": c2 - c1,
        "peak_bytes_per_customer": peak / customers,
        "policy_peak_bytes_per_customer": (peak - after_world) / customers,
    }


def run_child(customers: int, creatives: int, days: int, arm: dict, crm_scores: int, timeout_s: float) -> dict:
    """One measurement in a fresh interpreter; one taking longer than ``timeout_s`` is reported as not finishing."""
    command = [
        sys.executable,
        __file__,
        "--child",
        json.dumps(arm),
        "--customers",
        str(customers),
        "--creatives",
        str(creatives),
        "--days",
        str(days),
        "--crm-scores",
        str(crm_scores),
    ]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout_s:.0f} s"}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(label: str, runs: list[dict], baseline: list[dict] | None) -> None:
    if any("error" in r for r in runs):
        print(f"{label:<28} failed: {next(r['error'] for r in runs if 'error' in r)}", flush=True)
        return
    line = (
        f"{label:<28} setup {median(runs, 'setup_s'):8.2f} s ({median(runs, 'setup_cpu_s'):8.2f} CPU)"
        f"  simulate {median(runs, 'simulate_s'):8.2f} s ({median(runs, 'simulate_cpu_s'):8.2f} CPU)"
        f"  peak {median(runs, 'peak_bytes_per_customer'):6.0f} B/customer"
        f" (+{median(runs, 'policy_peak_bytes_per_customer'):5.0f} after the population)"
    )
    if baseline and not any("error" in r for r in baseline):
        wall = median(runs, "simulate_s") / median(baseline, "simulate_s")
        cpu = median(runs, "simulate_cpu_s") / median(baseline, "simulate_cpu_s")
        line += f"  x{wall:5.2f} wall, x{cpu:5.2f} CPU"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--creatives", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated; broadcast always runs")
    parser.add_argument("--segments-customers", type=int, default=1_000_000, help="N of the k = 8 vs k = N runs")
    parser.add_argument("--segments-creatives", type=int, default=6, help="catalogue of the k = 8 vs k = N runs")
    parser.add_argument("--segments-k", type=int, default=0, help="k of the large run (default: N)")
    parser.add_argument("--bespoke", action="store_true", help="segments generate one creative per persona")
    parser.add_argument("--no-segments", action="store_true", help="skip the k = 8 vs k = N comparison")
    parser.add_argument("--repeat", type=int, default=1, help="measurements of each; medians are reported")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per measurement")
    parser.add_argument("--params", default="{}", help="JSON parameters given to every policy but broadcast")
    parser.add_argument(
        "--crm-scores", type=int, default=0, help="continuous CRM scores of the population (2: customers distinct)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        arm = json.loads(args.child)
        print(json.dumps(measure(args.customers, args.creatives, args.days, arm, args.crm_scores)))
        return

    def child(customers: int, creatives: int, arm: dict, crm_scores: int) -> dict:
        return run_child(customers, creatives, args.days, arm, crm_scores, args.timeout)

    policies = [p for p in args.policies.split(",") if p and p != "broadcast"]
    print(f"{args.customers:,} customers x {args.creatives:,} creatives x {args.days} daily waves", flush=True)
    params = json.loads(args.params)
    baseline = [child(args.customers, args.creatives, {"policy": "broadcast"}, args.crm_scores)]
    for _ in range(args.repeat - 1):
        baseline.append(child(args.customers, args.creatives, {"policy": "broadcast"}, args.crm_scores))
    report("broadcast", baseline, None)
    for name in policies:
        arm = {"policy": name, **params}
        runs = [child(args.customers, args.creatives, arm, args.crm_scores) for _ in range(args.repeat)]
        report(name, runs, baseline)

    if args.no_segments:
        return
    n = args.segments_customers
    big = args.segments_k or n
    c = args.segments_creatives
    print(f"segments: {n:,} customers (2 CRM scores) x {c:,} creatives x {args.days} daily waves", flush=True)
    small_arm = {"policy": "segments", "segments": 8, "bespoke": args.bespoke}
    big_arm = {"policy": "segments", "segments": big, "bespoke": args.bespoke}
    small = [child(n, c, small_arm, 2) for _ in range(args.repeat)]
    report("segments k=8", small, None)
    large = [child(n, c, big_arm, 2) for _ in range(args.repeat)]
    report(f"segments k={big:,}", large, small)
    if not any("error" in r for r in small + large):
        total = median(large, "setup_s") + median(large, "simulate_s")
        total_small = median(small, "setup_s") + median(small, "simulate_s")
        cpu = median(large, "setup_cpu_s") + median(large, "simulate_cpu_s")
        cpu_small = median(small, "setup_cpu_s") + median(small, "simulate_cpu_s")
        print(
            f"  setup + simulate, k={big:,} / k=8: x{total / total_small:.2f} wall, x{cpu / cpu_small:.2f} CPU"
            f"   (aim: <= 2, and < 500 B/customer)   (medians of {args.repeat} run(s))"
        )


if __name__ == "__main__":
    main()
