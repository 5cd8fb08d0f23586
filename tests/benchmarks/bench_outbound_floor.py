"""The floor under bench_outbound.py's rate: what the outbound engine must do per touch whatever the code.

Run:  python tests/benchmarks/bench_outbound_floor.py [--customers 3000000] [--repeat 5]

A run's bytes fix some work: the numbers drawn from each chunk's numpy stream (their values and order are the
model, docs/model.md §16.4), and each read's look-up of the reader's row (taste, window, warmth) in send order.
This script runs the benchmark's scenario once to count, per touch, the reads, pre-fetch candidates and
organic occasions, then times each such unavoidable piece alone, at its real size, and prints its CPU
nanoseconds per touch beside the whole simulation's. The sum is a lower bound for the engine as long as its
results stay byte-identical: those draws cannot be made cheaper without numpy's own samplers, and the
look-ups are memory-bound. Medians of ``--repeat`` timings; CPU time (the machine is shared).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from bench_outbound import scenario_dict


def cpu_median(work, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import masssim
    from masssim.engine import kernels
    from masssim.engine.chunks import CUSTOMER_CHUNK
    from masssim.engine.organic import BLOCK_S, YEAR_S
    from masssim.engine.sim import ArmSimulation, build_world
    from masssim.model.streams import replication_sequence, root_sequence

    scenario = masssim.scenario_from_dict(scenario_dict(args.customers, 30))
    world = build_world(scenario, replication_sequence(root_sequence(1), 0))
    simulation = ArmSimulation(scenario, world, 0)
    cpu = time.process_time()
    metrics = simulation.run().metrics
    simulate_cpu = time.process_time() - cpu
    touches = metrics["sends"]
    reads = metrics["reads"]
    pop = world.population
    email = scenario.channels.email
    weeks = int(np.ceil(scenario.horizon_days * 86_400.0 / BLOCK_S))
    occasions_per_week = float(pop.category_rate.astype(np.float64).sum()) * BLOCK_S / YEAR_S
    # Read candidates that fatigue kept unread draw a pre-fetch coin (under the read bound, not read).
    coins = touches * email.delivery_rate * email.open_rate - reads if email.recorded_open_inflation > 0 else 0.0

    rng = np.random.Generator(np.random.PCG64(7))
    out32 = np.empty(CUSTOMER_CHUNK, np.float32)
    out64 = np.empty(CUSTOMER_CHUNK, np.float64)
    chunks = (1 << 22) // CUSTOMER_CHUNK

    def uniforms32() -> None:  # a read's jitter, a pre-fetch coin: chunk slices in place
        for _ in range(chunks):
            rng.random(dtype=np.float32, out=out32)

    def uniforms64() -> None:  # a send's draw, which carries its uniform and its unsubscribe's (§4.8)
        for _ in range(chunks):
            rng.random(out=out64)

    def normals32() -> None:  # a read's log-normal delay
        for _ in range(chunks):
            rng.standard_normal(dtype=np.float32, out=out32)

    rows = chunks * CUSTOMER_CHUNK
    per_uniform = cpu_median(uniforms32, args.repeat) / rows
    per_draw = cpu_median(uniforms64, args.repeat) / rows
    per_normal = cpu_median(normals32, args.repeat) / rows

    chunk_rate = float(pop.category_rate[:CUSTOMER_CHUNK].astype(np.float64).sum()) * (BLOCK_S / YEAR_S)

    def occasions_week() -> None:  # a chunk's week (§5.1): one Poisson total, then per occasion its point on
        m = int(rng.poisson(chunk_rate))  # the running sum of rates (sorted), its time and its choice uniform
        np.sort(rng.random(m))
        rng.random(m)
        rng.random(m)

    per_customer_week = cpu_median(lambda: [occasions_week() for _ in range(8)], args.repeat) / (8 * CUSTOMER_CHUNK)

    # Reads in send order: a block's rows sorted by region group (customers ascending within each), a read
    # among them at the run's read rate; the loop gathers each reader's row and does nothing else.
    plan = np.flatnonzero(world.contactable)[: 1 << 20]
    plan = plan[np.argsort(pop.region[plan], kind="stable")]
    readers = plan[rng.random(plan.shape[0]) < reads / touches].astype(np.int32)
    n_read = readers.shape[0]
    jitter = rng.random(n_read).astype(np.float32)
    fatigue = np.zeros(n_read, np.float32)
    creative = np.zeros(n_read, np.int32)
    read_at = rng.random(n_read) * 86_400.0
    coefficients = np.ones(4, np.float32)
    quality = np.zeros(world.catalogue.count, np.float32)

    def read_kernel() -> None:
        kernels.read_outcomes(
            read_at,
            readers,
            creative,
            fatigue,
            jitter,
            pop.region,
            simulation.sender.region_rel_s,
            pop.active_start_hour,
            pop.active_hours,
            pop.taste,
            world.catalogue.directions,
            quality,
            pop.warmth,
            coefficients,
        )

    per_read = cpu_median(read_kernel, args.repeat) / n_read

    floor = {
        "one float64 draw per send (SEND: its uniform and the unsubscribe's)": per_draw * touches,
        "a normal and a uniform per read (READ_DELAY, ACTIVE_WINDOW)": (per_normal + per_uniform) * reads,
        "a pre-fetch coin per unread read candidate": per_uniform * coins,
        "a week's occasions: a Poisson total per chunk, three uniforms per occasion, points sorted": (
            per_customer_week * pop.n * weeks
        ),
        "the read kernel (each reader's row, in send order)": per_read * reads,
    }
    ns = 1e9 / touches
    print(f"{args.customers:,} customers, {touches:,.0f} touches, {reads / touches:.3f} reads per touch,")
    occasions = occasions_per_week * weeks / touches
    print(f"{pop.n * weeks / touches:.3f} customer-weeks and {occasions:.3f} occasions per touch")
    print(f"whole simulation: {simulate_cpu * ns:.1f} CPU ns per touch ({touches / simulate_cpu:,.0f} per CPU-second)")
    for name, seconds in floor.items():
        print(f"  {seconds * ns:5.1f} ns/touch  {name}")
    total = sum(floor.values()) * ns
    print(f"  {total:5.1f} ns/touch  floor: at most {1e9 / total:,.0f} touches per CPU-second with these results")


if __name__ == "__main__":
    main()
