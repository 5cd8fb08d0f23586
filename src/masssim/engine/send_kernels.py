"""The send pipeline's fused passes: a block's reads, their order by bucket, clicks and pre-fetch opens.

:meth:`masssim.engine.outbound.OutboundSender._respond` used to do these as some twenty numpy passes per
block (a mask, a compaction, then a gather per attribute, each with its temporary). Each kernel here does
one of those runs of passes as one loop. The rules are those of :mod:`masssim.engine.kernels`:

* ``*_numpy`` is the definition (vectorised numpy, always available, what the tests compare against);
* the compiled loop is used when numba is importable and ``MASSSIM_KERNELS`` is not ``numpy``;
* both do the same IEEE operations in the same order, and no transcendental function: exp, log and expit
  stay separate vectorised numpy calls between the kernels (numba's may differ in the last bit), so a run
  gives the same bytes on either path.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from masssim.engine import kernels

# The send's uniform of a row's draw, inlined into the compiled loops (kernels.send_uniform_numpy's twin).
_send_uniform = kernels._send_uniform_compiled

# A span of buckets up to this is ordered by counting; a wider one (reads spread over years) by a stable sort.
_COUNTING_SPAN = 1 << 16


# --------------------------------------------------------------------------------------------------
# A block's departure times, row by row in plan order
# --------------------------------------------------------------------------------------------------


def plan_departures_numpy(group: np.ndarray, starts: np.ndarray, spacing_s: float, filled: np.ndarray) -> np.ndarray:
    """Each row's departure, in the block's own (plan) order: :func:`masssim.engine.kernels.departure_slots_numpy`
    (which advances ``filled``) gives them in departure order, and they are put back in the rows' places. Row
    i of group g is the next send of its group: it leaves at ``starts[g] + slot * spacing_s``, its slot
    counting the rows of group g before it (``filled[g]`` of them in earlier blocks)."""
    order, sorted_departure = kernels.departure_slots_numpy(group, starts, spacing_s, filled)
    departure = np.empty(group.shape[0], np.float64)
    departure[order] = sorted_departure
    return departure


def _plan_departures_loop(group, starts, spacing_s, filled):  # type: ignore[no-untyped-def]  # pragma: no cover
    # A row's slot is its group's count so far: one pass, no sort, nothing moved (the rows stay where the plan
    # put them, so the pipeline after this reads the customers' state in ascending order, §15.9).
    n = group.shape[0]
    departure = np.empty(n, np.float64)
    for i in range(n):
        g = group[i]
        departure[i] = starts[g] + filled[g] * spacing_s
        filled[g] += 1
    return departure


def departure_bounds(
    starts: np.ndarray, spacing_s: float, before: np.ndarray, after: np.ndarray
) -> tuple[float, float] | None:
    """The least and greatest departure :func:`plan_departures` gave a block, from each group's count of
    sends before it (``before``) and after it (``after``, its ``filled``), with no pass over the rows: a group's
    departures grow with its slot, so its first row in the block leaves first and its last row last, and each
    is computed with the kernel's own operations. None when the block has no rows."""
    used = after > before
    if not used.any():
        return None
    first = starts[used] + before[used] * spacing_s
    last = starts[used] + (after[used] - 1) * spacing_s
    return float(first.min()), float(last.max())


