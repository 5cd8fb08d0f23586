"""What fusing a send block's first steps into one compiled pass would buy: a measured prototype, not the engine.

Run:  python tests/benchmarks/bench_fused_front.py [--customers 10000000] [--rows 1048576] [--repeat 21]

The engine's send block (engine/outbound.py, ``OutboundSender._respond``) runs as compiled passes with numpy's
``exp`` between them, because a compiled ``exp`` is not numpy's to the last bit and the results' bytes would
change. This script times the block's front as the engine runs it (the fatigue exponents, numpy's ``exp``,
``touch``, the block's top fatigue, ``split_sends``, the read exponents, numpy's ``exp``, ``pick_reads``)
against one compiled loop doing the same work per send with ``math.exp`` (the prototype below: the same
arithmetic, its own last bits), on a block of sends to customers of a population of ``--customers``
(ascending, as a wave's plan is), with the project's allocator as in a run. It prints the CPU nanoseconds
per send of each (medians of ``--repeat``, the two alternated), so the saving can be set against the whole
simulation's per-touch CPU that ``bench_outbound.py`` and ``bench_outbound_floor.py`` print (docs/model.md
§15.12). The prototype's outputs are checked against the engine's passes where their bits must agree (the
rows delivered, pre-fetch candidates) and within float32 rounding elsewhere.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

DELIVERY_RATE, OPEN_RATE, PREFETCH, KAPPA = 0.98, 0.21, 0.35, 0.3  # email's defaults (config/schema.py)
TAU_S = 3 * 86_400.0


def engine_front(block: dict, state: dict) -> tuple:  # type: ignore[type-arg]
    """The block's front as engine/outbound.py runs it."""
    from masssim.engine import kernels, send_kernels

    grow = np.exp(kernels.growth_exponents(block["departure"], 0.0, 1.0 / TAU_S))
    fatigue, top = kernels.touch(state["stored"], grow, state["week"], state["sends"], block["customer"])
    unsub_bound = np.float32(0.0026 * math.exp(0.5 * top))
    bound = np.float32(DELIVERY_RATE * OPEN_RATE)
    top = np.float32(bound + PREFETCH * (DELIVERY_RATE - bound))
    d_idx, cand, above, _ = kernels.split_sends(block["draw"], np.float32(DELIVERY_RATE), bound, top, unsub_bound)
    decay = np.exp(send_kernels.read_exponents(fatigue, cand, np.float32(-KAPPA)))
    reads = send_kernels.pick_reads(
        cand, decay, bound, block["draw"], block["customer"], block["creative"], block["departure"], 60.0, fatigue
    )
    return d_idx, above, reads


def _fused_loop(u, customer, creative, departure, stored, week, sends, inv_tau, rate, bound, top, neg_kappa, latency):  # type: ignore[no-untyped-def]
    n = customer.shape[0]
    delivered = np.empty(n, np.int64)
    above = np.empty(n, np.int32)
    reader = np.empty(n, customer.dtype)
    read_creative = np.empty(n, creative.dtype)
    delivered_at = np.empty(n, np.float64)
    read_fatigue = np.empty(n, np.float32)
    v = np.empty(n, np.float32)
    unread = np.empty(n, np.int64)
    nd = na = k = q = 0
    highest = np.float32(0.0)
    for i in range(n):
        c = customer[i]
        grow = np.float32(math.exp(np.float32(departure[i] * inv_tau)))
        before = stored[c]
        f = before / grow
        stored[c] = before + grow
        week[c] += 1
        if sends[c] < 65535:
            sends[c] += 1
        highest = max(highest, f)
        x = u[i]
        delivered[nd] = i
        nd += x < rate
        above[na] = i
        na += (x >= bound) & (x < top)
        if x < bound:  # a read candidate (one send in five)
            p = bound * np.float32(math.exp(neg_kappa * f))
            reader[k] = c
            read_creative[k] = creative[i]
            delivered_at[k] = departure[i] + latency
            read_fatigue[k] = f
            v[k] = x / p
            unread[q] = i
            read = x < p
            k += read
            q += 1 - read
    return delivered[:nd], above[:na], reader[:k], read_creative[:k], delivered_at[:k], v[:k], unread[:q], highest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--rows", type=int, default=1 << 20, help="sends in the block (the engine's RESPONSE_CHUNK)")
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()

    import numba

    import masssim.engine  # noqa: F401  (the project's allocator, as in a run)

    fused = numba.njit(nogil=True)(_fused_loop)
    rng = np.random.default_rng(1)
    rows = min(args.rows, args.customers)
    block = {
        "customer": np.sort(rng.choice(args.customers, rows, replace=False)).astype(np.int32),
        "creative": rng.integers(0, 20, rows).astype(np.int32),
        "departure": 3 * 86_400.0 + rng.random(rows) * 4 * 3_600.0,
        "draw": rng.random(rows),  # each send's one float64 draw (the engine's Draw.SEND)
    }
    from masssim.engine import kernels

    block["u"] = kernels.send_uniform_numpy(block["draw"])  # the send's uniform in it, which the prototype takes

    def fresh_state() -> dict:  # type: ignore[type-arg]
        return {
            "stored": (np.random.default_rng(2).random(args.customers) * 2).astype(np.float32),
            "week": np.zeros(args.customers, np.uint8),
            "sends": np.zeros(args.customers, np.uint16),
        }

    bound = np.float32(DELIVERY_RATE * OPEN_RATE)
    top = np.float32(bound + PREFETCH * (DELIVERY_RATE - bound))
    constants = (1.0 / TAU_S, np.float32(DELIVERY_RATE), bound, top, np.float32(-KAPPA), 60.0)

    def run_fused(state: dict) -> tuple:  # type: ignore[type-arg]
        return fused(  # type: ignore[no-any-return]
            block["u"], block["customer"], block["creative"], block["departure"], state["stored"], state["week"],
            state["sends"], *constants,
        )  # fmt: skip

    # The same work: the rows delivered and the pre-fetch candidates to the bit, the reads within rounding.
    mine, theirs = run_fused(fresh_state()), engine_front(block, fresh_state())
    np.testing.assert_array_equal(mine[0], theirs[0] if theirs[0] is not None else np.arange(rows))
    np.testing.assert_array_equal(mine[1], theirs[1])
    differing = abs(mine[2].shape[0] - theirs[2][0].shape[0])
    assert differing <= max(10, rows // 10_000), f"the prototype's reads differ by {differing} rows"

    state = fresh_state()  # the counters keep growing over the repeats; fatigue stays bounded by its decay
    times: dict[str, list[float]] = {"engine": [], "fused": []}
    for _ in range(args.repeat):
        for name, work in (("engine", lambda: engine_front(block, state)), ("fused", lambda: run_fused(state))):
            start = time.process_time()
            work()
            times[name].append(time.process_time() - start)
    engine_ns = statistics.median(times["engine"]) * 1e9 / rows
    fused_ns = statistics.median(times["fused"]) * 1e9 / rows
    print(f"a block of {rows:,} sends to customers of {args.customers:,} (medians of {args.repeat}, CPU time)")
    print(f"  engine's passes, numpy's exp between them: {engine_ns:5.2f} ns per send")
    print(f"  one compiled pass, compiled exp:            {fused_ns:5.2f} ns per send")
    print(f"  saving: {engine_ns - fused_ns:5.2f} ns per send ({engine_ns / fused_ns:.2f}x on these steps)")


if __name__ == "__main__":
    main()
