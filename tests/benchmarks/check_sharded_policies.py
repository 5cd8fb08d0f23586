"""The policies that plan on the coordinator, sharded on Dask worker processes: summary.json bytes against one process.

Run:  python tests/benchmarks/check_sharded_policies.py [--workers 1,4] [--shards 4] [--seed 3]

Kept out of the test run (a few minutes). Two scenarios large enough for several 65,536-customer chunks, so
every shard holds customers: ``learners`` (270,000 customers, 2 CRM scores, 5% declared taste at the start;
``oracle``, ``linucb``, ``micro``, ``thompson``, ``uplift``, ``individual`` and ``segments``, 14 days) and the
gallery's ``declared_data_loop`` at 200,000 customers for 14 days with 2% declared at the start (its
``individual`` arm reads the taste captured in conversations). Each runs one replication in one process,
then with ``engine="dask", shards=N`` on a local cluster of each number of worker processes; the script
prints the first 16 hex digits of each summary's sha256 and exits with status 1 if a sharded summary differs.
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


def summary_digest(scenario: masssim.Scenario, seed: int, **options: object) -> tuple[str, float]:
    start = time.perf_counter()
    text = dumps_json(masssim.run(scenario, replications=1, seed=seed, **options).summary)  # type: ignore[arg-type]
    return hashlib.sha256(text.encode()).hexdigest()[:16], time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4", help="worker process counts, comma-separated")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    differ = False
    for name, scenario in scenarios().items():
        one, seconds = summary_digest(scenario, args.seed)
        print(f"{name}: one process {one} ({seconds:.0f} s)", flush=True)
        for workers in (int(w) for w in args.workers.split(",")):
            got, seconds = summary_digest(scenario, args.seed, engine="dask", workers=workers, shards=args.shards)
            differ |= got != one
            same = "same" if got == one else "DIFFERENT"
            print(f"  {workers} worker(s), {args.shards} shards: {got} {same} ({seconds:.0f} s)", flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
