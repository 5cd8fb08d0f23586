"""Sweep throughput: cells per minute with a 2-worker process pool against 1 worker, measured in one run.

Run:  python tests/benchmarks/bench_sweep.py [--cells 20] [--replications 5] [--workers 2] [--repeat 1]

The sweep is 20 cells x 5 replications of the quickstart population (its customers, horizon and arms), with
the number of personas as the swept parameter. Each measurement writes into a fresh temporary directory, so
nothing is resumed. Aim: at least 1.8x with 2 workers on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import masssim

REPO = Path(__file__).resolve().parents[2]


def measure(workers: int, cells: int, replications: int) -> float:
    scenario = masssim.load_scenario(REPO / "scenarios" / "quickstart.toml")
    values = list(range(1, cells + 1))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        masssim.sweep(
            scenario,
            {"arms.personas.segments": values},
            replications=replications,
            seed=1,
            workers=workers,
            out=out,
        )
        elapsed = time.perf_counter() - start
    return cells / (elapsed / 60.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    one, many = [], []
    for _ in range(args.repeat):
        one.append(measure(1, args.cells, args.replications))
        many.append(measure(args.workers, args.cells, args.replications))
    base, fast = statistics.median(one), statistics.median(many)
    print(f"sweep of {args.cells} cells x {args.replications} replications (quickstart population)")
    print(f"  1 worker : {base:6.1f} cells/minute")
    print(f"  {args.workers} workers: {fast:6.1f} cells/minute")
    print(f"speed-up {fast / base:.2f}x   (aim: >= 1.8x with 2 workers; medians of {args.repeat} run(s))")


if __name__ == "__main__":
    main()
