"""Channel mechanics that do not depend on the customer's response: when a send can go out.

Everything here works on a handful of release times (one per region) or on sorted slot counts, so a wave
to ten million customers costs a few array passes, never a Python loop over customers.
"""

from __future__ import annotations

import numpy as np

from masssim.config.schema import ChannelConfig

HOUR_S = 3600.0
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S


def local_hour(t_s: np.ndarray | float, utc_offset_rel_s: np.ndarray | float) -> np.ndarray:
    """Local hour of day in [0, 24) of time ``t_s`` (seconds from t=0 in the reference zone)."""
    return np.mod((np.asarray(t_s) + utc_offset_rel_s) / HOUR_S, 24.0)


def defer_past_quiet_hours(
    t_s: np.ndarray, utc_offset_rel_s: np.ndarray, channel: ChannelConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Move send times that fall in the channel's local quiet hours to the end of them.

    Returns (new times, bool mask of deferred sends). Quiet hours may wrap midnight (21 -> 8).
    """
    t_s = np.asarray(t_s, dtype=np.float64)
    if channel.quiet_hours_start is None or channel.quiet_hours_end is None:
        return t_s, np.zeros(t_s.shape, bool)
    start, end = float(channel.quiet_hours_start), float(channel.quiet_hours_end)
    hour = local_hour(t_s, utc_offset_rel_s)
    length = np.mod(end - start, 24.0)
    since_start = np.mod(hour - start, 24.0)
    quiet = since_start < length
    wait_h = np.where(quiet, length - since_start, 0.0)
    return t_s + wait_h * HOUR_S, quiet


def capacity_departures(
    release_s: np.ndarray, counts: np.ndarray, per_hour: float, free_at_s: float
) -> tuple[np.ndarray, float]:
    """Start time of each group's first send and the channel's next free time, for a FIFO sender.

    Groups (sorted by release time) of ``counts`` sends are pushed at ``per_hour``; a group starts when it
    is released or when the previous group has finished, whichever is later. Within a group the j-th send
    leaves at ``start + j / rate``.
    """
    spacing = HOUR_S / per_hour
    starts = np.empty(release_s.shape[0], np.float64)
    free = free_at_s
    for g, (release, count) in enumerate(zip(release_s.tolist(), counts.tolist(), strict=True)):
        starts[g] = max(release, free)
        free = starts[g] + count * spacing
    return starts, free


def move_into_active_window(
    t_s: np.ndarray,
    utc_offset_rel_s: np.ndarray,
    window_start_hour: np.ndarray,
    window_hours: np.ndarray,
    jitter: np.ndarray,
) -> np.ndarray:
    """A read that would happen outside the customer's daily active window happens at its next start.

    ``jitter`` (uniform in [0, 1)) spreads moved reads over the first hour of the window (or the whole
    window if it is shorter), so reads do not pile up on the hour.
    """
    hour = local_hour(t_s, utc_offset_rel_s)
    since_start = np.mod(hour - window_start_hour, 24.0)
    inside = since_start < window_hours
    wait_h = np.where(inside, 0.0, 24.0 - since_start + jitter * np.minimum(window_hours, 1.0))
    return t_s + wait_h * HOUR_S


def cpm_per_impression(channel: ChannelConfig, audience_size: np.ndarray) -> np.ndarray:
    """Price of one impression for ad sets of the given sizes: cpm/1000 x (size/reference)^-eta below the
    reference size (narrow audiences cost more), flat above it."""
    ratio = np.maximum(audience_size / channel.reference_audience, 1e-12)
    premium = np.where(ratio < 1.0, ratio ** (-channel.narrow_audience_eta), 1.0)
    return channel.cpm / 1000.0 * premium
