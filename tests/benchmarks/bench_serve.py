"""The highest ``server`` rate that ``masssim serve`` sustains on loopback with p99 within 50 ms.

Starts ``masssim serve`` (keyword by default, ``--classifier hashed`` for the hashed model) in its own
process on a free port of 127.0.0.1, runs ``masssim bench --scenario server --find-peak`` against it
(p99 <= 50 ms, generator lateness p99 <= 10 ms), and prints the peak rate, the trials and the generator's
own issue lateness at that rate. Traffic goes to loopback only and every run is bounded in time.

    python tests/benchmarks/bench_serve.py [--classifier hashed] [--duration 5] [--start-rate 200]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from masssim.bench import BenchConfig, run_bench
from masssim.bench.report import summary_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default="keyword", help="keyword (default) or hashed")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per trial")
    parser.add_argument("--start-rate", type=float, default=200.0, help="first rate tried, queries per second")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "masssim", "serve", "--classifier", args.classifier, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if " on http://" not in line:
            sys.exit(f"masssim serve did not start: {line!r}")
        url = line.split(" on ")[1].split()[0]
        print(line.strip())
        started = time.perf_counter()
        result = run_bench(
            BenchConfig(
                scenario="server",
                target=url,
                rate=args.start_rate,
                duration_s=args.duration,
                warmup_s=1.0,
                latency_bound_s=0.05,
                percentile=99.0,
                find_peak=True,
                peak_tolerance=0.05,
                seed=args.seed,
            )
        )
        for text in summary_lines(result.summary):
            print(text)
        run = result.summary["run"]
        late = run.get("issue_lateness_s") or {}
        peak = result.summary["peak"]["rate_qps"]
        print(
            f"\nRESULT {args.classifier}: peak {peak if peak is None else round(peak, 1)} q/s with p99 <= 50 ms; "
            f"at that rate p99 {1e3 * (run['latency_s']['p99'] or 0):.1f} ms, generator lateness "
            f"p50 {1e3 * (late.get('p50') or 0):.2f} ms, p99 {1e3 * (late.get('p99') or 0):.2f} ms, "
            f"max {1e3 * (late.get('max') or 0):.2f} ms ({time.perf_counter() - started:.0f} s in all)"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
