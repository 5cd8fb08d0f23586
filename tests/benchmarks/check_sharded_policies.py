"""The policies that plan on the coordinator, sharded on Dask worker processes: summary.json bytes against one process.

Run:  python tests/benchmarks/check_sharded_policies.py [--workers 1,4] [--shards 4] [--seed 3]

Kept out of the test run (a few minutes). Two scenarios large enough for several 65,536-customer chunks, so
every shard holds customers: ``learners`` (270,000 customers, 2 CRM scores, 5% declared taste at the start;
``oracle``, ``linucb``, ``micro``, ``thompson``, ``uplift``, ``individual`` and ``segments``, 14 days) and the
gallery's ``declared_data_loop`` at 200,000 customers for 14 days with 2% declared at the start (its
``individual`` arm reads the taste captured in conversations). Each runs one replication in one process,
then with ``engine="dask", shards=N`` on a local cluster of each number of worker processes; the script
prints the first 16 hex digits of each summary's sha256 and exits with status 1 if a sharded summary differs.

Beside each run's wall time it prints each arm's: from the arm's first progress report to the next arm's (or
the run's end), so an arm's time holds its last feedback, its totals and the next arm's set-up; the time
before the first arm's first report (starting the cluster, building the customers) is ``set-up``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time

import masssim
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


class ArmClock:
    """When the run's progress (its completed share) first enters each arm's share: arm k of n reports shares
    from k/n on."""

    def __init__(self, arms: int) -> None:
        self.arms = arms
        self.first: dict[int, float] = {}

    def __call__(self, share: float) -> None:
        arm = min(int(share * self.arms), self.arms - 1)
        self.first.setdefault(arm, time.perf_counter())

    def describe(self, start: float, end: float, names: list[str]) -> str:
        marks = [self.first.get(k) for k in range(self.arms)]
        if any(m is None for m in marks):
            return "(arms not timed)"
        times = [float(m) for m in marks if m is not None] + [end]
        parts = [f"set-up {times[0] - start:.1f}"]
        parts += [f"{name} {times[k + 1] - times[k]:.1f}" for k, name in enumerate(names)]
        return "s per arm: " + ", ".join(parts)


def summary_digest(scenario: masssim.Scenario, seed: int, **options: object) -> tuple[str, float, str]:
    """The summary's digest, the run's wall time and its time per arm."""
    clock = ArmClock(len(scenario.arms))
    start = time.perf_counter()
    result = masssim.run(scenario, replications=1, seed=seed, progress=clock, **options)  # type: ignore[arg-type]
    end = time.perf_counter()
    text = dumps_json(result.summary)
    per_arm = clock.describe(start, end, [arm.name for arm in scenario.arms])
    return hashlib.sha256(text.encode()).hexdigest()[:16], end - start, per_arm


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
