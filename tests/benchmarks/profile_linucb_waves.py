"""Where ``linucb``'s time goes, wave by wave: CPU time of its parts, timed inside the policy.

Run:  python tests/benchmarks/profile_linucb_waves.py [--customers 1000000] [--creatives 20000] [--days 7]
      [--crm-scores 2]

Runs the same simulation as ``bench_policies_scale.py`` (one BLAS thread) with timers around the policy's
methods and the continuous-score scorer's steps, and prints, per part, the CPU seconds summed over the run and
per call (one call per wave for the planning parts; the first plan is the warm-up wave). Parts nest: ``plan``
holds ``_model`` (adding the waves' deliveries, ``_add_by_unit``, and inverting the changed ``A_k``) and
``_choose_continuous`` (grouping the customers by unit, ``planned_by_unit``, and the choice,
``choose_creatives``). The timers cost a little; use ``bench_policies_scale.py`` for the totals.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_policies_scale

from masssim.policies import bandits, linucb_scores

POLICY_PARTS = ("plan", "observe", "_model", "_add_by_unit", "_choose_continuous")
SCORER_PARTS = ("planned_by_unit", "choose_creatives", "pair_sums")


def timed(function: Callable[..., Any], name: str, times: dict[str, list[float]]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            times.setdefault(name, []).append(time.process_time() - start)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--creatives", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--crm-scores", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[float]] = {}
    for name in POLICY_PARTS:
        setattr(bandits.LinUCBPolicy, name, timed(getattr(bandits.LinUCBPolicy, name), name, times))
    for name in SCORER_PARTS:
        setattr(linucb_scores, name, timed(getattr(linucb_scores, name), name, times))
    result = bench_policies_scale.measure(
        args.customers, args.creatives, args.days, {"policy": "linucb"}, args.crm_scores
    )
    print(f"simulation: {result['simulate_s']:.2f} s, {result['simulate_cpu_s']:.2f} s CPU")
    for name in POLICY_PARTS + SCORER_PARTS:
        calls = times.get(name, [])
        per_call = " ".join(f"{t:.3f}" for t in calls) if len(calls) <= 12 else f"{len(calls)} calls"
        print(f"{name:<20} {sum(calls):7.3f} s CPU   per call: {per_call}")


if __name__ == "__main__":
    main()