def departures_and_bounds(
    group: np.ndarray, starts: np.ndarray, spacing_s: float, filled: np.ndarray
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """:func:`plan_departures` (which advances ``filled``) with the block's :func:`departure_bounds`."""
    before = filled.copy()
    departure: np.ndarray = plan_departures(group, starts, spacing_s, filled)
    return departure, departure_bounds(starts, spacing_s, before, filled)


# --------------------------------------------------------------------------------------------------
# Reads: which candidates are read, and what the read pipeline needs of each
# --------------------------------------------------------------------------------------------------


def read_exponents_numpy(fatigue: np.ndarray, cand: np.ndarray, neg_kappa: np.float32) -> np.ndarray:
    """float32 ``neg_kappa * fatigue[cand]``: the exponents of the read candidates' fatigue factors."""
    return neg_kappa * fatigue[cand]  # type: ignore[no-any-return]


def _read_exponents_loop(fatigue, cand, neg_kappa):  # type: ignore[no-untyped-def]  # pragma: no cover
    out = np.empty(cand.shape[0], np.float32)
    for j in range(cand.shape[0]):
        out[j] = neg_kappa * fatigue[cand[j]]
    return out


def pick_reads_numpy(
    cand: np.ndarray,
    decay: np.ndarray,
    bound: np.float32,
    draw: np.ndarray,
    customer: np.ndarray,
    creative: np.ndarray,
    departure: np.ndarray,
    latency_s: float,
    fatigue: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The read candidates ``cand`` (ascending rows of the block) whose uniform ``u`` (the send's uniform of
    the row's ``draw``, :func:`masssim.engine.kernels.send_uniform_numpy`) is under their read probability
    ``bound * decay`` (float32), in row order: (reader, creative, delivery time ``departure + latency_s``,
    fatigue, and ``v = u / p``, the read's uniform rescaled into a fresh one for the click), and the
    candidates left unread (ascending rows)."""
    p = bound * decay
    u = kernels.send_uniform_numpy(draw[cand])
    is_read = u < p
    r_idx = cand[is_read]
    v = u[is_read] / p[is_read]
    return (
        customer[r_idx],
        creative[r_idx],
        departure[r_idx] + latency_s,
        fatigue[r_idx],
        v,
        cand[~is_read],
    )


def _pick_reads_loop(cand, decay, bound, draw, customer, creative, departure, latency_s, fatigue):  # type: ignore[no-untyped-def]  # pragma: no cover
    m = cand.shape[0]
    reader = np.empty(m, customer.dtype)
    r_creative = np.empty(m, creative.dtype)
    delivered_at = np.empty(m, np.float64)
    r_fatigue = np.empty(m, np.float32)
    v = np.empty(m, np.float32)
    unread = np.empty(m, np.int64)
    k = 0
    q = 0
    for j in range(m):  # branch-free: every row is written to both lists, and one of them keeps it
        i = cand[j]
        p = bound * decay[j]
        x = _send_uniform(draw[i])
        reader[k] = customer[i]
        r_creative[k] = creative[i]
        delivered_at[k] = departure[i] + latency_s
        r_fatigue[k] = fatigue[i]
        v[k] = x / (p if p > 0 else np.float32(1.0))  # a read has p > u >= 0; the guard is for the rest
        unread[q] = i
        read = x < p
        k += read
        q += 1 - read
    return reader[:k], r_creative[:k], delivered_at[:k], r_fatigue[:k], v[:k], unread[:q]


# --------------------------------------------------------------------------------------------------
# Reads ordered by their release bucket (engine/events.py), every attribute moved in the same pass
# --------------------------------------------------------------------------------------------------


def order_reads_numpy(
    read_at: np.ndarray,
    bucket_s: float,
    reader: np.ndarray,
    creative: np.ndarray,
    logit_click: np.ndarray,
    v: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The reads in the stable order of their bucket ``ceil(read_at / bucket_s)`` (what
    :meth:`masssim.engine.events.PendingEvents.order_by_bucket` gives): (int32 buckets, read_at, reader,
    creative, logit_click, v), each in that order."""
    bucket = np.ceil(read_at / bucket_s).astype(np.int64)
    order = np.argsort(bucket, kind="stable")
    return (
        bucket[order].astype(np.int32),
        read_at[order],
        reader[order],
        creative[order],
        logit_click[order],
        v[order],
    )


def _order_reads_loop(read_at, bucket_s, reader, creative, logit_click, v):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = read_at.shape[0]
    bucket = np.empty(n, np.int64)
    low = np.int64(0)
    high = np.int64(0)
    for i in range(n):
        b = np.int64(np.ceil(read_at[i] / bucket_s))
        bucket[i] = b
        if i == 0 or b < low:
            low = b
        if i == 0 or b > high:
            high = b
    out_bucket = np.empty(n, np.int32)
    out_at = np.empty(n, np.float64)
    out_reader = np.empty(n, reader.dtype)
    out_creative = np.empty(n, creative.dtype)
    out_logit = np.empty(n, np.float32)
    out_v = np.empty(n, np.float32)
    span = high - low + 1
    if n and span > _COUNTING_SPAN:  # rare: any stable sort gives the same permutation
        order = np.argsort(bucket, kind="mergesort")
        for k in range(n):
            i = order[k]
            out_bucket[k] = bucket[i]
            out_at[k] = read_at[i]
            out_reader[k] = reader[i]
            out_creative[k] = creative[i]
            out_logit[k] = logit_click[i]
            out_v[k] = v[i]
        return out_bucket, out_at, out_reader, out_creative, out_logit, out_v
    next_row = np.zeros(max(span, 1), np.int64)
    for i in range(n):
        next_row[bucket[i] - low] += 1
    total = 0
    for b in range(span):
        count = next_row[b]
        next_row[b] = total
        total += count
    # One loop moves all six arrays: a block's reads fit in the caches, and this measured faster than a
    # position pass and one scatter per array (which was faster for the larger arrays of a whole block of sends).
    for i in range(n):  # rows of a bucket keep their order: a stable counting sort
        b = bucket[i] - low
        k = next_row[b]
        next_row[b] = k + 1
        out_bucket[k] = bucket[i]
        out_at[k] = read_at[i]
        out_reader[k] = reader[i]
        out_creative[k] = creative[i]
        out_logit[k] = logit_click[i]
        out_v[k] = v[i]
    return out_bucket, out_at, out_reader, out_creative, out_logit, out_v


def order_events_numpy(
    time_s: np.ndarray, bucket_s: float, customer: np.ndarray, creative: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events of a block (pre-fetch opens, deliveries) in the stable order of their bucket
    ``ceil(time_s / bucket_s)``, what :meth:`masssim.engine.events.PendingEvents.add` would sort them into:
    (int32 buckets, time_s, customer, creative), each in that order."""
    bucket = np.ceil(time_s / bucket_s).astype(np.int64)
    order = np.argsort(bucket, kind="stable")
    return bucket[order].astype(np.int32), time_s[order], customer[order], creative[order]


def _order_events_loop(time_s, bucket_s, customer, creative):  # type: ignore[no-untyped-def]  # pragma: no cover
    # order_reads' stable counting sort for events of three fields (a block's events span a few buckets).
    n = time_s.shape[0]
    bucket = np.empty(n, np.int64)
    low = np.int64(0)
    high = np.int64(0)
    for i in range(n):
        b = np.int64(np.ceil(time_s[i] / bucket_s))
        bucket[i] = b
        if i == 0 or b < low:
            low = b
        if i == 0 or b > high:
            high = b
    out_bucket = np.empty(n, np.int32)
    out_time = np.empty(n, np.float64)
    out_customer = np.empty(n, customer.dtype)
    out_creative = np.empty(n, creative.dtype)
    span = high - low + 1
    if n and span > _COUNTING_SPAN:  # rare: any stable sort gives the same permutation
        order = np.argsort(bucket, kind="mergesort")
        for k in range(n):
            i = order[k]
            out_bucket[k] = bucket[i]
            out_time[k] = time_s[i]
            out_customer[k] = customer[i]
            out_creative[k] = creative[i]
        return out_bucket, out_time, out_customer, out_creative
    next_row = np.zeros(max(span, 1), np.int64)
    for i in range(n):
        next_row[bucket[i] - low] += 1
    total = 0
    for b in range(span):
        count = next_row[b]
        next_row[b] = total
        total += count
    for i in range(n):  # rows of a bucket keep their order
        k = next_row[bucket[i] - low]
        next_row[bucket[i] - low] = k + 1
        out_bucket[k] = bucket[i]
        out_time[k] = time_s[i]
        out_customer[k] = customer[i]
        out_creative[k] = creative[i]
    return out_bucket, out_time, out_customer, out_creative


# --------------------------------------------------------------------------------------------------
# Clicks among the reads
# --------------------------------------------------------------------------------------------------


def pick_clicks_numpy(
    v: np.ndarray, p_click: np.ndarray, reader: np.ndarray, creative: np.ndarray, read_at: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The reads whose fresh uniform ``v`` is under their click probability, in order: (reader, creative,
    read time, float32 ``max(v / p_click, 1e-12)``, the uniform whose log places the click after the read)."""
    click = v < p_click
    ratio = np.maximum(v[click] / p_click[click], np.float32(1e-12))
    return reader[click], creative[click], read_at[click], ratio


def _pick_clicks_loop(v, p_click, reader, creative, read_at):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = v.shape[0]
    out_reader = np.empty(n, reader.dtype)
    out_creative = np.empty(n, creative.dtype)
    out_at = np.empty(n, np.float64)
    ratio = np.empty(n, np.float32)
    floor = np.float32(1e-12)
    k = 0
    for i in range(n):  # branch-free: every read is written, and only a click advances the count
        p = p_click[i]
        out_reader[k] = reader[i]
        out_creative[k] = creative[i]
        out_at[k] = read_at[i]
        r = v[i] / (p if p > 0 else np.float32(1.0))  # a click has p > v >= 0; the guard is for the rest
        ratio[k] = r if r > floor else floor  # np.maximum: no NaN here
        k += v[i] < p
    return out_reader[:k], out_creative[:k], out_at[:k], ratio[:k]


# --------------------------------------------------------------------------------------------------
# Pre-fetch opens: the unread candidates whose coin came up, merged with the delivered rows above the bound
# --------------------------------------------------------------------------------------------------


def pick_prefetch_numpy(
    unread: np.ndarray,
    coin: np.ndarray,
    inflation: np.float32,
    above: np.ndarray,
    customer: np.ndarray,
    creative: np.ndarray,
    departure: np.ndarray,
    latency_s: float,
    delay_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``unread[coin < inflation]`` and ``above`` (both ascending, distinct), merged in row order:
    (customer, creative, ``departure + latency_s + delay_s`` added in that order)."""
    rows = np.sort(np.concatenate([unread[coin < inflation], above]))
    return customer[rows], creative[rows], (departure[rows] + latency_s) + delay_s


def _pick_prefetch_loop(unread, coin, inflation, above, customer, creative, departure, latency_s, delay_s):  # type: ignore[no-untyped-def]  # pragma: no cover
    # The coins first (a branch-free compaction), then a merge that picks with a conditional move rather
    # than a branch (which half the rows would mispredict): a fifth faster than one loop doing both.
    kept = np.empty(unread.shape[0], np.int64)
    m = 0
    for i in range(unread.shape[0]):
        kept[m] = unread[i]
        m += coin[i] < inflation
    n = m + above.shape[0]
    out_customer = np.empty(n, customer.dtype)
    out_creative = np.empty(n, creative.dtype)
    out_at = np.empty(n, np.float64)
    i = 0
    j = 0
    k = 0
    while i < m and j < above.shape[0]:
        a = kept[i]
        b = above[j]
        take = a < b
        row = a if take else b
        i += take
        j += 1 - take
        out_customer[k] = customer[row]
        out_creative[k] = creative[row]
        out_at[k] = (departure[row] + latency_s) + delay_s
        k += 1
    while i < m:  # the tail of one list once the other is done
        row = kept[i]
        i += 1
        out_customer[k] = customer[row]
        out_creative[k] = creative[row]
        out_at[k] = (departure[row] + latency_s) + delay_s
        k += 1
    while j < above.shape[0]:
        row = above[j]
        j += 1
        out_customer[k] = customer[row]
        out_creative[k] = creative[row]
        out_at[k] = (departure[row] + latency_s) + delay_s
        k += 1
    return out_customer, out_creative, out_at


def prefetch_customers_numpy(
    unread: np.ndarray,
    coin: np.ndarray,
    inflation: np.float32,
    above: np.ndarray,
    customer: np.ndarray,
    departure: np.ndarray,
    latency_s: float,
    delay_s: float,
    bucket_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pick_prefetch`'s rows put in bucket order as :func:`order_events` puts them, keeping only what a
    recorded open that is merely counted needs: (their int32 buckets ``ceil(t / bucket_s)``, t being
    ``departure + latency_s + delay_s``; their customers), in the stable order of the buckets."""
    rows = np.sort(np.concatenate([unread[coin < inflation], above]))
    bucket = np.ceil(((departure[rows] + latency_s) + delay_s) / bucket_s).astype(np.int64)
    order = np.argsort(bucket, kind="stable")
    return bucket[order].astype(np.int32), customer[rows][order]


def _prefetch_customers_loop(unread, coin, inflation, above, customer, departure, latency_s, delay_s, bucket_s):  # type: ignore[no-untyped-def]  # pragma: no cover
    # pick_prefetch's compaction and merge, writing each row's bucket and customer only (no creative, no time:
    # 8 bytes a row where there were 20), then order_events' stable counting sort of those two.
    kept = np.empty(unread.shape[0], np.int64)
    m = 0
    for i in range(unread.shape[0]):
        kept[m] = unread[i]
        m += coin[i] < inflation
    n = m + above.shape[0]
    bucket = np.empty(n, np.int64)
    who = np.empty(n, customer.dtype)
    i = 0
    j = 0
    k = 0
    while i < m and j < above.shape[0]:  # the merge with a conditional move, as pick_prefetch's
        a = kept[i]
        b = above[j]
        take = a < b
        row = a if take else b
        i += take
        j += 1 - take
        bucket[k] = np.int64(np.ceil(((departure[row] + latency_s) + delay_s) / bucket_s))
        who[k] = customer[row]
        k += 1
    while i < m:
        row = kept[i]
        i += 1
        bucket[k] = np.int64(np.ceil(((departure[row] + latency_s) + delay_s) / bucket_s))
        who[k] = customer[row]
        k += 1
    while j < above.shape[0]:
        row = above[j]
        j += 1
        bucket[k] = np.int64(np.ceil(((departure[row] + latency_s) + delay_s) / bucket_s))
        who[k] = customer[row]
        k += 1
    low = np.int64(0)
    high = np.int64(0)
    for k in range(n):
        if k == 0 or bucket[k] < low:
            low = bucket[k]
        if k == 0 or bucket[k] > high:
            high = bucket[k]
    out_bucket = np.empty(n, np.int32)
    out_customer = np.empty(n, customer.dtype)
    span = high - low + 1
    if n and span > _COUNTING_SPAN:  # rare: any stable sort gives the same permutation
        order = np.argsort(bucket, kind="mergesort")
        for k in range(n):
            out_bucket[k] = bucket[order[k]]
            out_customer[k] = who[order[k]]
        return out_bucket, out_customer
    next_row = np.zeros(max(span, 1), np.int64)
    for k in range(n):
        next_row[bucket[k] - low] += 1
    total = 0
    for b in range(span):
        count = next_row[b]
        next_row[b] = total
        total += count
    for k in range(n):  # rows of a bucket keep their order
        at = next_row[bucket[k] - low]
        next_row[bucket[k] - low] = at + 1
        out_bucket[at] = bucket[k]
        out_customer[at] = who[k]
    return out_bucket, out_customer


_OUTSIDE_SPAN = "a pre-fetch open's bucket is outside its block's span of buckets"


def prefetch_bucket_counts_numpy(
    unread: np.ndarray,
    coin: np.ndarray,
    inflation: np.float32,
    above: np.ndarray,
    departure: np.ndarray,
    latency_s: float,
    delay_s: float,
    bucket_s: float,
    low: int,
    high: int,
) -> np.ndarray:
    """How many of :func:`pick_prefetch`'s rows fall in each bucket from ``low`` to ``high`` (int64
    [high - low + 1]), a row's bucket being ``ceil(t / bucket_s)`` for ``t = departure + latency_s + delay_s``
    as :func:`prefetch_customers` finds it. What a recorded open that nobody reads by customer needs: no row
    is kept. ``low`` and ``high`` are the buckets of the block's least and greatest departure, which bound
    every row's (each step of the formula keeps the order of the departures)."""
    rows = np.concatenate([unread[coin < inflation], above])
    bucket = np.ceil(((departure[rows] + latency_s) + delay_s) / bucket_s).astype(np.int64)
    if bucket.shape[0] and (bucket.min() < low or bucket.max() > high):
        raise IndexError(_OUTSIDE_SPAN)
    return np.bincount(bucket - low, minlength=high - low + 1)


def _prefetch_bucket_counts_loop(unread, coin, inflation, above, departure, latency_s, delay_s, bucket_s, low, high):  # type: ignore[no-untyped-def]  # pragma: no cover
    # No compaction, merge or sort: a count per bucket is the same whatever order the rows come in.
    # A row outside the span would be written past the counts (a compiled loop checks no index): refused, as
    # the numpy twin refuses it. The check is a branch never taken.
    counts = np.zeros(high - low + 1, np.int64)
    for i in range(unread.shape[0]):  # a row the coin drops adds 0 (no branch to mispredict)
        at = np.int64(np.ceil(((departure[unread[i]] + latency_s) + delay_s) / bucket_s)) - low
        if at < 0 or at >= counts.shape[0]:
            raise IndexError(_OUTSIDE_SPAN)
        counts[at] += coin[i] < inflation
    for j in range(above.shape[0]):
        at = np.int64(np.ceil(((departure[above[j]] + latency_s) + delay_s) / bucket_s)) - low
        if at < 0 or at >= counts.shape[0]:
            raise IndexError(_OUTSIDE_SPAN)
        counts[at] += 1
    return counts


def prefetch_bucket_span(
    span: tuple[float, float], latency_s: float, delay_s: float, bucket_s: float
) -> tuple[int, int]:
    """The buckets (low, high) of a block's least and greatest departure (``span``) for
    :func:`prefetch_bucket_counts`, found by the rows' own formula (Python's float arithmetic is the same IEEE
    double arithmetic)."""
    return (
        math.ceil(((span[0] + latency_s) + delay_s) / bucket_s),
        math.ceil(((span[1] + latency_s) + delay_s) / bucket_s),
    )


plan_departures: Callable[..., np.ndarray] = kernels._compiled(_plan_departures_loop) or plan_departures_numpy
read_exponents: Callable[..., np.ndarray] = kernels._compiled(_read_exponents_loop) or read_exponents_numpy
pick_reads: Callable[..., tuple[np.ndarray, ...]] = kernels._compiled(_pick_reads_loop) or pick_reads_numpy
order_reads: Callable[..., tuple[np.ndarray, ...]] = kernels._compiled(_order_reads_loop) or order_reads_numpy
order_events: Callable[..., tuple[np.ndarray, ...]] = kernels._compiled(_order_events_loop) or order_events_numpy
pick_clicks: Callable[..., tuple[np.ndarray, ...]] = kernels._compiled(_pick_clicks_loop) or pick_clicks_numpy
pick_prefetch: Callable[..., tuple[np.ndarray, ...]] = kernels._compiled(_pick_prefetch_loop) or pick_prefetch_numpy
prefetch_customers: Callable[..., tuple[np.ndarray, np.ndarray]] = (
    kernels._compiled(_prefetch_customers_loop) or prefetch_customers_numpy
)
prefetch_bucket_counts: Callable[..., np.ndarray] = (
    kernels._compiled(_prefetch_bucket_counts_loop) or prefetch_bucket_counts_numpy
)
