"""Shift schedules of responder pools: agents on duty for each of the 168 hours of the week."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

HOUR_S = 3600.0
HOURS_PER_WEEK = 168
WEEK_S = HOURS_PER_WEEK * HOUR_S


def always_on(agents: int) -> np.ndarray:
    """A 168-entry schedule with ``agents`` on duty every hour of the week."""
    if agents < 0:
        raise ValueError("agents must be non-negative")
    return np.full(HOURS_PER_WEEK, int(agents), dtype=np.int64)


def business_hours(
    agents: int,
    open_hour: float = 9.0,
    close_hour: float = 17.0,
    days: Iterable[int] = (0, 1, 2, 3, 4),
    utc_offset_hours: float = 0.0,
    reference_utc_offset_hours: float = 0.0,
) -> np.ndarray:
    """A 168-entry schedule: ``agents`` on duty from ``open_hour`` to ``close_hour`` local time on ``days``
    (0 = Monday), 0 otherwise.

    The pool's time zone is ``utc_offset_hours``; entry h of the result is hour h of the week on the
    reference clock (t = 0 is Monday 00:00 at ``reference_utc_offset_hours``). Opening hours may wrap
    midnight (``open_hour=22, close_hour=6``: the shift that opens on a listed day runs into the next).
    An hour slot counts as open when its midpoint is within opening hours, which matters only for
    fractional offsets (e.g. +5.5) or opening times.
    """
    if agents < 0:
        raise ValueError("agents must be non-negative")
    if not (0.0 <= open_hour < 24.0 and 0.0 <= close_hour <= 24.0):
        raise ValueError("open_hour must be in [0, 24) and close_hour in [0, 24]")
    open_days = np.zeros(7, dtype=bool)
    for d in days:
        if not 0 <= int(d) <= 6:
            raise ValueError("days are 0 (Monday) .. 6 (Sunday)")
        open_days[int(d)] = True
    mid = np.arange(HOURS_PER_WEEK) + 0.5 + (utc_offset_hours - reference_utc_offset_hours)  # local hours
    local = np.mod(mid, float(HOURS_PER_WEEK))
    length = np.mod(close_hour - open_hour, 24.0)
    if length == 0.0 and close_hour != open_hour:  # pragma: no cover - guarded by the ranges above
        length = 24.0
    if close_hour == 24.0 and open_hour == 0.0:
        length = 24.0
    since_open = np.mod(local - open_hour, 24.0)  # hours since the most recent opening time
    opened_day = (np.floor((local - since_open) / 24.0).astype(np.int64)) % 7  # day that opening belongs to
    is_open = (since_open < length) & open_days[opened_day]
    return np.where(is_open, int(agents), 0).astype(np.int64)
