"""What a send's draws cost: two float32 uniforms per send (the engine until session 19) against one float64 draw
that carries both (kernels.send_uniform_numpy / unsubscribe_uniform_numpy), and the pass that splits a block.

Run:  python tests/benchmarks/bench_send_draws.py [--rows 1048576] [--repeat 41]

numpy's generator costs about the same per value whatever the value's width (PCG64 gives 64 bits a step, and
a float32 uses a buffered half of a step, which costs as much to hand out). So one float64 per send, split
into a 24-bit uniform and a 29-bit one, costs one value where two float32 cost two. The script times, on a
block of ``--rows`` sends drawn from one stream as a chunk's are, alternated and as CPU time (medians of
``--repeat``):

* the generator alone: two float32 fills against one float64 fill;
* the block's front as the engine runs it (fill, then ``kernels.split_sends``), now;
* the old front's split pass for comparison, the same branch-free loop over two float32 arrays (kept here,
  not in the engine, only to be timed).

It prints nanoseconds per send of each and the ratios (docs/model.md §15.14).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _old_split_loop(u, u_unsub, delivery_rate, read_bound, prefetch_top, unsub_bound):  # type: ignore[no-untyped-def]
    # The engine's split_sends before session 19 (two float32 uniforms per send), to be timed only.
    n = u.shape[0]
    d_idx = np.empty(n, np.int32)
    cand = np.empty(n, np.int32)
    above = np.empty(n, np.int32)
    unsub = np.empty(n, np.int32)
    nd = nc = na = nu = 0
    for i in range(n):
        x = u[i]
        delivered = x < delivery_rate
        d_idx[nd] = i
        nd += delivered
        unsub[nu] = i
        nu += delivered & (u_unsub[i] < unsub_bound)
        cand[nc] = i
        nc += x < read_bound
        above[na] = i
        na += (x >= read_bound) & (x < prefetch_top)
    return d_idx[:nd], cand[:nc].copy(), above[:na].copy(), unsub[:nu].copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1 << 20, help="sends in the block (the engine's RESPONSE_CHUNK)")
    parser.add_argument("--repeat", type=int, default=41)
    args = parser.parse_args()

    import numba

    from masssim.engine import kernels

    old_split = numba.njit(nogil=True)(_old_split_loop)
    generator = np.random.Generator(np.random.PCG64(2026))
    rows = args.rows
    rates = (np.float32(0.98), np.float32(0.98 * 0.21), np.float32(0.47), np.float32(0.0075))  # email's

    def two_float32() -> tuple[np.ndarray, np.ndarray]:
        return generator.random(rows, dtype=np.float32), generator.random(rows, dtype=np.float32)

    def one_float64() -> np.ndarray:
        return generator.random(rows)

    def old_front() -> None:
        old_split(*two_float32(), *rates)

    def new_front() -> None:
        kernels.split_sends(one_float64(), *rates)

    # The same work: the old pass on two float32 uniforms and the new one on the draw made of them give the
    # same rows (the delivered rows as a list here, where the engine gives None when every row is).
    u, u_unsub = two_float32()
    old_lists = old_split(u, u_unsub, *rates)
    new_lists = kernels.split_sends(kernels.send_draw_numpy(u, u_unsub), *rates)
    for mine, theirs in zip(old_lists, new_lists, strict=True):
        np.testing.assert_array_equal(mine, np.arange(rows) if theirs is None else theirs)

    steps = {
        "two float32 fills": two_float32,
        "one float64 fill": one_float64,
        "old front": old_front,
        "front now": new_front,
    }
    for work in steps.values():  # compile and warm
        work()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeat):
        for name, work in steps.items():
            start = time.process_time()
            work()
            times[name].append(time.process_time() - start)
    ns = {name: statistics.median(t) / rows * 1e9 for name, t in times.items()}
    print(f"a block of {rows:,} sends, CPU ns per send (medians of {args.repeat}, alternated):")
    for name, value in ns.items():
        print(f"  {name:<18} {value:6.2f}")
    print(f"generator: two float32 / one float64 = {ns['two float32 fills'] / ns['one float64 fill']:.2f}x")
    print(f"front: old / now = {ns['old front'] / ns['front now']:.2f}x "
          f"({ns['old front'] - ns['front now']:.2f} ns per send saved)")  # fmt: skip


if __name__ == "__main__":
    main()
