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

from masssim.engine.kernels import _compiled

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


add_to_stock: Callable[..., None] = _compiled(_add_to_stock_loop) or add_to_stock_numpy
release_clicks: Callable[..., None] = _compiled(_release_clicks_loop) or release_clicks_numpy
