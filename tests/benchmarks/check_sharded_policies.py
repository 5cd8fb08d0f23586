"""The policies that plan on the coordinator, sharded on Dask worker processes: summary.json bytes against one process.

Run:  python tests/benchmarks/check_sharded_policies.py [--workers 1,4] [--shards 4] [--seed 3]

Kept out of the test run (a few minutes). Two scenarios large enough for several 65,536-customer chunks, so
every shard holds customers: ``learners`` (270,000 customers, 2 CRM scores, 5% declared taste at the start;
``oracle``, ``linucb``, ``micro``, ``thompson``, ``uplift``, ``individual`` and ``segments``, 14 days) and the
gallery's ``declared_data_loop`` at 200,000 customers for 14 days with 2% declared at the start (its
``individual`` arm reads the taste captured in conversations). Each runs one replication in one process,
then with ``engine="dask", shards=N`` on a local cluster of each number of worker processes; the script
prints the first 16 hex digits of each summary's sha256 and exits with status 1 if a sharded summary differs.

Beside each run's wall time it prints each arm's wall and CPU time (this process's plus every Dask worker's,
from the cluster's start on): from the arm's first progress report to the next arm's (or the run's end), so an
arm's time holds its last feedback, its totals and the next arm's set-up; the time before the first arm's
first report (starting the cluster, building the customers) is ``set-up``. On a shared machine the CPU times
are the figures to read.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import time
from typing import Any

import masssim
from masssim.experiments import replications
from masssim.reporting.results import dumps_json

LEARNERS = {
    "name": "learners",
    "replications": 1,
    "horizon_days": 14,
    "population": {"customers": 270_000, "crm_scores": 2, "declared_taste_share": 0.05},
    "schedule": {"wave_every_days": 2},
    "arms": [
        {"name": "oracle", "policy": "oracle"},
        {"name": "linucb", "policy": "linucb"},
        {"name": "micro", "policy": "micro", "segments": 16},
        {"name": "thompson", "policy": "thompson", "segments": 4},
        {"name": "uplift", "policy": "uplift"},
        {"name": "individual", "policy": "individual"},
        {"name": "segments", "policy": "segments", "segments": 8},
    ],
}


def scenarios() -> dict[str, masssim.Scenario]:
    loop = masssim.load_scenario(masssim.resolve_scenario("declared_data_loop"))
    population = loop.population.model_copy(update={"customers": 200_000, "declared_taste_share": 0.02})
    return {
        "learners": masssim.scenario_from_dict(LEARNERS),
        "declared_data_loop (200,000 customers, 14 days)": loop.model_copy(
            update={"population": population, "horizon_days": 14}
        ),
    }


def _cpu_s() -> float:
    return time.process_time()


class ArmClock:
    """Wall time and CPU time (this process's, plus every Dask worker's when the run has them) when the run's
    progress (its completed share) first enters each arm's share (arm k of n reports shares from k/n on), and
    at the run's end (read as masssim's executor closes its cluster, before the workers go)."""

    def __init__(self, arms: int) -> None:
        self.arms = arms
        self.marks: dict[int, tuple[float, float]] = {}
        self.client: Any = None
        self.end: tuple[float, float] | None = None
        self.start = self.now()

    def now(self) -> tuple[float, float]:
        workers = 0.0 if self.client is None else sum(self.client.run(_cpu_s).values())
        return time.perf_counter(), time.process_time() + workers

    def __call__(self, share: float) -> None:
        arm = min(int(share * self.arms), self.arms - 1)
        if arm not in self.marks:
            self.marks[arm] = self.now()

    def watch(self) -> None:
        """Follow masssim's executor: its cluster's client once started (the workers' CPU is counted from
        then: their start-up is not the run's), and the end mark as it closes."""
        clock = self

        def start_then_read(executor: replications.Executor) -> None:
            START_DASK(executor)
            clock.client = executor._client
            wall, cpu = clock.start
            clock.start = (wall, cpu - sum(clock.client.run(_cpu_s).values()))

        def read_then_close(executor: replications.Executor, *exc: object) -> None:
            clock.end = clock.now()
            clock.client = None
            EXIT(executor, *exc)

        replications.Executor._start_dask = start_then_read  # type: ignore[method-assign]
        replications.Executor.__exit__ = read_then_close  # type: ignore[method-assign]

    def describe(self, names: list[str]) -> str:
        marks = [self.marks.get(k) for k in range(self.arms)]
        if any(m is None for m in marks) or self.end is None:
            return "(arms not timed)"
        points = [self.start] + [m for m in marks if m is not None] + [self.end]
        spans = [(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(points)]
        labels = ["set-up", *names]
        parts = [f"{label} {wall:.1f}/{cpu:.1f}" for label, (wall, cpu) in zip(labels, spans, strict=True)]
        return "s wall/CPU of every process, per arm: " + ", ".join(parts)


START_DASK = replications.Executor._start_dask
EXIT = replications.Executor.__exit__


def summary_digest(scenario: masssim.Scenario, seed: int, **options: object) -> tuple[str, float, str]:
    """The summary's digest, the run's wall time and its times per arm."""
    clock = ArmClock(len(scenario.arms))
    clock.watch()
    result = masssim.run(scenario, replications=1, seed=seed, progress=clock, **options)  # type: ignore[arg-type]
    text = dumps_json(result.summary)
    wall = (clock.end or clock.now())[0] - clock.start[0]
    return hashlib.sha256(text.encode()).hexdigest()[:16], wall, clock.describe([arm.name for arm in scenario.arms])


def warm_up(scenario: masssim.Scenario, seed: int) -> None:
    """Not timed: the scenario at 20,000 customers for 2 days in this process, so numba's compiled kernels
    are in its cache before the first timed run (else the one-process run pays for compiling them)."""
    population = scenario.population.model_copy(update={"customers": 20_000})
    masssim.run(scenario.model_copy(update={"population": population, "horizon_days": 2}), replications=1, seed=seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4", help="worker process counts, comma-separated")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    differ = False
    for name, scenario in scenarios().items():
        warm_up(scenario, args.seed)
        one, seconds, per_arm = summary_digest(scenario, args.seed)
        print(f"{name}: one process {one} ({seconds:.0f} s)\n    {per_arm}", flush=True)
        for workers in (int(w) for w in args.workers.split(",")):
            options = {"engine": "dask", "workers": workers, "shards": args.shards}
            got, seconds, per_arm = summary_digest(scenario, args.seed, **options)
            differ |= got != one
            same = "same" if got == one else "DIFFERENT"
            print(f"  {workers} worker(s), {args.shards} shards: {got} {same} ({seconds:.0f} s)", flush=True)
            print(f"    {per_arm}", flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
