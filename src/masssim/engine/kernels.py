"""The engine's hot loops, compiled with numba when it is installed, with numpy twins that define them.

A wave to ten million customers spends its time in a few passes over per-send arrays: gathering each
customer's row (fatigue, counters, taste), and a few small reductions. numpy does each of these as several
full passes with temporaries; a compiled loop does one pass with no temporaries, which is where the
engine's speed at the brief's scale comes from (docs/model.md §11).

Every kernel here has two implementations with the same contract:

* ``*_numpy``: vectorised numpy, the definition (always available, and what the tests compare against);
* the compiled loop, used when numba can be imported and ``MASSSIM_KERNELS`` is not ``numpy``.

They draw no random numbers (the engine draws them, in the same order and sizes, either way) and compute
the same IEEE operations in the same order, so their results are identical to the bit: the kernels do no
transcendental function (whose compiled and numpy versions may round differently) and sum in a fixed order.
A run gives the same bytes on either path, which the tests check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from masssim import compiled
from masssim.engine import cache_hints
from masssim.model.channels import DAY_S, HOUR_S, move_into_active_window
from masssim.model.market import brand_with_marketing, brand_without_marketing

KERNELS_ENV = compiled.KERNELS_ENV  # "numpy" forces the numpy twins (tests, or a platform without numba)
_numba = compiled.load_numba()
COMPILED = _numba is not None
# load_soon(array, index): a cache hint for compiled loops with long bodies that gather from population-sized
# arrays (engine/cache_hints.py); it changes no value.
load_soon: Callable[[np.ndarray, Any], None] = (
    cache_hints.compiled_load_soon() if COMPILED else cache_hints.python_load_soon
)
ROWS_AHEAD = cache_hints.ROWS_AHEAD


def load_runtime() -> None:
    """Load numba's runtime now, by a call to one compiled loop (nothing without numba). The first call to
    any compiled loop in a process initialises the runtime, a second or so; a caller with a thread that only
    waits can take that cost there, off the path that others wait for."""
    if _numba is not None:
        counts(np.zeros(1, np.int8), 1)


def _compiled(function: Callable[..., Any]) -> Callable[..., Any] | None:
    # cache=True keeps the machine code next to the module, so worker processes and later runs skip the
    # compilation (a second or two per kernel); nogil lets Dask's threaded workers overlap.
    return None if _numba is None else _numba.njit(cache=True, nogil=True)(function)


# --------------------------------------------------------------------------------------------------
# Half precision: the population's taste and brand probabilities are stored as float16 (model/population.py)
# --------------------------------------------------------------------------------------------------


def as_half(values: np.ndarray) -> np.ndarray:
    """``values`` at half precision (no copy when they are float16 already, as the population's are): the
    kernels that read taste or brand probabilities read them so on either path, whatever they are given."""
    return np.asarray(values, np.float16)


def half_bits(values: np.ndarray) -> np.ndarray:
    """The bits of ``as_half(values)`` as uint16, which is how a compiled loop receives them (numba has no
    float16 on the CPU); ``_half`` turns an element back into its exact float32 value."""
    return as_half(values).view(np.uint16)


# Every float16 bit pattern's float32 value, by numpy's own conversion (exact; 256 KB, which stays in the
# level-2 cache). A lookup in it is how a compiled loop reads a half: arithmetic decoding (mantissa times a
# power of two) cost twice the read kernel's time in a micro-benchmark at 30M customers, the lookup ~10%.
_HALF_TO_FLOAT32 = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


def _half(bits):  # type: ignore[no-untyped-def]  # pragma: no cover
    """The float32 value of a float16's bits (uint16), exactly numpy's conversion."""
    return _HALF_TO_FLOAT32[bits]


# --------------------------------------------------------------------------------------------------
# Affinity: u_ik = theta_i . phi_k for (customer, creative) pairs
# --------------------------------------------------------------------------------------------------


def row_dot_numpy(taste: np.ndarray, directions: np.ndarray, customer: np.ndarray, creative: np.ndarray) -> np.ndarray:
    """float32 [n]: taste[customer[i]] . directions[creative[i]], summed over topics in order 0, 1, ..., d-1.

    The order is part of the definition: einsum or a BLAS call may sum in another order on another
    machine (SIMD width), and a click decided by a rounding error would then change the run's bytes.
    """
    a = taste[customer]
    b = directions[creative]
    out = a[:, 0] * b[:, 0]
    for j in range(1, a.shape[1]):
        out += a[:, j] * b[:, j]
    return out


# --------------------------------------------------------------------------------------------------
# Departure slots: a stable counting sort of one block of a wave by group (region in release order)
# --------------------------------------------------------------------------------------------------


def departure_slots_numpy(
    group: np.ndarray, starts: np.ndarray, spacing_s: float, filled: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For a block of rows with small-integer ``group``: the stable order that sorts them by group, and the
    departure time of each sorted row, ``starts[g] + slot * spacing_s``, where a row's slot counts the rows
    of its group before it (``filled[g]`` of them in earlier blocks). ``filled`` is advanced by this block."""
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    counts = np.bincount(sorted_group, minlength=starts.shape[0])
    first_row = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(sorted_group.shape[0]) - first_row[sorted_group] + filled[sorted_group]
    filled += counts
    return order, starts[sorted_group] + rank * spacing_s


# --------------------------------------------------------------------------------------------------
# Each planned row's release group (its region's rank in release order), and the rows per group
# --------------------------------------------------------------------------------------------------


def release_groups_numpy(
    customer: np.ndarray, region: np.ndarray, rank_of_region: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 group ``rank_of_region[region[customer]]`` of each row, and int64 rows per group."""
    group = rank_of_region[region[customer]]
    return group, np.bincount(group, minlength=rank_of_region.shape[0])


def _release_groups_loop(customer, region, rank_of_region):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = customer.shape[0]
    group = np.empty(n, np.uint8)
    counts = np.zeros(rank_of_region.shape[0], np.int64)
    for i in range(n):
        g = rank_of_region[region[customer[i]]]
        group[i] = g
        counts[g] += 1
    return group, counts


# --------------------------------------------------------------------------------------------------
# Where a run of rows passes from one customer chunk to another (engine/chunks.py)
# --------------------------------------------------------------------------------------------------


def chunk_run_starts_numpy(customer: np.ndarray, offset: int, shift: int) -> np.ndarray:
    """int64 rows i >= 1 whose chunk ``(customer[i] + offset) >> shift`` differs from row i-1's."""
    chunk = (customer.astype(np.int64) + offset) >> shift
    return np.flatnonzero(chunk[1:] != chunk[:-1]) + 1


def _chunk_run_starts_loop(customer, offset, shift):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = customer.shape[0]
    starts = np.empty(max(n - 1, 0), np.int64)
    k = 0
    previous = (np.int64(customer[0]) + offset) >> shift if n else 0
    for i in range(1, n):
        chunk = (np.int64(customer[i]) + offset) >> shift
        starts[k] = i
        k += chunk != previous  # branch-free: runs are long, but a wave block changes region groups often
        previous = chunk
    return starts[:k].copy()


def increasing_numpy(customer: np.ndarray) -> bool:
    """Whether ``customer`` strictly increases (true of no rows and of one)."""
    return bool(np.all(customer[1:] > customer[:-1]))


def _increasing_loop(customer):  # type: ignore[no-untyped-def]  # pragma: no cover
    # No early exit, so that the comparisons vectorise (about 0.15 ns a row against 2 ns with one; a pass that
    # stops at the first step down cannot).
    steps_down = 0
    for i in range(1, customer.shape[0]):
        steps_down += customer[i] <= customer[i - 1]
    return steps_down == 0


# --------------------------------------------------------------------------------------------------
# A plan's customers: in the population, each at most once
# --------------------------------------------------------------------------------------------------

# PLAN_CUSTOMERS_INCREASING: OK, and the customers strictly increase (what the draws' binary search needs).
PLAN_CUSTOMERS_OK, PLAN_CUSTOMER_OUTSIDE, PLAN_CUSTOMER_TWICE, PLAN_CUSTOMERS_INCREASING = 0, 1, 2, 3


def check_plan_customers_numpy(customer: np.ndarray, n_customers: int) -> int:
    """PLAN_CUSTOMER_OUTSIDE if an index is outside 0..n_customers-1, else PLAN_CUSTOMER_TWICE if one
    repeats, else PLAN_CUSTOMERS_INCREASING if they strictly increase, else PLAN_CUSTOMERS_OK (``customer``
    not empty)."""
    if customer.min() < 0 or customer.max() >= n_customers:
        return PLAN_CUSTOMER_OUTSIDE
    seen = np.zeros(n_customers, bool)
    seen[customer] = True
    if int(seen.sum()) != customer.shape[0]:
        return PLAN_CUSTOMER_TWICE
    return PLAN_CUSTOMERS_INCREASING if increasing_numpy(customer) else PLAN_CUSTOMERS_OK


def _check_plan_customers_loop(customer, n_customers):  # type: ignore[no-untyped-def]  # pragma: no cover
    # Policies list customers in increasing order (reachable rows): a strictly increasing column inside the
    # range repeats nobody, which one sequential pass shows without a table of every customer. Otherwise
    # the table below decides (kernels.increasing's pass, which has no early exit so that it vectorises).
    n = customer.shape[0]
    if _increasing_compiled(customer) and customer[0] >= 0 and customer[n - 1] < n_customers:
        return PLAN_CUSTOMERS_INCREASING
    seen = np.zeros(n_customers, np.bool_)
    outside = False
    twice = False
    for i in range(customer.shape[0]):
        c = customer[i]
        if c < 0 or c >= n_customers:  # checked before it indexes: the loop has no bounds checks
            outside = True
            continue
        twice |= seen[c]
        seen[c] = True
    return PLAN_CUSTOMER_OUTSIDE if outside else (PLAN_CUSTOMER_TWICE if twice else PLAN_CUSTOMERS_OK)


# --------------------------------------------------------------------------------------------------
# Creatives a plan uses
# --------------------------------------------------------------------------------------------------


def creatives_used_numpy(creative: np.ndarray, count: int) -> np.ndarray:
    """bool [count]: the creatives that appear in ``creative``."""
    return np.bincount(creative, minlength=count) > 0


def _creatives_used_loop(creative, count):  # type: ignore[no-untyped-def]  # pragma: no cover
    used = np.zeros(count, np.bool_)
    for i in range(creative.shape[0]):
        used[creative[i]] = True
    return used


def counts_numpy(values: np.ndarray, size: int, rows: np.ndarray | None = None) -> np.ndarray:
    """int64 [size]: how many of ``values`` (or of ``values[rows]``) have each value, every one below ``size``:
    ``np.bincount(values[rows], minlength=size)``. Compiled, it builds no gathered copy and lets the other
    shards' threads run (numpy's bincount holds the interpreter's lock throughout, §16.9)."""
    return np.bincount(values if rows is None else values[rows], minlength=size)


def _counts_loop(values, size, rows=None):  # type: ignore[no-untyped-def]  # pragma: no cover
    counts = np.zeros(size, np.int64)
    if rows is None:
        for i in range(values.shape[0]):
            counts[values[i]] += 1
    else:
        for i in range(rows.shape[0]):
            counts[values[rows[i]]] += 1
    return counts


# --------------------------------------------------------------------------------------------------
# Per-send bookkeeping: fatigue as of the send, then counters
# --------------------------------------------------------------------------------------------------


def growth_exponents_numpy(departure: np.ndarray, epoch_s: float, inv_tau: float) -> np.ndarray:
    """float32 ``(departure - epoch_s) * inv_tau`` (computed in float64, then rounded): the exponents of
    the fatigue growth factors, whose exp numpy then takes (exp stays in numpy, see the module's note)."""
    return ((departure - epoch_s) * inv_tau).astype(np.float32)


def _growth_exponents_loop(departure, epoch_s, inv_tau):  # type: ignore[no-untyped-def]  # pragma: no cover
    out = np.empty(departure.shape[0], np.float32)
    for i in range(departure.shape[0]):
        out[i] = np.float32((departure[i] - epoch_s) * inv_tau)
    return out


def touch_numpy(
    stored: np.ndarray, grow: np.ndarray, week: np.ndarray, sends: np.ndarray, customer: np.ndarray
) -> tuple[np.ndarray, float]:
    """For unique ``customer`` rows sent at times whose fatigue growth factor is ``grow``: return the
    fatigue before this send (float32) and its greatest value (0.0 for no rows; fatigue is never negative),
    and record the send (fatigue +1 unit, weekly and total counters; the total saturates at its dtype's
    maximum)."""
    before = stored[customer]
    fatigue = np.asarray(before / grow, dtype=np.float32)
    stored[customer] = before + grow
    week[customer] += week.dtype.type(1)
    count = sends[customer]
    sends[customer] = count + (count < np.iinfo(sends.dtype).max)
    return fatigue, float(fatigue.max(initial=0.0))


def _touch_loop(stored, grow, week, sends, customer):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = customer.shape[0]
    fatigue = np.empty(n, np.float32)
    most = np.iinfo(sends.dtype).max
    top = np.float32(0.0)  # the block's greatest fatigue, found here rather than by a pass of numpy's max
    for i in range(n):
        c = customer[i]
        before = stored[c]
        f = before / grow[i]
        fatigue[i] = f
        top = max(top, f)
        stored[c] = before + grow[i]
        week[c] += 1
        if sends[c] < most:
            sends[c] += 1
    return fatigue, float(top)


# --------------------------------------------------------------------------------------------------
# Who may be sent: holdout, opt-outs and the weekly cap
# --------------------------------------------------------------------------------------------------


def sendable_numpy(
    customer: np.ndarray, contactable: np.ndarray, optin: np.ndarray, week: np.ndarray, bit: int, cap: int
) -> tuple[np.ndarray, int, int]:
    """Mask of the planned rows that may be sent on the channel with opt-in ``bit``: outside the holdout,
    opted in, and under ``cap`` sends this week. Also the counts refused as unreachable and as capped."""
    ok = contactable[customer] & ((optin[customer] >> np.uint8(bit)) & np.uint8(1)).astype(bool)
    unreachable = customer.shape[0] - int(ok.sum())
    capped = ok & (week[customer] >= cap)
    ok &= ~capped
    return ok, unreachable, int(capped.sum())


def _sendable_loop(customer, contactable, optin, week, bit, cap):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = customer.shape[0]
    ok = np.empty(n, np.bool_)
    unreachable = 0
    capped = 0
    for i in range(n):
        c = customer[i]
        if not contactable[c] or not (optin[c] >> bit) & 1:
            ok[i] = False
            unreachable += 1
        elif week[c] >= cap:
            ok[i] = False
            capped += 1
        else:
            ok[i] = True
    return ok, unreachable, capped


def rule_rows_numpy(
    customer: np.ndarray,
    segment: np.ndarray,
    choice: np.ndarray,
    contactable: np.ndarray,
    optin: np.ndarray,
    week: np.ndarray,
    bit: int,
    cap: int,
    region: np.ndarray,
    regions: int,
    creatives: int,
) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray, np.ndarray]:
    """A shard's rows of a wave planned by a rule, checked and counted: each row's creative is its segment's
    ``choice``; the rows :func:`sendable` refuses go; what is left is counted per region (``regions``) and the
    creatives it uses are marked (``creatives``). Returns (customers, int32 creatives, refused as unreachable,
    refused as capped, int64 count per region, bool used per creative). The caller gives ``customer`` up: the
    compiled loop writes the customers kept over it (a shard's rows are a third of a gigabyte at 95 million)."""
    creative = choice[segment].astype(np.int32)
    ok, unreachable, capped = sendable_numpy(customer, contactable, optin, week, bit, cap)
    customer, creative = customer[ok], creative[ok]
    by_region = counts_numpy(region, regions, customer)
    return customer, creative, unreachable, capped, by_region, creatives_used_numpy(creative, creatives)


def _rule_rows_loop(customer, segment, choice, contactable, optin, week, bit, cap, region, regions, creatives):  # type: ignore[no-untyped-def]  # pragma: no cover
    # One pass where four took one each (the choice's gather, sendable, the count per region, the creatives
    # used): at 36 million rows, 240 -> 125 ms a shard and wave (docs/model.md §15.12). The kept customers are
    # written over the given ones: row k is written after row i >= k is read.
    n = customer.shape[0]
    out_customer = customer
    out_creative = np.empty(n, np.int32)
    by_region = np.zeros(regions, np.int64)
    used = np.zeros(creatives, np.bool_)
    unreachable = 0
    capped = 0
    k = 0
    for i in range(n):
        c = customer[i]
        if not contactable[c] or not (optin[c] >> bit) & 1:
            unreachable += 1
        elif week[c] >= cap:
            capped += 1
        else:
            chosen = choice[segment[i]]
            out_customer[k] = c
            out_creative[k] = chosen
            by_region[region[c]] += 1
            used[chosen] = True
            k += 1
    return out_customer[:k], out_creative[:k], unreachable, capped, by_region, used


# --------------------------------------------------------------------------------------------------
# Reads wait for the customer's daily active window
# --------------------------------------------------------------------------------------------------


def into_active_window_numpy(
    t_s: np.ndarray,
    customer: np.ndarray,
    region: np.ndarray,
    region_rel_s: np.ndarray,
    window_start_hour: np.ndarray,
    window_hours: np.ndarray,
    jitter: np.ndarray,
) -> np.ndarray:
    """:func:`masssim.model.channels.move_into_active_window` for the reads of ``customer`` (the look-ups of each
    customer's region offset and window are part of the kernel)."""
    return move_into_active_window(
        t_s,
        region_rel_s[region[customer]],
        window_start_hour[customer],
        window_hours[customer],
        jitter,
    )


# --------------------------------------------------------------------------------------------------
# A block of sends split by its uniforms: delivered, possibly read, pre-fetched, possibly unsubscribing
# --------------------------------------------------------------------------------------------------


# A send's one draw carries both of its uniforms. numpy's float64 uniform is a 53-bit integer times 2^-53 (the
# top 53 bits of one 64-bit output). Scaled by 2^24 (exact), its whole part is the send's uniform (24 bits,
# times 2^-24: a float32 on the grid numpy's own float32 uniforms use) and its fraction the unsubscribe's
# (the other 29 bits): disjoint bits of a uniform integer, so independent. One generator call per chunk and
# one value per row, where a float32 per uniform took two (a value costs numpy about 2 ns whatever its width).
# The send's uniform is compared with a rate without being formed: u < rate exactly when the draw is under
# send_threshold(rate), so the pass over every row does no conversion.
_TWO_POW_24 = 16777216.0
_TWO_POW_MINUS_24 = 1.0 / _TWO_POW_24


def send_uniform_numpy(draw: np.ndarray) -> np.ndarray:
    """float32: each send's uniform for delivery, read, click and pre-fetch, ``floor(draw * 2^24) * 2^-24``."""
    return (np.floor(draw * _TWO_POW_24) * _TWO_POW_MINUS_24).astype(np.float32)  # type: ignore[no-any-return]


def unsubscribe_uniform_numpy(draw: np.ndarray) -> np.ndarray:
    """float64: each send's uniform for unsubscribing, the fraction of ``draw * 2^24`` (the bits
    :func:`send_uniform_numpy` leaves)."""
    scaled = draw * _TWO_POW_24
    return scaled - np.floor(scaled)  # type: ignore[no-any-return]


def send_threshold(rate: float | np.floating) -> float:
    """The draw below which a send's uniform is below ``rate``: ``u < rate`` exactly when ``draw <
    send_threshold(rate)`` (u is a whole number of 2^-24, and every step here is exact)."""
    return math.ceil(float(rate) * _TWO_POW_24) * _TWO_POW_MINUS_24


def send_draw_numpy(u: np.ndarray, u_unsub: np.ndarray) -> np.ndarray:
    """The float64 draw whose two uniforms are ``u`` and ``u_unsub`` (both on the 2^-24 grid in [0, 1)): the
    inverse of the two above, for tests that set a send's uniforms."""
    return u.astype(np.float64) + u_unsub.astype(np.float64) * _TWO_POW_MINUS_24  # type: ignore[no-any-return]


def _send_uniform(draw):  # type: ignore[no-untyped-def]  # pragma: no cover
    return np.float32(np.floor(draw * _TWO_POW_24) * _TWO_POW_MINUS_24)


# Called from compiled loops only, and inlined into them.
_send_uniform_compiled = None if _numba is None else _numba.njit(cache=True, nogil=True, inline="always")(_send_uniform)


def split_sends_numpy(
    draw: np.ndarray,
    delivery_rate: np.float32,
    read_bound: np.float32,
    prefetch_top: np.float32,
    unsub_bound: np.float32,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (ascending, int32: a block has fewer than 2^31 rows) of a block of sends, from their two
    uniforms (``u``, :func:`send_uniform_numpy`, and ``u_unsub``, :func:`unsubscribe_uniform_numpy`, of each
    row's ``draw``):

    * delivered: ``u < delivery_rate`` (None when every row is);
    * read candidates: ``u < read_bound`` (the read probability's upper bound);
    * pre-fetch candidates: ``read_bound <= u < prefetch_top`` (empty when ``prefetch_top <= read_bound``);
    * unsubscribe candidates: delivered and ``u_unsub < unsub_bound``.
    """
    u = send_uniform_numpy(draw)
    u_unsub = unsubscribe_uniform_numpy(draw)
    delivered = u < delivery_rate
    d_idx = None if delivered.all() else np.flatnonzero(delivered).astype(np.int32)
    cand = np.flatnonzero(u < read_bound).astype(np.int32)
    above = np.flatnonzero((u >= read_bound) & (u < prefetch_top)).astype(np.int32)
    unsub = np.flatnonzero(u_unsub < unsub_bound).astype(np.int32)
    return d_idx, cand, above, unsub[delivered[unsub]]


def _split_sends_loop(draw, delivered_below, read_below, prefetch_below, unsub_bound):  # type: ignore[no-untyped-def]  # pragma: no cover
    # Branch-free: every row is written at the end of each list and the list grows only if the row belongs
    # to it. The uniforms make the branches unpredictable (a read candidate is one row in five), and a
    # mispredicted branch per row cost more than the whole pass. A list never runs ahead of the row index,
    # so its buffer of n rows is never overrun; untouched pages of the buffers are never faulted in.
    # The send's uniform is compared through the draw's thresholds (send_threshold), not formed.
    n = draw.shape[0]
    # Every buffer is int32 (a block has fewer than 2^31 rows). The delivered rows are nearly all rows and
    # are kept as they are (4 bytes a row written, where int64 wrote 8); the other lists are short and what is
    # kept of them is copied out: a block's four int64 buffers of n rows were 32 MB at 2^20 rows, live for
    # the whole block (docs/model.md §15.7).
    d_idx = np.empty(n, np.int32)
    cand = np.empty(n, np.int32)
    above = np.empty(n, np.int32)
    unsub = np.empty(n, np.int32)
    nd = nc = na = nu = 0
    for i in range(n):
        x = draw[i]
        scaled = x * _TWO_POW_24
        delivered = x < delivered_below
        d_idx[nd] = i
        nd += delivered
        unsub[nu] = i
        nu += delivered & (scaled - np.floor(scaled) < unsub_bound)
        cand[nc] = i
        nc += x < read_below
        above[na] = i
        na += (x >= read_below) & (x < prefetch_below)
    # The three short lists leave as copies of their own size, so the block's buffers go at once.
    delivered = None if nd == n else d_idx[:nd]
    return delivered, cand[:nc].copy(), above[:na].copy(), unsub[:nu].copy()


_split_sends_compiled = _compiled(_split_sends_loop)


def split_sends(
    draw: np.ndarray,
    delivery_rate: np.float32,
    read_bound: np.float32,
    prefetch_top: np.float32,
    unsub_bound: np.float32,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`split_sends_numpy`, by the compiled loop when there is one (the rates turned into the draw's
    thresholds, :func:`send_threshold`)."""
    if _split_sends_compiled is None:
        return split_sends_numpy(draw, delivery_rate, read_bound, prefetch_top, unsub_bound)
    return _split_sends_compiled(  # type: ignore[no-any-return]
        draw,
        send_threshold(delivery_rate),
        send_threshold(read_bound),
        send_threshold(prefetch_top),
        np.float64(unsub_bound),
    )


def day_counts_numpy(
    time_s: np.ndarray, rows: np.ndarray | None, shift_s: float, until_s: float, days: int
) -> np.ndarray:
    """int64 [days]: how many of the times ``time_s[rows] + shift_s`` (``rows`` None: every row), in any order,
    are at or before ``until_s``, per day of the series. A time on a day's end (``k * DAY_S`` exactly) counts
    in the day it ends, and the last day takes every later time: day = how many of the ends ``DAY_S, 2 DAY_S,
    ..., (days - 1) DAY_S`` are below the time."""
    time = (time_s if rows is None else time_s[rows]) + shift_s
    time = time[time <= until_s]
    day = np.searchsorted(np.arange(1, days) * DAY_S, time, side="left")
    return np.bincount(day, minlength=days)


def _day_of(t, last):  # type: ignore[no-untyped-def]  # pragma: no cover
    # How many of the day ends DAY_S, 2 DAY_S, ... are below t (at most ``last``): ceil(t / DAY_S) - 1,
    # checked against the ends themselves (k * DAY_S, the products numpy's arange gives), since the division
    # can round.
    d = np.ceil(t / DAY_S) - 1.0
    if (d + 1.0) * DAY_S < t:
        d += 1.0
    elif d >= 1.0 and d * DAY_S >= t:
        d -= 1.0
    if d <= 0.0:
        return 0
    if d >= last:
        return last
    return np.int64(d)


def _day_counts_loop(time_s, rows, shift_s, until_s, days):  # type: ignore[no-untyped-def]  # pragma: no cover
    counts = np.zeros(days, np.int64)
    every = rows is None
    n = time_s.shape[0] if every else rows.shape[0]
    last = days - 1
    for j in range(n):
        t = time_s[j if every else rows[j]] + shift_s
        if t <= until_s:
            counts[_day_of_compiled(t, last)] += 1
    return counts


def delivered_buckets_numpy(
    rows: np.ndarray | None,
    departure: np.ndarray,
    latency_s: float,
    bucket_s: float,
    creative: np.ndarray,
    customer: np.ndarray,
    segment_of: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """A block's delivered ``rows`` (None: every row) grouped by release bucket: (the buckets, ascending,
    int64; where each bucket's deliveries start, with the end last, int64; their creatives; the segment
    ``segment_of[customer]`` of each, empty when ``segment_of`` is (one segment); one more than the largest
    creative, 0 without deliveries). Within a bucket the deliveries keep their order.

    A delivery at ``t = departure + latency_s`` is in bucket k, the first with ``t <= k * bucket_s``: the edge at
    which the events in flight release it. ``ceil(t / bucket_s)`` can be one off where the division rounds, so
    it is checked against the products themselves."""
    picked = slice(None) if rows is None else rows
    time_s = departure[picked] + latency_s
    bucket = np.ceil(time_s / bucket_s)
    bucket = np.where(
        time_s > bucket * bucket_s, bucket + 1.0, np.where(time_s <= (bucket - 1.0) * bucket_s, bucket - 1.0, bucket)
    ).astype(np.int64)
    order = np.argsort(bucket, kind="stable")
    bucket = bucket[order]
    if bucket.shape[0] == 0:
        run_start, run_bucket = np.zeros(1, np.int64), np.empty(0, np.int64)
    else:
        run_start = np.concatenate(([0], np.flatnonzero(np.diff(bucket)) + 1, [bucket.shape[0]])).astype(np.int64)
        run_bucket = bucket[run_start[:-1]]
    taken = creative[picked][order]
    segment = segment_of[customer[picked][order]] if segment_of.shape[0] else np.empty(0, segment_of.dtype)
    return run_bucket, run_start, taken, segment, int(taken.max()) + 1 if taken.shape[0] else 0


def _delivered_buckets_loop(rows, departure, latency_s, bucket_s, creative, customer, segment_of):  # type: ignore[no-untyped-def]  # pragma: no cover
    # Each delivery's bucket (the same float64 sum and products as numpy's; the time is never stored), then a
    # stable counting sort by bucket that gathers the creatives and segments into their places.
    every = rows is None
    n = departure.shape[0] if every else rows.shape[0]
    bucket = np.empty(n, np.int64)
    low = np.int64(0)
    high = np.int64(-1)
    largest = -1
    for j in range(n):
        i = j if every else rows[j]
        t = departure[i] + latency_s
        k = np.ceil(t / bucket_s)
        if t > k * bucket_s:
            k += 1.0
        elif t <= (k - 1.0) * bucket_s:
            k -= 1.0
        b = np.int64(k)
        bucket[j] = b
        if j == 0 or b < low:
            low = b
        if j == 0 or b > high:
            high = b
        largest = max(largest, creative[i])
    span = high - low + 1
    next_row = np.zeros(span, np.int64)
    for j in range(n):
        next_row[bucket[j] - low] += 1
    run_bucket = np.empty(span, np.int64)
    run_start = np.empty(span + 1, np.int64)
    runs = 0
    total = 0
    for b in range(span):
        count = next_row[b]
        next_row[b] = total
        if count > 0:
            run_bucket[runs] = low + b
            run_start[runs] = total
            runs += 1
        total += count
    run_start[runs] = n
    out_creative = np.empty(n, creative.dtype)
    segmented = segment_of.shape[0] > 0
    out_segment = np.empty(n if segmented else 0, segment_of.dtype)
    for j in range(n):
        i = j if every else rows[j]
        at = next_row[bucket[j] - low]
        next_row[bucket[j] - low] = at + 1
        out_creative[at] = creative[i]
        if segmented:
            out_segment[at] = segment_of[customer[i]]
    return run_bucket[:runs].copy(), run_start[: runs + 1].copy(), out_creative, out_segment, largest + 1


# Deliveries counted per (bucket, segment, creative) cell in one pass, without ordering them by bucket: the
# usual block (one creative for everyone, or one per persona once the personas roll out) cost about 7 ns a
# delivery through delivered_buckets and a count per run, whose counting sort's increments of one bin wait for
# each other. Its definition is that path (DeliveryCells.add's other branch), which the tests compare it with.
# A block is counted here when its table of (bucket, creative) or (bucket, segment) entries is no larger than
# CELL_TABLE_ENTRIES or the block's rows, whichever is larger. (Counting a small table in four interleaved copies,
# so that rows of one cell in a row would not wait for each other, measured no faster: 1.77 against 1.79 ns a row.)
CELL_TABLE_ENTRIES = 1 << 16


def _bucket_of(t, inverse, bucket_s):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    # The first edge k * bucket_s at or after t: ceil(t / bucket_s), here from a product by the reciprocal, put
    # right by the same two checks against the products that delivered_buckets makes (so exactly its k). It
    # does not decrease as t grows, so the block's earliest and latest departures bound every row's bucket.
    k = np.ceil(t * inverse)
    if t > k * bucket_s:
        k += 1.0
    elif t <= (k - 1.0) * bucket_s:
        k -= 1.0
    return np.int64(k)


def _delivered_cells_loop(
    rows, departure, first_s, last_s, latency_s, bucket_s, creative, customer, segment_of, n_segments
):  # type: ignore[no-untyped-def]  # pragma: no cover
    # Returns (done, buckets, piece starts, segments, creatives, counts): per release bucket (ascending) the
    # distinct cells of its deliveries in ascending (segment, creative) order, each with its count. done is
    # False, and nothing else is meaningful, when the tables would be too large, a row's departure is outside
    # [first_s, last_s], or a (bucket, segment) has deliveries of two creatives: the caller then takes the
    # general path.
    every = rows is None
    n = departure.shape[0] if every else rows.shape[0]
    empty = np.empty(0, np.int64)
    empty32 = np.empty(0, np.int32)
    if n == 0:
        return False, empty, empty, empty32, empty32, empty
    inverse = 1.0 / bucket_s
    low = _bucket_of_compiled(first_s + latency_s, inverse, bucket_s)
    high = _bucket_of_compiled(last_s + latency_s, inverse, bucket_s)
    span = high - low + 1
    segmented = segment_of.shape[0] > 0
    limit = max(CELL_TABLE_ENTRIES, n)
    if segmented:
        per_bucket = np.int64(n_segments)
    else:  # one more than the largest creative of the block (a superset of the delivered rows')
        largest = np.int64(-1)
        for i in range(creative.shape[0]):
            largest = max(largest, np.int64(creative[i]))
        per_bucket = largest + 1
    entries = span * per_bucket
    if span < 1 or entries > limit:
        return False, empty, empty, empty32, empty32, empty
    if segmented:
        only = np.full(entries, -1, np.int32)
        tally = np.zeros(entries, np.int64)
        for j in range(n):
            i = j if every else rows[j]
            b = _bucket_of_compiled(departure[i] + latency_s, inverse, bucket_s)
            if b < low or b > high:
                return False, empty, empty, empty32, empty32, empty
            e = (b - low) * per_bucket + segment_of[customer[i]]
            c = creative[i]
            if only[e] == c:
                tally[e] += 1
            elif only[e] < 0:
                only[e] = c
                tally[e] = 1
            else:  # a second creative in one persona's bucket (a test wave): the general path counts it
                return False, empty, empty, empty32, empty32, empty
    else:
        tally = np.zeros(entries, np.int64)
        for j in range(n):
            i = j if every else rows[j]
            b = _bucket_of_compiled(departure[i] + latency_s, inverse, bucket_s)
            if b < low or b > high:
                return False, empty, empty, empty32, empty32, empty
            tally[(b - low) * per_bucket + creative[i]] += 1
        only = np.empty(0, np.int32)
    # Read the tables off bucket by bucket, cells in ascending (segment, creative) order.
    used = 0
    for e in range(entries):
        used += tally[e] > 0
    run_bucket = np.empty(span, np.int64)
    run_start = np.empty(span + 1, np.int64)
    out_segment = np.empty(used if segmented else 0, np.int32)
    out_creative = np.empty(used, np.int32)
    out_count = np.empty(used, np.int64)
    runs = 0
    at = 0
    for b in range(span):
        first = at
        for x in range(per_bucket):
            e = b * per_bucket + x
            if tally[e] > 0:
                if segmented:
                    out_segment[at] = x
                    out_creative[at] = only[e]
                else:
                    out_creative[at] = x
                out_count[at] = tally[e]
                at += 1
        if at > first:
            run_bucket[runs] = low + b
            run_start[runs] = first
            runs += 1
    run_start[runs] = at
    return True, run_bucket[:runs].copy(), run_start[: runs + 1].copy(), out_segment, out_creative, out_count


# --------------------------------------------------------------------------------------------------
# Reads: when each is read, and its click log-odds, in one pass over the readers
# --------------------------------------------------------------------------------------------------


def read_outcomes_numpy(
    read_at: np.ndarray,
    reader: np.ndarray,
    creative: np.ndarray,
    fatigue: np.ndarray,
    jitter: np.ndarray | None,
    region: np.ndarray,
    region_rel_s: np.ndarray,
    window_start_hour: np.ndarray,
    window_hours: np.ndarray,
    taste: np.ndarray,
    directions: np.ndarray,
    quality: np.ndarray,
    warmth: np.ndarray,
    coefficients: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each read (by customer ``reader`` of ``creative``, with that send's ``fatigue``): its time, moved
    into the reader's active window when ``jitter`` is given, and the click log-odds

        logit(cto) + beta * theta . phi + quality + delta * warmth - gamma * fatigue

    with ``coefficients`` = float32 [logit(cto), beta, delta, gamma], evaluated left to right in float32.
    One loop gathers every per-reader attribute, so the cache misses of the different arrays overlap. Taste
    is read at half precision (:func:`as_half`), as the population stores it."""
    taste = as_half(taste)
    if jitter is not None:
        read_at = into_active_window_numpy(
            read_at, reader, region, region_rel_s, window_start_hour, window_hours, jitter
        )
    c0, beta, delta, gamma = (np.float32(x) for x in coefficients)
    logit_click = (
        c0
        + beta * row_dot_numpy(taste, directions, reader, creative)
        + quality[creative]
        + delta * warmth[reader]
        - gamma * fatigue
    )
    return read_at, logit_click


def _floor_mod(x, m):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``x % m`` (numpy's and Python's floor modulo, m > 0) without the libm fmod, which is slow (it cost
    more than the rest of a read). fmod's result is exact, and so is this one: for x >= 0 with q = floor(x/m)
    (possibly one off, as x/m is rounded), x - q*m is exact (Sterbenz), and the correction by m lands on the
    exact remainder, which is representable. For -m < x < 0 the floor modulo is x + m, rounded, exactly
    the operation numpy does there (fmod returns x, then adds m). Anything else takes the plain operator.

    Both cases above x > -m are computed and one is chosen by selects rather than branches: in the read kernel
    the sign of x (the hour less the window's start) is a coin toss, and its mispredicted branches cost more
    than the arithmetic (bench_cache_hints.py's "in cache" read: 31 -> 21-22 ns with the window move's select)."""
    if x > -m:
        q = np.floor(x / m)
        r = x - q * m
        r = r + m if r < 0.0 else (r - m if r >= m else r)
        return r if x >= 0.0 else x + m
    return x % m


def _read_outcomes_loop(  # type: ignore[no-untyped-def]  # pragma: no cover
    read_at,
    reader,
    creative,
    fatigue,
    jitter,
    region,
    region_rel_s,
    window_start_hour,
    window_hours,
    taste,
    directions,
    quality,
    warmth,
    coefficients,
):
    n = reader.shape[0]
    d = taste.shape[1]
    moved = np.empty(n, np.float64)
    logit_click = np.empty(n, np.float32)
    c0, beta, delta, gamma = coefficients[0], coefficients[1], coefficients[2], coefficients[3]
    for i in range(n):
        if i + ROWS_AHEAD < n:  # the reader a few rows on: its attributes are far from this one's
            ahead = reader[i + ROWS_AHEAD]
            load_soon(taste[ahead], 0)
            load_soon(warmth, ahead)
            load_soon(region, ahead)
            load_soon(window_start_hour, ahead)
            load_soon(window_hours, ahead)
        c = reader[i]
        k = creative[i]
        t = read_at[i]
        if jitter is not None:
            hour = _floor_mod_compiled((t + region_rel_s[region[c]]) / HOUR_S, 24.0)
            since_start = _floor_mod_compiled(hour - np.float64(window_start_hour[c]), 24.0)
            length = np.float64(window_hours[c])
            # A select, not a branch: whether a read falls outside its reader's window is a coin toss.
            later = t + (24.0 - since_start + np.float64(jitter[i]) * min(length, 1.0)) * HOUR_S
            t = later if since_start >= length else t
        moved[i] = t
        dot = _half_compiled(taste[c, 0]) * directions[k, 0]  # taste: float16 bits (half_bits)
        for j in range(1, d):
            dot += _half_compiled(taste[c, j]) * directions[k, j]
        logit_click[i] = c0 + beta * dot + quality[k] + delta * warmth[c] - gamma * fatigue[i]
    return moved, logit_click


# --------------------------------------------------------------------------------------------------
# Scatter-adds: a customer named twice gets both additions, in order
# --------------------------------------------------------------------------------------------------


def scatter_add_numpy(target: np.ndarray, idx: np.ndarray, values: np.ndarray) -> None:
    """target[idx[i]] += values[i] for each i in order (values of target's dtype)."""
    np.add.at(target, idx, values)


def _scatter_add_loop(target, idx, values):  # type: ignore[no-untyped-def]  # pragma: no cover
    for i in range(idx.shape[0]):
        target[idx[i]] += values[i]


def increment_numpy(counter: np.ndarray, idx: np.ndarray) -> None:
    """counter[idx] += 1, counting repeated indices (wrapping at the dtype's top, as numpy does)."""
    np.add.at(counter, idx, counter.dtype.type(1))


def _increment_loop(counter, idx):  # type: ignore[no-untyped-def]  # pragma: no cover
    for i in range(idx.shape[0]):
        counter[idx[i]] += 1


# --------------------------------------------------------------------------------------------------
# The market tally: each counted occasion's brand under the arm's marketing, counted where it is chosen
# --------------------------------------------------------------------------------------------------


def tally_brands_numpy(
    customer: np.ndarray,
    brand_prob: np.ndarray,
    uniform: np.ndarray,
    p_ours: np.ndarray | None,
    bought_ours: np.ndarray | None,
    gone: np.ndarray | None,
    brands_bought: np.ndarray,
    purchases: np.ndarray,
) -> None:
    """For each occasion of ``customer`` (its choice ``uniform``, our brand's probability with the adstock
    ``p_ours``, the engine's verdict ``bought_ours``, ``gone`` for customers who left): the brand bought,
    :func:`masssim.model.market.brand_with_marketing` on the customer's row of ``brand_prob``; then
    ``purchases[brand] += 1`` and the brand's bit set in ``brands_bought[customer]``
    (:class:`masssim.model.market.MarketTally`'s counts). With ``p_ours``, ``bought_ours`` and ``gone`` all
    None, the market without marketing: :func:`masssim.model.market.brand_without_marketing`, which is what
    ``MarketTally.add`` counts. The probabilities are read at half precision (:func:`as_half`), as the
    population stores them."""
    brand_prob = as_half(brand_prob)
    if bought_ours is None or p_ours is None:  # the compiled loop reads each one apart: only all or none
        if not (bought_ours is None and p_ours is None and gone is None):
            raise ValueError(
                "tally_brands: p_ours, bought_ours and gone all None (no marketing),"
                " or p_ours and bought_ours both given"
            )
        brand = brand_without_marketing(brand_prob[customer], uniform)
    else:
        brand = brand_with_marketing(brand_prob[customer], uniform, p_ours, bought_ours, gone)
    purchases += np.bincount(brand, minlength=purchases.shape[0])
    mask = brands_bought.dtype.type
    np.bitwise_or.at(brands_bought, customer, np.left_shift(mask(1), brand.astype(brands_bought.dtype)))


def _rival_brand(v, p0, p, left, brand_prob, c):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    # brand_with_marketing's brand for an occasion that is not ours, in its float64 operations and order: the
    # uniform v stretched onto the rivals' slices (all of [p0, 1) when the customer left; past our probability p
    # with the adstock when it differs from p0, our probability without), then the count of the running sums
    # p_0 + ... + p_j (j < J - 1) at or below it. brand_prob: float16 bits (half_bits), customer c's row.
    # Shared by tally_brands and release_kernels.organic_choices, inlined into both.
    if left:
        v = p0 + v * (1.0 - p0)
    elif p != p0:
        v = max(p0 + (v - p) * (1.0 - p0) / (1.0 - p), p0)
    brand = 0
    running = p0
    if running <= v:
        brand += 1
    for j in range(1, brand_prob.shape[1] - 1):
        running += np.float64(_half_compiled(brand_prob[c, j]))
        if running <= v:
            brand += 1
    return brand


def _tally_brands_loop(  # type: ignore[no-untyped-def]  # pragma: no cover
    customer, brand_prob, uniform, p_ours, bought_ours, gone, brands_bought, purchases
):
    # The same float64 operations, in the same order, as brand_with_marketing: v is the uniform stretched
    # onto the rivals' slices, then the count of running sums p_0 + ... + p_j (j < J - 1) at or below it.
    # Without marketing (bought_ours None) v is the uniform itself: brand_without_marketing's comparisons.
    n_brands = brand_prob.shape[1]
    one = brands_bought.dtype.type(1)
    n = customer.shape[0]
    for i in range(n):
        if i + ROWS_AHEAD < n:  # occasions come in time order, their customers anywhere (cache_hints.py)
            ahead = customer[i + ROWS_AHEAD]
            load_soon(brand_prob[ahead], 0)
            load_soon(brands_bought, ahead)
        c = customer[i]
        brand = 0
        ours = bought_ours is not None and bought_ours[i]
        if not ours and n_brands > 1:
            p0 = np.float64(_half_compiled(brand_prob[c, 0]))  # brand_prob: float16 bits (half_bits)
            p = p0  # without marketing, our brand's probability is p0 (no stretch)
            if p_ours is not None:
                p = np.float64(p_ours[i])
            brand = _rival_brand_compiled(np.float64(uniform[i]), p0, p, gone is not None and gone[i], brand_prob, c)
        purchases[brand] += 1
        brands_bought[c] |= one << brands_bought.dtype.type(brand)


# --------------------------------------------------------------------------------------------------
# A week's occasions in a chunk, given to its customers (organic.OccasionStream, docs/model.md §5.1)
# --------------------------------------------------------------------------------------------------


def rate_total_numpy(rate: np.ndarray) -> float:
    """The sum of ``rate`` in float64, added one row after another (as :func:`occasion_rows` walks them; numpy's
    ``sum`` adds pairwise and may round differently)."""
    return float(np.cumsum(rate, dtype=np.float64)[-1]) if rate.shape[0] else 0.0


def _rate_total_loop(rate):  # type: ignore[no-untyped-def]  # pragma: no cover
    total = 0.0
    for i in range(rate.shape[0]):
        total += np.float64(rate[i])
    return total


def occasion_rows_numpy(rate: np.ndarray, points: np.ndarray, offset: int, dtype: type) -> np.ndarray:
    """The row (plus ``offset``, in ``dtype``) that owns each of ``points`` (ascending, each below
    :func:`rate_total`): row i owns [S(i-1), S(i)), S being the running sum of ``rate`` in float64. A row with a
    zero rate owns nothing."""
    running = np.cumsum(rate, dtype=np.float64)
    return (np.searchsorted(running, points, side="right") + offset).astype(dtype)


def _occasion_rows_loop(rate, points, offset, out):  # type: ignore[no-untyped-def]  # pragma: no cover
    running = 0.0
    p = 0
    m = points.shape[0]
    for i in range(rate.shape[0]):
        running += np.float64(rate[i])
        while p < m and points[p] < running:
            out[p] = i + offset
            p += 1
    return out


def _occasion_rows_compiled(rate: np.ndarray, points: np.ndarray, offset: int, dtype: type) -> np.ndarray:
    out: np.ndarray = np.empty(points.shape[0], dtype)
    return _occasion_rows_kernel(rate, points, offset, out)  # type: ignore[no-any-return, misc]


_occasion_rows_kernel = _compiled(_occasion_rows_loop)


# --------------------------------------------------------------------------------------------------
# Times grouped into slots of equal width, rows of a slot in their order (organic.stable_time_order)
# --------------------------------------------------------------------------------------------------


def slot_order_numpy(time_s: np.ndarray, low: float, scale: float, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """(the stable permutation that orders rows by slot ``min(int((t - low) * scale), slots - 1)``, int64;
    where each slot's rows start in it, with the end last, int64). The slot never decreases as the time
    grows (the same float operations on every row), so ordering by slot keeps the time order between slots."""
    slot = np.minimum(((time_s - low) * scale).astype(np.int64), slots - 1)
    order = np.argsort(slot, kind="stable").astype(np.int64)
    starts = np.searchsorted(slot[order], np.arange(slots + 1), side="left").astype(np.int64)
    return order, starts


def _slot_order_loop(time_s, low, scale, slots):  # type: ignore[no-untyped-def]  # pragma: no cover
    # The slot is computed again in the second pass rather than kept: no array of n slots.
    n = time_s.shape[0]
    starts = np.zeros(slots + 1, np.int64)
    for i in range(n):
        starts[min(np.int64((time_s[i] - low) * scale), slots - 1) + 1] += 1
    for k in range(slots):
        starts[k + 1] += starts[k]
    fill = starts[:-1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):  # rows of a slot keep their order: the counting sort is stable
        k = min(np.int64((time_s[i] - low) * scale), slots - 1)
        order[fill[k]] = i
        fill[k] += 1
    return order, starts


# --------------------------------------------------------------------------------------------------
# Buffered draws: rows in no order take the next values of their chunk's buffer (engine/chunks.py)
# --------------------------------------------------------------------------------------------------


def hand_out_numpy(chunk: np.ndarray, values: np.ndarray, cursor: np.ndarray) -> np.ndarray:
    """Row i gets ``values[chunk[i], cursor[chunk[i]] + j]``, where j counts the earlier rows of its chunk,
    and each chunk's cursor moves past the rows it served (every chunk's buffer holds enough)."""
    order = np.argsort(chunk, kind="stable")
    by_chunk = chunk[order].astype(np.int64)
    first = np.searchsorted(by_chunk, by_chunk, side="left")  # the first sorted row of each row's chunk
    out = np.empty(chunk.shape[0], values.dtype)
    out[order] = values[by_chunk, cursor[by_chunk] + (np.arange(chunk.shape[0]) - first)]
    cursor += np.bincount(by_chunk, minlength=cursor.shape[0])
    return out


def _hand_out_loop(chunk, values, cursor):  # type: ignore[no-untyped-def]  # pragma: no cover
    out = np.empty(chunk.shape[0], values.dtype)
    for i in range(chunk.shape[0]):
        k = chunk[i]
        out[i] = values[k, cursor[k]]
        cursor[k] += 1
    return out


_floor_mod_compiled = _compiled(_floor_mod)  # called from compiled loops only
_day_of_compiled = None if _numba is None else _numba.njit(cache=True, nogil=True, inline="always")(_day_of)
# Called from compiled loops only, and inlined into them (a call per element would cost more than the load).
_half_compiled = None if _numba is None else _numba.njit(cache=True, nogil=True, inline="always")(_half)
_rival_brand_compiled = None if _numba is None else _numba.njit(cache=True, nogil=True, inline="always")(_rival_brand)
# The positions of the arguments each compiled loop takes as float16 bits: taste; brand probabilities.
HALF_ARGUMENTS = {"read_outcomes": (9,), "tally_brands": (1,)}


def _with_half_arguments(loop: Callable[..., Any] | None, *positions: int) -> Callable[..., Any] | None:
    """The compiled ``loop`` given the arguments at ``positions`` as float16 bits (:func:`half_bits`)."""
    if loop is None:
        return None

    def call(*args: Any) -> Any:
        given = list(args)
        for at in positions:
            given[at] = half_bits(given[at])
        return loop(*given)

    return call


release_groups: Callable[..., tuple[np.ndarray, np.ndarray]] = _compiled(_release_groups_loop) or release_groups_numpy
chunk_run_starts: Callable[..., np.ndarray] = _compiled(_chunk_run_starts_loop) or chunk_run_starts_numpy
check_plan_customers: Callable[..., int] = _compiled(_check_plan_customers_loop) or check_plan_customers_numpy
creatives_used: Callable[..., np.ndarray] = _compiled(_creatives_used_loop) or creatives_used_numpy
counts: Callable[..., np.ndarray] = _compiled(_counts_loop) or counts_numpy
growth_exponents: Callable[..., np.ndarray] = _compiled(_growth_exponents_loop) or growth_exponents_numpy
touch: Callable[..., tuple[np.ndarray, float]] = _compiled(_touch_loop) or touch_numpy
sendable: Callable[..., tuple[np.ndarray, int, int]] = _compiled(_sendable_loop) or sendable_numpy
rule_rows: Callable[..., tuple[Any, ...]] = _compiled(_rule_rows_loop) or rule_rows_numpy
read_outcomes: Callable[..., tuple[np.ndarray, np.ndarray]] = (
    _with_half_arguments(_compiled(_read_outcomes_loop), *HALF_ARGUMENTS["read_outcomes"]) or read_outcomes_numpy
)
scatter_add: Callable[..., None] = _compiled(_scatter_add_loop) or scatter_add_numpy
increment: Callable[..., None] = _compiled(_increment_loop) or increment_numpy
tally_brands: Callable[..., None] = (
    _with_half_arguments(_compiled(_tally_brands_loop), *HALF_ARGUMENTS["tally_brands"]) or tally_brands_numpy
)
hand_out: Callable[..., np.ndarray] = _compiled(_hand_out_loop) or hand_out_numpy
slot_order: Callable[..., tuple[np.ndarray, np.ndarray]] = _compiled(_slot_order_loop) or slot_order_numpy
_increasing_compiled = _compiled(_increasing_loop)  # also called from _check_plan_customers_loop
increasing: Callable[[np.ndarray], bool] = _increasing_compiled or increasing_numpy
rate_total: Callable[[np.ndarray], float] = _compiled(_rate_total_loop) or rate_total_numpy
occasion_rows: Callable[..., np.ndarray] = (
    occasion_rows_numpy if _occasion_rows_kernel is None else _occasion_rows_compiled
)
day_counts: Callable[..., np.ndarray] = _compiled(_day_counts_loop) or day_counts_numpy
delivered_buckets: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]] = (
    _compiled(_delivered_buckets_loop) or delivered_buckets_numpy
)
_bucket_of_compiled = _compiled(_bucket_of)  # called from compiled loops only
delivered_cells: Callable[..., tuple[bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = (
    _compiled(_delivered_cells_loop)
)
