"""Outbound engine speed: customer-touches per second, vectorised engine vs one SimPy process per customer.

Run:  python tests/benchmarks/bench_outbound.py [--customers 10000000] [--days 30] [--baseline-customers 20000]
      [--channels messaging,email]   (the vectorised arm with a channel preference order instead of email)
      [--prefault GIB]               (memory touched and freed before the vectorised simulation's clock starts)
      [--cold]                       (no warm-up run: the clock also counts loading the compiled kernels)

Both measurements run in this session, on the same model (email, a daily wave to every reachable customer,
fatigue, opens in active windows, clicks with affinity and warmth, unsubscribes, organic purchase occasions
with adstock), each in a fresh subprocess so that its peak memory is its own. The baseline simulates each
customer as a SimPy process drawing its own outcomes, the way a per-agent simulator would. The script prints
each figure and the ratio; the machine is shared, so repeat with --repeat and quote the median.

The CPU time of the simulation includes the kernel's, which is mostly memory touched for the first time; on
this project's virtual machine that costs about 8 s per GiB when the host has taken the memory back, against
under 0.1 s for memory still backed (``bench_first_touch.py``, docs/model.md §15.4). The script prints the
kernel's seconds and the page faults, and with ``--prefault GIB`` the vectorised child touches that much memory
and frees it before the population is built, so that the run reuses memory already backed (the allocator keeps
it, engine/allocator.py); the touching is timed apart and not counted. Quote which of the two a figure is.

Before its clock starts, the vectorised child runs a small simulation (20,000 customers, 3 days) that loads
numba's runtime and the compiled kernels' machine code from the cache: a fixed cost of a process's first calls
(0.2–0.3 s of CPU, printed), not of its touches, as a benchmark's warm-up rounds are not counted. With
``--cold`` the clock counts it, as every figure before session 18 did.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time

from bench_first_touch import prefault


def scenario_dict(customers: int, days: int, channels: list[str] | None = None) -> dict:
    arm = (
        {"name": "all", "policy": "random"}
        if not channels
        else {"name": "all", "policy": "random", "channels": channels}
    )
    return {
        "name": "bench_outbound",
        "seed": 1,
        "replications": 1,
        "horizon_days": days,
        "population": {"customers": customers},
        "holdout": {"share": 0.1},
        "arms": [arm],
    }


WARM_UP_CUSTOMERS = 20_000  # the run before the clock, which loads the compiled kernels (see --cold)


def measure_vectorised(
    customers: int, days: int, channels: list[str] | None = None, prefault_gib: float = 0.0, cold: bool = False
) -> dict:
    import masssim
    from masssim.engine.sim import ArmSimulation, build_world
    from masssim.model.streams import replication_sequence, root_sequence

    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    warm_up_s = None
    if not cold:  # numba's runtime and each kernel's machine code load at a process's first call (once)
        tw = time.process_time()
        tiny = masssim.scenario_from_dict(scenario_dict(WARM_UP_CUSTOMERS, min(days, 3), channels))
        ArmSimulation(tiny, build_world(tiny, replication_sequence(root_sequence(2), 0)), 0).run()
        warm_up_s = time.process_time() - tw
    touched_before = prefault(prefault_gib) if prefault_gib > 0 else None
    scenario = masssim.scenario_from_dict(scenario_dict(customers, days, channels))
    t0 = time.perf_counter()
    world = build_world(scenario, replication_sequence(root_sequence(1), 0))
    t1 = time.perf_counter()
    simulation = ArmSimulation(scenario, world, 0)
    cpu1, usage1 = time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
    metrics = simulation.run().metrics
    t2, cpu2 = time.perf_counter(), time.process_time()
    usage2 = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage2.ru_maxrss * 1024
    return {
        "touches": metrics["sends"],
        "population_s": t1 - t0,
        "simulate_s": t2 - t1,
        "simulate_cpu_s": cpu2 - cpu1,
        "simulate_system_cpu_s": usage2.ru_stime - usage1.ru_stime,
        "simulate_page_faults": usage2.ru_minflt - usage1.ru_minflt,
        "touched_before": touched_before,
        "warm_up_cpu_s": warm_up_s,
        "peak_bytes_per_customer": peak / customers,
        "peak_above_interpreter_bytes_per_customer": (peak - baseline_rss) / customers,
    }


def measure_per_customer(customers: int, days: int) -> dict:
    """The same model with one SimPy process per customer and scalar draws: the per-agent baseline."""
    import numpy as np
    import simpy

    import masssim
    from masssim.engine.sim import build_world
    from masssim.model.streams import replication_sequence, root_sequence

    scenario = masssim.scenario_from_dict(scenario_dict(customers, days))
    world = build_world(scenario, replication_sequence(root_sequence(1), 0))
    pop, cat = world.population, world.catalogue
    email = scenario.channels.email
    resp = scenario.response
    rng = np.random.default_rng(2)
    env = simpy.Environment()
    counts = {"touches": 0, "reads": 0, "clicks": 0, "purchases": 0}
    tau_f = resp.fatigue_time_constant_days * 86_400.0
    half_life = resp.adstock_half_life_days * 86_400.0
    offsets = (pop.region_utc_offset_hours - scenario.reference_utc_offset_hours) * 3600.0
    logit_cto = math.log(email.click_to_open / (1 - email.click_to_open))
    logit_unsub = math.log(email.unsubscribe_rate / (1 - email.unsubscribe_rate))
    horizon = days * 86_400.0

    def customer(i: int):  # type: ignore[no-untyped-def]
        fatigue, last_contact, adstock, adstock_t, subscribed = 0.0, 0.0, 0.0, 0.0, True
        reachable = bool(world.contactable[i]) and bool(pop.optin[i] & 1)
        rate_per_s = float(pop.category_rate[i]) / (365.25 * 86_400.0)
        next_occasion = rng.exponential(1.0 / rate_per_s) if rate_per_s > 0 else math.inf
        for day in range(days):
            send_at = day * 86_400.0 + scenario.schedule.send_hour * 3600.0 - offsets[pop.region[i]]
            while next_occasion < min(send_at, horizon):  # organic occasions before this wave
                yield env.timeout(max(next_occasion - env.now, 0.0))
                a = adstock * 2.0 ** (-(env.now - adstock_t) / half_life)
                p0 = float(pop.brand_prob[i, 0])
                if rng.random() < p0 + (1 - p0) * (1 - math.exp(-a)):
                    counts["purchases"] += 1
                next_occasion = env.now + rng.exponential(1.0 / rate_per_s)
            if not (reachable and subscribed) or send_at < 0:
                continue
            yield env.timeout(max(send_at - env.now, 0.0))
            counts["touches"] += 1
            fatigue = fatigue * math.exp(-(env.now - last_contact) / tau_f)
            last_contact = env.now
            u = rng.random()
            p_read = email.delivery_rate * email.open_rate * math.exp(-email.fatigue_open_kappa * fatigue)
            if u < p_read:
                counts["reads"] += 1
                creative = int(rng.integers(cat.count))
                affinity = float(pop.taste[i] @ cat.directions[creative])
                x = logit_cto + resp.affinity_click_beta * affinity + resp.warmth_click_delta * float(pop.warmth[i])
                x -= resp.fatigue_click_gamma * fatigue
                if rng.random() < 1 / (1 + math.exp(-x)):
                    counts["clicks"] += 1
                    adstock = adstock * 2.0 ** (-(env.now - adstock_t) / half_life) + email.adstock_per_click
                    adstock_t = env.now
            if u < email.delivery_rate:
                p_unsub = 1 / (1 + math.exp(-(logit_unsub + resp.fatigue_unsubscribe_zeta * fatigue)))
                if rng.random() < p_unsub:
                    subscribed = False
            fatigue += 1.0

    t0 = time.perf_counter()
    for i in range(pop.n):
        env.process(customer(i))
    env.run(until=horizon)
    elapsed = time.perf_counter() - t0
    return {"touches": counts["touches"], "simulate_s": elapsed}


def run_child(
    kind: str, customers: int, days: int, channels: str | None = None, prefault_gib: float = 0.0, cold: bool = False
) -> dict:
    order = ["--channels", channels] if channels else []
    warm = ["--prefault", str(prefault_gib)] if prefault_gib else []
    warm += ["--cold"] if cold else []
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--customers", str(customers), "--days", str(days), *order, *warm],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--baseline-customers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="measurements of each; medians are reported")
    parser.add_argument("--channels", help="a channel order for the vectorised arm, e.g. messaging,email")
    parser.add_argument(
        "--prefault",
        type=float,
        default=0.0,
        metavar="GIB",
        help="touch this many GiB and free it in the vectorised child before its clock starts (not counted)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up: the clock also counts loading the compiled kernels (by default a run of"
        f" {WARM_UP_CUSTOMERS:,} customers loads them first, not counted)",
    )
    parser.add_argument("--child", choices=["vectorised", "per_customer"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    channels = args.channels.split(",") if args.channels else None
    if args.child == "vectorised":
        print(json.dumps(measure_vectorised(args.customers, args.days, channels, args.prefault, args.cold)))
        return
    if args.child == "per_customer":
        print(json.dumps(measure_per_customer(args.customers, args.days)))
        return

    fast, slow = [], []
    for _ in range(args.repeat):
        fast.append(run_child("vectorised", args.customers, args.days, args.channels, args.prefault, args.cold))
        slow.append(run_child("per_customer", args.baseline_customers, args.days))
    fast_rate = statistics.median(r["touches"] / r["simulate_s"] for r in fast)
    slow_rate = statistics.median(r["touches"] / r["simulate_s"] for r in slow)
    peak = statistics.median(r["peak_bytes_per_customer"] for r in fast)
    peak_model = statistics.median(r["peak_above_interpreter_bytes_per_customer"] for r in fast)
    on = f"channel order {args.channels}" if args.channels else "email"
    touches = fast[0]["touches"]
    print(f"vectorised engine : {args.customers:,} customers x {args.days} days on {on}, {touches:,.0f} touches")
    print(f"  population built in {statistics.median(r['population_s'] for r in fast):.1f} s")
    cpu_rate = statistics.median(r["touches"] / r["simulate_cpu_s"] for r in fast)
    print(f"  simulated in        {statistics.median(r['simulate_s'] for r in fast):.1f} s")
    print(f"  customer-touches/s  {fast_rate:,.0f} wall, {cpu_rate:,.0f} per CPU-second   (aim: >= 20,000,000)")
    if args.cold:
        print("  the clock includes loading the compiled kernels (--cold)")
    else:
        warm = statistics.median(r["warm_up_cpu_s"] for r in fast)
        print(
            f"  warm-up             {warm:.2f} s of CPU: a run of {WARM_UP_CUSTOMERS:,} customers loads the compiled"
            " kernels first (not counted; --cold counts it)"
        )
    kernel = statistics.median(r["simulate_system_cpu_s"] for r in fast)
    faults = statistics.median(r["simulate_page_faults"] for r in fast)
    print(f"  of the CPU, kernel  {kernel:.2f} s ({faults:,.0f} page faults)")
    before = [r["touched_before"] for r in fast if r["touched_before"]]
    if before:
        gib = statistics.median(b["bytes"] for b in before) / 2**30
        per_gib = statistics.median(b["system_cpu_s"] for b in before) / gib
        print(f"  touched beforehand  {gib:.2f} GiB, {per_gib:.2f} s of kernel CPU per GiB (not counted above)")
    touched = " (the memory touched beforehand included: quote a run without --prefault)" if args.prefault else ""
    print(
        f"  peak memory         {peak:.0f} bytes/customer ({peak_model:.0f} above the bare interpreter; aim <= 120)"
        + touched
    )
    slow_touches = slow[0]["touches"]
    print(f"per-customer SimPy : {args.baseline_customers:,} customers x {args.days} days, {slow_touches:,.0f} touches")
    print(f"  customer-touches/s  {slow_rate:,.0f}")
    print(f"ratio vectorised / per-customer: {fast_rate / slow_rate:,.0f}x   (medians of {args.repeat} run(s))")


if __name__ == "__main__":
    main()
