"""Issue 9's aim for the outbound engine read as a ratio: today's engine against the code the issue started from.

Run:  python tests/benchmarks/bench_against_start.py [--start 8b80c8a] [--customers 10000000] [--days 30] [--repeat 3]

Issue 9 asked for 20M customer-touches per second at 10M customers, against 4.4M measured when it was filed, on a
machine slower than this one. Machines differ, so an aim in absolute touches per second is read as a ratio:
20 / 4.4 = 4.55x the engine the issue started from. This script takes that engine's code from the repository's
history (``git archive`` of ``--start``, commit 8b80c8a, into a temporary directory: nothing in the checkout
changes) and runs its ``bench_outbound.py`` child and today's, alternated, each in a fresh process, on the same
scenario (10M customers, 30 daily email waves, ``random``). It prints each run's simulation time and rate, the
medians, and the ratio against the aim's 4.55x.

The old child reports wall time only; it runs on one thread, so its wall time is its CPU time on a machine that
is not busy. Today's child reports both, and the ratio is taken on wall time for both (CPU time printed beside).
Needs the repository's history (a clone, not an export) and git.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent
AIM_RATIO = 20.0 / 4.4  # issue 9: 20M touches/s against the 4.4M measured when it was filed


def _extract(revision: str, into: Path) -> Path:
    """The ``src`` and ``tests/benchmarks`` of ``revision``, written under ``into``."""
    archive = into / "start.tar"
    with archive.open("wb") as out:
        subprocess.run(
            ["git", "-C", str(REPOSITORY), "archive", "--format=tar", revision, "src", "tests/benchmarks"],
            stdout=out,
            check=True,
        )
    tree = into / "start"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def _child(tree: Path, customers: int, days: int) -> dict[str, float]:
    """One vectorised run of ``tree``'s bench_outbound.py in a fresh process: its JSON result."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    done = subprocess.run(
        [
            sys.executable,
            "bench_outbound.py",
            "--child",
            "vectorised",
            "--customers",
            str(customers),
            "--days",
            str(days),
        ],
        cwd=tree / "tests" / "benchmarks",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", default="8b80c8a", help="the commit issue 9 started from")
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternated; medians are reported")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        start = _extract(args.start, Path(scratch))
        rates: dict[str, list[float]] = {"start": [], "now": []}
        for k in range(args.repeat):
            for name, tree in (("start", start), ("now", REPOSITORY)):
                result = _child(tree, args.customers, args.days)
                rate = result["touches"] / result["simulate_s"]
                rates[name].append(rate)
                cpu = result.get("simulate_cpu_s")
                cpu_text = f", CPU {cpu:.2f} s" if cpu is not None else ""
                print(
                    f"run {k + 1} {name:<5}: {result['touches']:,.0f} touches, simulation {result['simulate_s']:.2f} s "
                    f"wall{cpu_text}: {rate:,.0f} touches/s",
                    flush=True,
                )
    start_rate, now_rate = statistics.median(rates["start"]), statistics.median(rates["now"])
    ratio = now_rate / start_rate
    print(
        f"{args.start} (issue 9's start): {start_rate:,.0f} touches/s; now: {now_rate:,.0f} (medians of {args.repeat})"
    )
    verdict = "met" if ratio >= AIM_RATIO else "not met"
    print(f"now / start = {ratio:.2f}x; the aim read as a ratio, 20M / 4.4M = {AIM_RATIO:.2f}x: {verdict}")


if __name__ == "__main__":
    main()
