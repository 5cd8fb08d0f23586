"""Cost of the market section's tally (masssim.model.market): occasions tallied per second, and the final count.

Run:  python tests/benchmarks/bench_market.py [--customers 5000000] [--brands 5] [--days 28] [--purchases 6]

The tally runs inside the first arm of every replication, on the organic occasions the arm processes anyway:
its cost is one gather of the customers' brand probabilities, a cumulative sum over brands and an OR into a
uint32 per customer, per occasion; then one pass over the customers' masks at the end. This times both on
synthetic occasions at the given scale (a Poisson count per customer per day at the category rate, fed in
hourly buckets as the engine does), and prints occasions per second, the end-of-run count's time and the
tally's memory per customer. The machine is shared: repeat and quote the median.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from masssim.model.market import MarketTally


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5_000_000)
    parser.add_argument("--brands", type=int, default=5)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--purchases", type=float, default=6.0, help="category purchases per customer per year")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    n, j = args.customers, args.brands
    prob = rng.dirichlet(np.full(j, 0.3), n).astype(np.float32)
    tally = MarketTally(n, j, window_s=args.days * 86_400.0)
    per_day = args.purchases / 365.25
    occasions, spent = 0, 0.0
    for day in range(args.days):
        counts = rng.poisson(per_day, n)
        who = np.repeat(np.arange(n), counts)
        times = day * 86_400.0 + np.sort(rng.random(who.shape[0])) * 86_400.0
        order = rng.permutation(who.shape[0])  # customers in random order within the day, times ascending
        who = who[order]
        uniform = rng.random(who.shape[0])
        edges = np.searchsorted(times, day * 86_400.0 + 3_600.0 * np.arange(25))
        started = time.perf_counter()
        for lo, hi in itertools.pairwise(edges):  # hourly buckets, as the engine feeds them
            tally.add(who[lo:hi], times[lo:hi], prob, uniform[lo:hi])
        spent += time.perf_counter() - started
        occasions += who.shape[0]
    started = time.perf_counter()
    counts_out = tally.finish()
    finish_s = time.perf_counter() - started
    print(f"customers {n:,}, brands {j}, days {args.days}: {occasions:,} occasions")
    print(f"tally: {occasions / spent:,.0f} occasions per second ({spent:.2f} s)")
    print(f"finish: {finish_s:.2f} s; memory {tally.brands_bought.nbytes / n:.0f} bytes per customer")
    print(f"category buyers {counts_out.category_buyers:,}")


if __name__ == "__main__":
    main()
