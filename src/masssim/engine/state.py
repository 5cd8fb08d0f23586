"""Per-arm dynamic state of every customer (struct of arrays), and the run's running totals.

Static traits live in :class:`~masssim.population.Population` and are shared by the arms of a
replication; what marketing changes (fatigue, adstock, opt-ins, history) lives here, one copy per arm.
Times are float32 seconds: at a 10-year horizon that is still better than 10-second resolution, and it
keeps the state near 40 bytes per customer.
"""

from __future__ import annotations

import math

import numpy as np

from masssim.metrics import TIMESERIES, TOTALS

NEVER = np.float32(-1e30)


class CustomerState:
    def __init__(self, n: int, optin: np.ndarray) -> None:
        self.optin = optin.copy()  # uint8 bit mask by channel; unsubscribes clear bits
        self.fatigue = np.zeros(n, np.float32)  # sum of exp(-dt/tau_f) over past contacts, as of fatigue_t
        self.fatigue_t = np.zeros(n, np.float32)
        self.adstock = np.zeros(n, np.float32)  # as of adstock_t, halves every adstock half-life
        self.adstock_t = np.zeros(n, np.float32)
        self.last_click_t = np.full(n, NEVER, np.float32)
        self.last_click_creative = np.full(n, -1, np.int32)
        self.pull_forward_credit = np.zeros(n, np.uint8)  # future organic occasions already pulled forward
        self.sends = np.zeros(n, np.uint16)  # engagement history a policy may read (saturating)
        self.opens = np.zeros(n, np.uint16)
        self.clicks = np.zeros(n, np.uint16)
        self.week_sends: dict[int, np.ndarray] = {}  # channel -> uint8 sends this calendar week
        self.week_index = -1
        self._scratch = np.zeros(n, np.uint8)  # for finding repeated customers in O(k), kept all zero

    def week_counter(self, channel: int, n: int) -> np.ndarray:
        if channel not in self.week_sends:
            self.week_sends[channel] = np.zeros(n, np.uint8)
        return self.week_sends[channel]

    def start_week(self, week_index: int) -> None:
        """Frequency caps count sends per calendar week (t = 0 is a Monday); a new week resets them."""
        if week_index != self.week_index:
            for counter in self.week_sends.values():
                counter[:] = 0
            self.week_index = week_index

    def has_repeats(self, idx: np.ndarray) -> bool:
        """Whether ``idx`` names some customer twice, in time linear in len(idx) (no sort)."""
        if idx.shape[0] < 2:
            return False
        scratch = self._scratch
        np.add.at(scratch, idx, np.uint8(1))
        repeated = bool((scratch[idx] != 1).any())  # != rather than > also catches a count that wrapped
        scratch[idx] = 0
        return repeated

    def adstock_at(self, idx: np.ndarray, t_s: np.ndarray, half_life_s: float) -> np.ndarray:
        return self.adstock[idx] * np.exp2(-(t_s - self.adstock_t[idx]) / half_life_s)

    def add_adstock(
        self, idx: np.ndarray, t_s: np.ndarray, amount: float | np.ndarray, half_life_s: float
    ) -> None:
        """Decay each customer's adstock to ``t_s`` and add ``amount`` (one value, or one per event).
        Repeated customers add up."""
        if idx.shape[0] == 0:
            return
        amount = np.broadcast_to(np.asarray(amount, np.float32), idx.shape)
        if not self.has_repeats(idx):
            self.adstock[idx] = self.adstock_at(idx, t_s, half_life_s) + amount
            self.adstock_t[idx] = t_s
            return
        # Sorted by customer then time, repeated customers (two clicks in one bucket) are applied in rounds:
        # round r holds each customer's r-th event, so no customer appears twice in one vectorised update.
        order = np.lexsort((t_s, idx))
        idx, t_s, amount = idx[order], t_s[order], amount[order]
        first = np.ones(idx.shape[0], bool)
        first[1:] = idx[1:] != idx[:-1]
        group_start = np.maximum.accumulate(np.where(first, np.arange(idx.shape[0]), 0))
        rank = np.arange(idx.shape[0]) - group_start
        for r in range(int(rank.max()) + 1):
            sel = rank == r
            c, t = idx[sel], t_s[sel]
            self.adstock[c] = self.adstock_at(c, t, half_life_s) + amount[sel]
            self.adstock_t[c] = t

    def nbytes(self) -> int:
        arrays = [
            self.optin,
            self.fatigue,
            self.fatigue_t,
            self.adstock,
            self.adstock_t,
            self.last_click_t,
            self.last_click_creative,
            self.pull_forward_credit,
            self.sends,
            self.opens,
            self.clicks,
            self._scratch,
            *self.week_sends.values(),
        ]
        return sum(a.nbytes for a in arrays)


def increment(counter: np.ndarray, idx: np.ndarray) -> None:
    """counter[idx] += 1, counting repeated indices; the typed one keeps numpy on its fast path."""
    np.add.at(counter, idx, counter.dtype.type(1))


class Recorder:
    """Totals over the horizon and per-day series for the metrics the registry marks as time series."""

    def __init__(self, horizon_s: float) -> None:
        self.days = max(1, math.ceil(horizon_s / 86_400.0 - 1e-9))
        self.totals: dict[str, float] = dict.fromkeys(TOTALS, 0.0)
        self._column = {name: i for i, name in enumerate(TIMESERIES)}
        self.series = np.zeros((self.days, len(TIMESERIES)), np.float64)

    def add(self, metric: str, amount: float) -> None:
        self.totals[metric] += float(amount)

    def add_events(self, metric: str, time_s: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Count events (or sum weights) into the total and, if the metric is a series, into its days."""
        total = float(time_s.shape[0] if weights is None else weights.sum())
        self.totals[metric] += total
        column = self._column.get(metric)
        if column is None or time_s.shape[0] == 0:
            return
        day = np.minimum((time_s // 86_400.0).astype(np.int64), self.days - 1)
        self.series[:, column] += np.bincount(day, weights=weights, minlength=self.days)[: self.days]

    def add_sorted_events(self, metric: str, time_s: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Like :meth:`add_events` for times already ascending: day totals by binary search, no pass of
        bincount over every event (a wave's departures are ascending by construction)."""
        column = self._column.get(metric)
        if weights is None:
            self.totals[metric] += float(time_s.shape[0])
        if column is None or time_s.shape[0] == 0:
            if weights is not None:
                self.totals[metric] += float(weights.sum())
            return
        edges = np.searchsorted(time_s, np.arange(1, self.days) * 86_400.0, side="right")
        bounds = np.concatenate(([0], edges, [time_s.shape[0]]))
        if weights is None:
            per_day = np.diff(bounds).astype(np.float64)
        else:
            cumulative = np.concatenate(([0.0], np.cumsum(weights, dtype=np.float64)))
            per_day = np.diff(cumulative[bounds])
            self.totals[metric] += float(cumulative[-1])
        self.series[:, column] += per_day

    def add_in_day(self, metric: str, day: int, amount: float) -> None:
        """Add ``amount`` to a metric's total and to one day of its series (events of one bucket)."""
        self.totals[metric] += float(amount)
        column = self._column.get(metric)
        if column is not None:
            self.series[min(day, self.days - 1), column] += amount

    def add_at(self, metric: str, time_s: float, amount: float) -> None:
        self.add_events(metric, np.array([time_s]), np.array([amount], np.float64))
