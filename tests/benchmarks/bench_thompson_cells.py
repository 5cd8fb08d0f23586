"""thompson's per-wave passes over the cells and the draws: the compiled loops against their numpy code.

Run:  python tests/benchmarks/bench_thompson_cells.py [--personas 1000] [--creatives 20000] [--share 0.25]
      [--draws 4000] [--events 7500000] [--repeat 3]

A synthetic table like the seventh wave of ``thompson`` at 10,000,000 customers with 1,000 personas: each
persona has tried a ``share`` of the creatives (the non-empty cells), draws ``draws`` posterior draws, and a
wave delivers ``events`` messages. Each pass runs with the compiled loops and with ``MASSSIM_KERNELS``'s numpy
fallback (the switch in ``policies/compiled.py``), checks that both give the same result, and prints the
smallest and the median CPU time of ``repeat`` runs (after one warm-up run, so numba's compilation is not
counted). One thread: the time is CPU time of this process.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import sparse

from masssim.policies import beta_argmax, cell_counting
from masssim.policies import compiled as switch
from masssim.policies.bandits import win_shares


def cpu_times(function: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    out = function()
    times = []
    for _ in range(repeat):
        start = time.process_time()
        out = function()
        times.append(time.process_time() - start)
    return times, out


def both(name: str, function: Callable[[], Any], repeat: int) -> None:
    """Time ``function`` compiled and with the numpy fallback; their results must be equal."""
    compiled_times, compiled_out = cpu_times(function, repeat)
    saved, switch.NUMBA = switch.NUMBA, None
    try:
        numpy_times, numpy_out = cpu_times(function, repeat)
    finally:
        switch.NUMBA = saved
    results = compiled_out if isinstance(compiled_out, tuple) else (compiled_out,)
    expected = numpy_out if isinstance(numpy_out, tuple) else (numpy_out,)
    same = all(np.array_equal(a, b) for a, b in zip(results, expected, strict=True))
    print(
        f"{name:<28} numpy {min(numpy_times):7.3f} s (median {statistics.median(numpy_times):7.3f})"
        f"  compiled {min(compiled_times):7.3f} s (median {statistics.median(compiled_times):7.3f})"
        f"  same result: {same}",
        flush=True,
    )
    if not same:
        raise SystemExit(f"{name}: the compiled loop and the numpy code disagree")


def old_win_shares(row_segment: np.ndarray, winner: np.ndarray, draws: np.ndarray, k: int) -> sparse.csr_matrix:
    """The P(best) table as built before ``cell_counting``: a sparse matrix whose duplicates are summed."""
    hits = sparse.csr_matrix((np.ones(winner.shape[0]), (row_segment, winner)), shape=(draws.shape[0], k))
    hits.sum_duplicates()
    hits.data /= np.repeat(draws, np.diff(hits.indptr))
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=1000)
    parser.add_argument("--creatives", type=int, default=20_000)
    parser.add_argument("--share", type=float, default=0.25, help="share of (persona, creative) cells non-empty")
    parser.add_argument("--draws", type=int, default=4000, help="posterior draws per persona")
    parser.add_argument("--events", type=int, default=7_500_000, help="deliveries merged into the cells")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    s, c = args.personas, args.creatives
    cell_segment, cell_creative = np.nonzero(rng.random((s, c)) < args.share)
    cells = cell_segment.shape[0]
    alpha = 1.0 + rng.integers(0, 3, cells).astype(np.float64)
    beta = 1.0 + rng.integers(0, 40, cells).astype(np.float64)
    draws = np.full(s, args.draws)
    row_segment = np.repeat(np.arange(s), draws)
    unsent = c - np.bincount(cell_segment, minlength=s)
    nth = np.minimum((rng.random(row_segment.shape[0]) * unsent[row_segment]).astype(np.int64), unsent[row_segment] - 1)
    print(f"{s:,} personas x {c:,} creatives, {cells:,} non-empty cells, {row_segment.shape[0]:,} draws", flush=True)
    both(
        "never-sent winners",
        lambda: beta_argmax.unsent_creative(c, cell_segment, cell_creative, row_segment, nth),
        args.repeat,
    )
    every = np.ones(s, bool)
    both(
        "cells grouped by posterior",
        lambda: beta_argmax.posterior_runs(cell_segment, cell_creative, alpha, beta, every),
        args.repeat,
    )
    keys = cell_segment.astype(np.int64) * c + cell_creative
    delivered, clicked = np.ones(cells), np.zeros(cells)
    events = rng.integers(0, s, args.events) * c + (rng.random(args.events) ** 3 * c).astype(np.int64)
    new_keys, counts = np.unique(events, return_counts=True)
    both(
        "a wave merged into the cells",
        lambda: cell_counting.merge_counts(keys, delivered, clicked, new_keys, counts, into_delivered=True),
        args.repeat,
    )
    winner = (rng.random(row_segment.shape[0]) ** 3 * c).astype(np.int32)
    new_times, new_table = cpu_times(lambda: win_shares(row_segment, winner, draws, c), args.repeat)
    old_times, old_table = cpu_times(lambda: old_win_shares(row_segment, winner, draws, c), args.repeat)
    same = all(
        np.array_equal(getattr(new_table, part), getattr(old_table, part)) for part in ("indptr", "indices", "data")
    )
    print(
        f"{'P(best) table':<28} summed sparse matrix {min(old_times):7.3f} s"
        f"  counted per persona {min(new_times):7.3f} s  same result: {same}",
        flush=True,
    )


if __name__ == "__main__":
    main()
