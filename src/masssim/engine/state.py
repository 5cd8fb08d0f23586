"""Per-arm dynamic state of every customer (struct of arrays), and the run's running totals.

Static traits live in :class:`~masssim.model.population.Population` and are shared by the arms of a
replication; what marketing changes (fatigue, adstock, opt-ins, history) lives here, one copy per arm.
Times are float32 seconds: at a 10-year horizon that is still better than 10-second resolution, and it
keeps this state near 25 bytes per customer per arm (the population's static traits take another ~74).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from masssim.engine import kernels
from masssim.model.metrics import TIMESERIES, TOTALS

NEVER = np.float32(-1e30)
REBASE_AFTER = 20.0  # time constants since the epoch before stored values are rescaled (e^20 ~ 5e8)


class DecayingStock:
    """A per-customer quantity that decays exponentially with time constant ``tau_s`` (fatigue, adstock).

    Instead of a value and a last-update time per customer, each customer's value is stored as of a
    common epoch: value_i(t) = stored_i * exp(-(t - epoch) / tau). Adding x at time t adds
    x * exp((t - epoch) / tau). That is one float32 per customer and one random memory access per
    update instead of two. The epoch moves forward (an O(N) rescale) before the factors get large.
    """

    def __init__(self, n: int, tau_s: float) -> None:
        self.stored = np.zeros(n, np.float32)
        self.tau_s = tau_s
        self.epoch_s = 0.0

    def at(self, idx: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """Values of customers ``idx`` at times ``t_s`` (float32)."""
        return self.stored[idx] * self.decay(t_s).astype(np.float32)

    def decay(self, t_s: np.ndarray) -> np.ndarray:
        """float64 exp((epoch - t) / tau): what a stored value is worth at ``t_s`` (rounded to float32 before
        it multiplies, as in :meth:`at`; the compiled releases in engine/release_kernels.py take it so)."""
        return np.exp((self.epoch_s - np.asarray(t_s, np.float64)) / self.tau_s)

    def add(self, idx: np.ndarray, t_s: np.ndarray, amount: float | np.ndarray) -> None:
        """Add ``amount`` at times ``t_s``; a customer named twice gets both additions."""
        if idx.shape[0] == 0:
            return
        grow = self.growth(t_s).astype(np.float32)
        kernels.scatter_add(self.stored, idx, (np.asarray(amount, np.float32) * grow).astype(np.float32))

    def growth(self, t_s: np.ndarray) -> np.ndarray:
        """float64 exp((t - epoch) / tau): what one unit added at ``t_s`` is worth in stored terms (rounded to
        float32 before it is multiplied; the compiled releases in engine/release_kernels.py take it so)."""
        return np.exp((np.asarray(t_s, np.float64) - self.epoch_s) / self.tau_s)

    def rebase(self, now_s: float) -> None:
        """Move the epoch to ``now_s`` once it lies many time constants back (keeps float32 in range)."""
        elapsed = (now_s - self.epoch_s) / self.tau_s
        if elapsed > REBASE_AFTER:
            self.stored *= np.float32(np.exp(-elapsed))
            self.epoch_s = now_s


class CustomerState:
    def __init__(
        self, n: int, optin: np.ndarray, fatigue_tau_s: float, adstock_half_life_s: float, creatives: int
    ) -> None:
        self.optin = optin.copy()  # uint8 bit mask by channel; unsubscribes clear bits
        self.fatigue = DecayingStock(n, fatigue_tau_s)  # sum of exp(-dt/tau_f) over past contacts
        self.adstock = DecayingStock(n, adstock_half_life_s / np.log(2.0))  # halves every half-life
        self.last_click_t = np.full(n, NEVER, np.float32)
        # The last click's creative in the narrowest type that holds the catalogue's ids: int16 up to 32,767
        # creatives (2 bytes per customer less than int32); widened if the catalogue grows past that.
        self.last_click_creative: np.ndarray = np.full(n, -1, creative_id_dtype(creatives))
        self.pull_forward_credit = np.zeros(n, np.uint8)  # future organic occasions already pulled forward
        self.sends = np.zeros(n, np.uint16)  # engagement history a policy may read (saturating)
        self.opens = np.zeros(n, np.uint16)
        self.clicks = np.zeros(n, np.uint16)
        # Purchases of our brand per customer: the holdout estimator's standard error needs their variance.
        self.purchases = np.zeros(n, np.uint16)
        self.week_sends: dict[int, np.ndarray] = {}  # channel -> uint8 sends this calendar week
        self.week_index = -1

    def hold_creatives(self, creatives: int) -> None:
        """Widen the last click's creative once the catalogue (``creatives`` ids, a policy may have generated
        some) has ids its type cannot hold; call before clicks are released."""
        # Called at every bucket with clicks: plain comparisons (np.iinfo is a slow constructor; it was 0.4% of
        # a 3M run's samples). int16 is the only type ever widened.
        if self.last_click_creative.dtype == np.int16 and creatives > INT16_CREATIVE_IDS:
            self.last_click_creative = self.last_click_creative.astype(np.int32)

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

    def rebase(self, now_s: float) -> None:
        self.fatigue.rebase(now_s)
        self.adstock.rebase(now_s)

    def nbytes(self) -> int:
        arrays = [
            self.optin,
            self.fatigue.stored,
            self.adstock.stored,
            self.last_click_t,
            self.last_click_creative,
            self.pull_forward_credit,
            self.sends,
            self.opens,
            self.clicks,
            self.purchases,
            *self.week_sends.values(),
        ]
        return sum(a.nbytes for a in arrays)


INT16_CREATIVE_IDS = int(np.iinfo(np.int16).max) + 1  # creative ids 0 .. 32,767 fit in int16 (-1: none)


def creative_id_dtype(creatives: int) -> type:
    """The narrowest signed type that holds creative ids 0 .. creatives - 1 and -1 (none)."""
    return np.int16 if creatives <= INT16_CREATIVE_IDS else np.int32


def increment(counter: np.ndarray, idx: np.ndarray) -> None:
    """counter[idx] += 1, counting repeated indices; the typed one keeps numpy on its fast path."""
    kernels.increment(counter, idx)


class Recorder:
    """Totals over the horizon and per-day series for the metrics the registry marks as time series."""

    def __init__(self, horizon_s: float) -> None:
        self.days = max(1, math.ceil(horizon_s / 86_400.0 - 1e-9))
        self.totals: dict[str, float] = dict.fromkeys(TOTALS, 0.0)
        self._column = {name: i for i, name in enumerate(TIMESERIES)}
        self.series = np.zeros((self.days, len(TIMESERIES)), np.float64)
        self._day_ends = np.arange(1, self.days) * 86_400.0  # a time at or before the k-th is in day k - 1 or earlier

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

    def day_counts(
        self,
        time_s: np.ndarray,
        rows: np.ndarray | None = None,
        shift_s: float = 0.0,
        until_s: float = math.inf,
        *,
        span: tuple[float, float] | None = None,
    ) -> np.ndarray:
        """int64 events per day of the series at the times ``time_s[rows] + shift_s`` (``rows`` None: all), in
        any order, that are at or before ``until_s``, without building those times (kernels.day_counts). A
        time on a day's end counts in the day it ends. A wave's sends are counted so, block by block, and the
        shards of a sharded run count theirs the same way (docs/model.md §16.2).

        ``span``: the least and greatest of ``time_s`` (over the rows counted, or more). A block's sends leave
        within hours, so when both ends of the span, shifted, fall in one day before ``until_s``, every event
        is in that day and none is looked at (adding ``shift_s`` keeps the order of times, so the ends stay
        the ends); a count per event into a few bins costs several nanoseconds, its increments waiting for
        each other."""
        n = time_s.shape[0] if rows is None else rows.shape[0]
        if span is not None and n:
            earliest, latest = span[0] + shift_s, span[1] + shift_s
            if latest <= until_s:
                day = np.searchsorted(self._day_ends, [earliest, latest], side="left")
                if day[0] == day[1]:
                    counts = np.zeros(self.days, np.int64)
                    counts[day[0]] = n
                    return counts
        return kernels.day_counts(time_s, rows, shift_s, until_s, self.days)  # type: ignore[no-any-return]

    def add_day_sums(self, metrics: Sequence[str], time_s: np.ndarray, weights: np.ndarray) -> None:
        """Sum ``weights`` (a price per send) into each of ``metrics``: its total and the days of ``time_s``, in
        any order, the days found as :meth:`day_counts` finds them. The metrics take the same sums (a paid
        channel's media cost and the channel's own cost), so the days are found once for all of them."""
        total = float(weights.sum())
        sums = None
        for metric in metrics:
            self.totals[metric] += total
            column = self._column.get(metric)
            if column is None or time_s.shape[0] == 0:
                continue
            if sums is None:
                day = np.searchsorted(self._day_ends, time_s, side="left")
                sums = np.bincount(day, weights=weights, minlength=self.days)
            self.series[:, column] += sums

    def add_day_counts(self, metric: str, counts: np.ndarray, *, each: float) -> None:
        """Events already counted per day (:meth:`day_counts`, summed over shards), each worth ``each`` (1 for a
        count, or a price per send)."""
        n = int(counts.sum())
        self.totals[metric] += float(n * each)
        column = self._column.get(metric)
        if column is None or n == 0:
            return
        self.series[:, column] += counts * each

    def add_day_totals(self, metric: str, counts: np.ndarray) -> None:
        """``add_events`` for events already counted per day of the series (int64 [days], integers: a
        count, or a sum of +1/-1 weights), as exact as the float sums they stand for."""
        self.totals[metric] += float(counts.sum())
        column = self._column.get(metric)
        if column is not None:
            self.series[:, column] += counts

    def add_in_day(self, metric: str, day: int, amount: float) -> None:
        """Add ``amount`` to a metric's total and to one day of its series (events of one bucket)."""
        self.totals[metric] += float(amount)
        column = self._column.get(metric)
        if column is not None:
            self.series[min(day, self.days - 1), column] += amount

    def add_at(self, metric: str, time_s: float, amount: float) -> None:
        self.add_events(metric, np.array([time_s]), np.array([amount], np.float64))
