"""Compiled passes that release a bucket's matured outcomes into the customers' state.

At each feedback bucket the engine adds the bucket's reads and clicks to the adstock, counts clicks and keeps
each clicker's last click. In numpy each of these is several passes over the bucket's events, with float64 and
float32 temporaries; here each is one loop. The rules of :mod:`masssim.engine.kernels` hold: every kernel has a
``*_numpy`` twin that defines it (the tests compare them, Hypothesis included), the compiled loop is used when
numba is available and ``MASSSIM_KERNELS`` is not ``numpy``, and both do the same IEEE operations in the same
order. The exponentials stay numpy's: the caller computes ``exp`` as a vectorised float64 call and hands the
result to the kernel, which only rounds it to float32 (exactly as ``astype`` does) and multiplies and adds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from masssim.engine.kernels import (
    ROWS_AHEAD,
    _compiled,
    _half_compiled,
    _rival_brand_compiled,
    _with_half_arguments,
    as_half,
    load_soon,
    tally_brands_numpy,
)

# --------------------------------------------------------------------------------------------------
# Adding to a decaying stock (state.DecayingStock): stored[c] += amount[channel] * float32(growth)
# --------------------------------------------------------------------------------------------------


def add_to_stock_numpy(
    stored: np.ndarray, customer: np.ndarray, growth: np.ndarray, amount_by_channel: np.ndarray, channel: np.ndarray
) -> None:
    """``stored[customer[i]] += amount_by_channel[channel[i]] * float32(growth[i])`` for each i in order, in
    float32 (``growth``: float64, the exponential of the time since the stock's epoch over its time constant);
    a customer named twice gets both additions."""
    grow = growth.astype(np.float32)
    np.add.at(stored, customer, (amount_by_channel[channel] * grow).astype(np.float32))


def _add_to_stock_loop(stored, customer, growth, amount_by_channel, channel):  # type: ignore[no-untyped-def]  # pragma: no cover
    for i in range(customer.shape[0]):
        stored[customer[i]] += amount_by_channel[channel[i]] * np.float32(growth[i])


# --------------------------------------------------------------------------------------------------
# A bucket's clicks: adstock, click counter, last click's time and creative
# --------------------------------------------------------------------------------------------------


def release_clicks_numpy(
    stored: np.ndarray,
    clicks: np.ndarray,
    last_click_t: np.ndarray,
    last_click_creative: np.ndarray,
    customer: np.ndarray,
    creative: np.ndarray,
    time_s: np.ndarray,
    growth: np.ndarray,
    amount_by_channel: np.ndarray,
    channel: np.ndarray,
) -> None:
    """The state a bucket's clicks change: the adstock (:func:`add_to_stock_numpy`), each clicker's click count
    (+1 per click, wrapping at the dtype's top as numpy does), and the last click's time and creative. The last
    two are numpy fancy assignments: every row's value is computed from the state as it stood before the bucket
    and, for a customer named twice, the later row's value is the one kept (so the time kept is the later
    row's max with the old time, not the max over the bucket: rows are ordered by bucket, not by time)."""
    add_to_stock_numpy(stored, customer, growth, amount_by_channel, channel)
    np.add.at(clicks, customer, clicks.dtype.type(1))
    t = time_s.astype(np.float32)
    last_click_t[customer] = np.maximum(last_click_t[customer], t)
    last_click_creative[customer] = creative


def _release_clicks_loop(  # type: ignore[no-untyped-def]  # pragma: no cover
    stored, clicks, last_click_t, last_click_creative, customer, creative, time_s, growth, amount_by_channel, channel
):
    n = customer.shape[0]
    # Every row's new time from the times before the bucket (a fancy assignment gathers before it scatters).
    latest = np.empty(n, np.float32)
    for i in range(n):
        old = last_click_t[customer[i]]
        t = np.float32(time_s[i])
        latest[i] = t if t > old else old  # np.maximum: times are never NaN
    for i in range(n):
        c = customer[i]
        stored[c] += amount_by_channel[channel[i]] * np.float32(growth[i])
        clicks[c] += 1
        last_click_t[c] = latest[i]
        last_click_creative[c] = creative[i]


# --------------------------------------------------------------------------------------------------
# A bucket's organic occasions: brand choice with the adstock, the arm's market tally, purchases and metrics
# --------------------------------------------------------------------------------------------------

# Rows of the per-day counts organic_choices returns, in the order the engine records them.
ORGANIC_METRICS = ("purchases_treated", "purchases_holdout", "incremental_purchases_true", "attributed_purchases")


def adstock_now_numpy(
    stored: np.ndarray, customer: np.ndarray, decay: np.ndarray, credit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For a bucket's occasions of ``customer``: minus each one's adstock, ``-float64(stored[c] * float32(decay))``
    (float64 [n]; ``decay``: float64, the exponential of minus the time since the stock's epoch over its time
    constant, as in DecayingStock.at), and the rows whose customer has pull-forward ``credit`` left
    (ascending)."""
    return -(stored[customer] * decay.astype(np.float32)).astype(np.float64), np.flatnonzero(credit[customer] > 0)


def _adstock_now_loop(stored, customer, decay, credit):  # type: ignore[no-untyped-def]  # pragma: no cover
    n = customer.shape[0]
    out = np.empty(n, np.float64)
    credited = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        c = customer[i]
        out[i] = -np.float64(stored[c] * np.float32(decay[i]))
        if credit[c] > 0:
            credited[k] = i
            k += 1
    return out, credited[:k].copy()


def day_of_numpy(time_s: np.ndarray, first_day: int, last_day: int) -> np.ndarray:
    """int64 [n]: the series day of each time, ``min(time_s // 86400, last_day)``, for times of one bucket
    (all at or after day ``first_day``, and at most one day later: a bucket never spans midnight, but its
    last instant may be midnight itself). Recorder.add_events' day, without its floor division."""
    return np.minimum((time_s // 86_400.0).astype(np.int64), last_day)


def _day_of_loop(time_s, first_day, last_day):  # type: ignore[no-untyped-def]  # pragma: no cover
    # For t >= 0 numpy's t // 86400 is the exact floor of the quotient (its fmod is exact and
    # t - fmod(t, 86400) is a multiple of 86400 below 2^53), so the day is first_day + (t >= the next midnight).
    n = time_s.shape[0]
    out = np.empty(n, np.int64)
    midnight = (first_day + 1) * 86_400.0
    for i in range(n):
        d = first_day + 1 if time_s[i] >= midnight else first_day
        out[i] = d if d < last_day else last_day
    return out


def organic_choices_numpy(
    customer: np.ndarray,
    time_s: np.ndarray,
    uniform: np.ndarray,
    lift_share: np.ndarray,
    day: np.ndarray,
    brand_prob: np.ndarray,
    skipped: np.ndarray,
    gone: np.ndarray | None,
    gone_anyway: np.ndarray | None,
    contactable: np.ndarray,
    last_click_t: np.ndarray,
    last_click_creative: np.ndarray,
    window_s: float,
    purchases: np.ndarray,
    market_window_s: float,
    brands_bought: np.ndarray,
    market_purchases: np.ndarray,
    counts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The choices at a bucket's organic occasions (customers ``customer`` at ``time_s`` with their choice
    ``uniform``). ``lift_share`` is ``-expm1(-adstock)``: our brand's probability is ``p0 + (1 - p0) * lift_share``.
    ``skipped``: occasions a pull-forward used up; ``gone``/``gone_anyway``: customers who have left (with and
    without this arm's marketing; None without inbound). ``day``: each occasion's day of the series.

    Ours is bought below our probability (not at a skipped occasion, not by a customer who left); each
    counted occasion (inside ``market_window_s``, not skipped) adds its brand to the arm's market tally
    (:func:`masssim.engine.kernels.tally_brands_numpy`); ``purchases[c]`` counts ours. ``counts[m, d]`` (int64,
    rows :data:`ORGANIC_METRICS`) gets day d's purchases by the treated, by the holdout, the treated's lift over
    the same occasion without marketing (+1, 0 or -1 each) and the attributed purchases (a click within
    ``window_s`` before). Returns the treated buyers' rows (ascending), the creative each purchase is
    attributed to (-1: none), and how many of ours were lost to churn."""
    c, t, u = customer, time_s, uniform
    brand_prob = as_half(brand_prob)  # read at half precision, as the population stores it
    p0 = brand_prob[c, 0].astype(np.float64)
    p = p0 + (1.0 - p0) * lift_share
    ours = (u < p) & ~skipped
    would_have = u < p0  # the counterfactual: the same occasion, no marketing
    lost = 0
    if gone is not None and gone_anyway is not None:
        lost = int(np.count_nonzero(ours & gone))
        ours &= ~gone
        would_have &= ~gone_anyway
    rows = np.flatnonzero((t <= market_window_s) & ~skipped)
    tally_brands_numpy(
        c[rows],
        brand_prob,
        u[rows],
        p[rows],
        ours[rows],
        None if gone is None else gone[rows],
        brands_bought,
        market_purchases,
    )
    treated = contactable[c]
    bought = ours & treated
    np.add.at(purchases, c[ours], purchases.dtype.type(1))
    attributed = bought & (t - last_click_t[c] <= window_s)
    days = counts.shape[1]
    counts[0] += np.bincount(day[bought], minlength=days)
    counts[1] += np.bincount(day[ours & ~treated], minlength=days)
    lift = bought.astype(np.int64) - (would_have & treated)
    counts[2] += np.bincount(day[treated], weights=lift[treated], minlength=days).astype(np.int64)
    counts[3] += np.bincount(day[attributed], minlength=days)
    buyers = np.flatnonzero(bought)
    creative = np.where(attributed[buyers], last_click_creative[c[buyers]], -1).astype(np.int32)
    return buyers, creative, lost


def _organic_choices_loop(  # type: ignore[no-untyped-def]  # pragma: no cover
    customer,
    time_s,
    uniform,
    lift_share,
    day,
    brand_prob,
    skipped,
    gone,
    gone_anyway,
    contactable,
    last_click_t,
    last_click_creative,
    window_s,
    purchases,
    market_window_s,
    brands_bought,
    market_purchases,
    counts,
):
    n = customer.shape[0]
    n_brands = brand_prob.shape[1]
    one = brands_bought.dtype.type(1)
    buyers = np.empty(n, np.int64)
    creative = np.empty(n, np.int32)
    k = 0
    lost = 0
    for i in range(n):
        if i + ROWS_AHEAD < n:  # occasions come in time order, their customers anywhere (cache_hints.py)
            ahead = customer[i + ROWS_AHEAD]
            load_soon(brand_prob[ahead], 0)
            load_soon(contactable, ahead)
            load_soon(last_click_t, ahead)
            load_soon(purchases, ahead)
            load_soon(brands_bought, ahead)
        c = customer[i]
        u = uniform[i]
        p0 = np.float64(_half_compiled(brand_prob[c, 0]))  # brand_prob: float16 bits (kernels.half_bits)
        p = p0 + (1.0 - p0) * lift_share[i]
        ours = u < p and not skipped[i]
        would_have = u < p0
        left = False
        if gone is not None and gone_anyway is not None:
            left = gone[i]
            if ours and left:
                lost += 1
            ours = ours and not left
            would_have = would_have and not gone_anyway[i]
        t = time_s[i]
        if t <= market_window_s and not skipped[i]:
            # tally_brands' brand for this occasion (its very operations: kernels._rival_brand).
            brand = 0
            if not ours and n_brands > 1:
                brand = _rival_brand_compiled(np.float64(u), p0, p, left, brand_prob, c)
            market_purchases[brand] += 1
            brands_bought[c] |= one << brands_bought.dtype.type(brand)
        if ours:
            purchases[c] += 1
        d = day[i]
        if contactable[c]:
            if ours:
                counts[0, d] += 1
                buyers[k] = i
                creative[k] = -1
                if t - np.float64(last_click_t[c]) <= window_s:
                    counts[3, d] += 1
                    creative[k] = last_click_creative[c]
                k += 1
                if not would_have:
                    counts[2, d] += 1
            elif would_have:
                counts[2, d] -= 1
        elif ours:
            counts[1, d] += 1
    return buyers[:k], creative[:k], lost


add_to_stock: Callable[..., None] = _compiled(_add_to_stock_loop) or add_to_stock_numpy
release_clicks: Callable[..., None] = _compiled(_release_clicks_loop) or release_clicks_numpy
adstock_now: Callable[..., tuple[np.ndarray, np.ndarray]] = _compiled(_adstock_now_loop) or adstock_now_numpy
day_of: Callable[..., np.ndarray] = _compiled(_day_of_loop) or day_of_numpy
# The positions of the arguments each compiled loop takes as float16 bits (kernels.HALF_ARGUMENTS): brand_prob.
HALF_ARGUMENTS = {"organic_choices": (5,)}
organic_choices: Callable[..., tuple[np.ndarray, np.ndarray, int]] = (
    _with_half_arguments(_compiled(_organic_choices_loop), *HALF_ARGUMENTS["organic_choices"]) or organic_choices_numpy
)
