"""Respond (DESIGN §1.5): pools of bots or human agents that pick up conversations from a queue.

A :class:`ResponderPool` lives on a SimPy :class:`simpy.Environment`. It has

* a **capacity** (number of agents) that may change by hour of week from a 168-entry shift schedule
  (hour 0 = Monday 00:00 at t = 0 of the reference clock, as everywhere in masssim). When capacity drops,
  agents finish the conversation in hand; nobody new is picked up until the busy count is below capacity;
* the **languages** it handles (``None``: all);
* a **handle-time sampler** per intent (lognormal by median and sigma by default; exponential for
  validation against queueing theory);
* a **queue discipline**: ``"fifo"``, or ``"priority"`` (higher priority first, FIFO within a priority);
* **abandonment** (reneging): each conversation carries a patience; if no agent picks it up within that
  time it leaves the queue and is recorded as abandoned. It never starts afterwards.

The pool is a SimPy resource written on plain SimPy events (``simpy.Resource`` has a fixed capacity and
no reneging). Each conversation costs one arrival, one patience timeout (only while it waits) and one
end-of-service timeout; there is no process per conversation. :meth:`ResponderPool.submit` returns an
event that fires with the conversation's id when it is finished or abandoned, so a routing process
(bot first, then escalation to humans) can ``yield`` it. :meth:`ResponderPool.feed` submits arrays of
arrivals from one process. Records are kept as growing numpy columns (:meth:`ResponderPool.records`).

All randomness comes from the ``numpy.random.Generator`` passed in (see :mod:`masssim.model.streams`).
Times are in seconds.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

import numpy as np
import simpy

# Shift schedules are the model's (masssim.model.shifts): a response policy staffs pools with them.
from masssim.model.shifts import HOUR_S, HOURS_PER_WEEK, WEEK_S, always_on, business_hours  # noqa: F401

# Conversation status codes in ConversationRecords.status.
WAITING, IN_SERVICE, DONE, ABANDONED = 0, 1, 2, 3
STATUS_NAMES = ("waiting", "in_service", "done", "abandoned")

Discipline = Literal["fifo", "priority"]


# ------------------------------------------------------------------------------------------------------
# Handle times
class HandleTime(Protocol):
    """Draws ``size`` handle times in seconds from ``rng``."""

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray: ...

    @property
    def mean_s(self) -> float: ...


@dataclass(frozen=True)
class LognormalHandleTime:
    """Lognormal handle time: ``median_s * exp(sigma * Z)``; mean = median exp(sigma^2 / 2)."""

    median_s: float
    sigma: float = 0.6

    def __post_init__(self) -> None:
        if not (self.median_s > 0 and math.isfinite(self.median_s)) or not self.sigma >= 0:
            raise ValueError("lognormal handle time needs median_s > 0 and sigma >= 0")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.median_s * np.exp(self.sigma * rng.standard_normal(size))

    @property
    def mean_s(self) -> float:
        return self.median_s * math.exp(0.5 * self.sigma**2)


@dataclass(frozen=True)
class ExponentialHandleTime:
    """Exponential handle time with mean ``mean_s`` (service rate 1 / mean_s): for Erlang C / A checks."""

    mean: float

    def __post_init__(self) -> None:
        if not (self.mean > 0 and math.isfinite(self.mean)):
            raise ValueError("exponential handle time needs a finite mean > 0")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.mean * rng.standard_exponential(size)

    @property
    def mean_s(self) -> float:
        return self.mean


class _Buffered:
    """Draws from a sampler in blocks, so that one conversation does not cost one numpy call."""

    __slots__ = ("_buf", "_i", "_rng", "_sampler", "_size")

    def __init__(self, sampler: HandleTime, rng: np.random.Generator, size: int = 512) -> None:
        self._sampler, self._rng, self._size = sampler, rng, size
        self._buf: list[float] = []
        self._i = 0

    def next(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self._sampler.sample(self._rng, self._size).tolist()
            self._i = 0
        value = self._buf[self._i]
        self._i += 1
        return value


# ------------------------------------------------------------------------------------------------------
@dataclass
class ConversationRecords:
    """One row per conversation submitted to a pool (times in seconds; NaN where it has not happened)."""

    pool: str
    arrival_s: np.ndarray
    start_s: np.ndarray  # NaN if abandoned or still waiting
    end_s: np.ndarray  # service end, or abandonment time; NaN if not yet over
    wait_s: np.ndarray  # start - arrival, or abandonment - arrival; NaN while still waiting
    status: np.ndarray  # int8, see STATUS_NAMES
    priority: np.ndarray
    intent: np.ndarray  # object: the intent labels
    language: np.ndarray  # object
    patience_s: np.ndarray

    @property
    def abandoned(self) -> np.ndarray:
        return self.status == ABANDONED

    @property
    def served(self) -> np.ndarray:
        """Picked up by an agent (finished or still in service)."""
        return (self.status == DONE) | (self.status == IN_SERVICE)

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])


class _Columns:
    """Growable float/int columns (amortised doubling)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.n = 0
        self.cap = capacity
        self.arrival = np.full(capacity, np.nan)
        self.start = np.full(capacity, np.nan)
        self.end = np.full(capacity, np.nan)
        self.patience = np.full(capacity, np.nan)
        self.priority = np.zeros(capacity, dtype=np.int64)
        self.status = np.zeros(capacity, dtype=np.int8)
        self.intent: list[str] = []
        self.language: list[str] = []

    def append(self, arrival: float, patience: float, priority: int, intent: str, language: str) -> int:
        if self.n == self.cap:
            self._grow()
        i = self.n
        self.arrival[i] = arrival
        self.patience[i] = patience
        self.priority[i] = priority
        self.intent.append(intent)
        self.language.append(language)
        self.n += 1
        return i

    def _grow(self) -> None:
        new = self.cap * 2
        for name in ("arrival", "start", "end", "patience"):
            old = getattr(self, name)
            arr = np.full(new, np.nan)
            arr[: self.cap] = old
            setattr(self, name, arr)
        for name, dtype in (("priority", np.int64), ("status", np.int8)):
            old = getattr(self, name)
            arr2 = np.zeros(new, dtype=dtype)
            arr2[: self.cap] = old
            setattr(self, name, arr2)
        self.cap = new


class ResponderPool:
    """A pool of agents (bots or humans) serving conversations from one queue.

    Args:
        env: the SimPy environment.
        name: recorded with every conversation.
        schedule: number of agents, either a constant or a 168-entry schedule by hour of week (reference
            clock, hour 0 = Monday 00:00 at t = 0). See :func:`always_on` and :func:`business_hours`.
        handle_time: a sampler for all intents, or a mapping intent -> sampler; a mapping may hold a
            ``"default"`` entry for intents it does not list.
        rng: the pool's generator (handle times are drawn from it, in blocks, per intent).
        languages: languages handled; ``None`` for all.
        discipline: ``"fifo"`` or ``"priority"`` (higher priority first, FIFO within a priority).

    A schedule that varies adds a process that wakes every hour for ever: run such an environment with
    ``env.run(until=...)`` (a constant schedule adds no process, so ``env.run()`` ends when work does).
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        schedule: int | Sequence[int] | np.ndarray,
        handle_time: HandleTime | Mapping[str, HandleTime],
        rng: np.random.Generator,
        languages: Iterable[str] | None = None,
        discipline: Discipline = "fifo",
    ) -> None:
        if discipline not in ("fifo", "priority"):
            raise ValueError(f"discipline must be 'fifo' or 'priority', not {discipline!r}")
        self.env = env
        self.name = name
        self.rng = rng
        self.discipline: Discipline = discipline
        self.languages: frozenset[str] | None = None if languages is None else frozenset(languages)
        if isinstance(schedule, int | np.integer):
            self.schedule = always_on(int(schedule))
        else:
            sched = np.asarray(schedule)
            if sched.shape != (HOURS_PER_WEEK,) or np.any(sched < 0) or np.any(sched != np.round(sched)):
                raise ValueError("a shift schedule has 168 non-negative integer entries (hours of the week)")
            self.schedule = sched.astype(np.int64)
        self._samplers: dict[str, _Buffered] = {}
        self._handle_time = handle_time
        self._cols = _Columns()
        self._done_events: dict[int, simpy.Event] = {}
        self._fixed: dict[int, float] = {}  # handle times given at submission
        self._fifo: deque[int] = deque()
        self._heap: list[tuple[int, int]] = []  # (-priority, id): ids increase with arrival order
        self.waiting = 0
        self.busy = 0
        self.capacity = int(self.schedule[self._hour_of_week(env.now)])
        if np.any(self.schedule != self.schedule[0]):
            env.process(self._shifts())

    # -- public API ----------------------------------------------------------------------------------
    def handles(self, language: str) -> bool:
        return self.languages is None or language in self.languages

    def status_of(self, cid: int) -> int:
        """Status code of conversation ``cid`` now (WAITING, IN_SERVICE, DONE or ABANDONED)."""
        return int(self._cols.status[cid])

    def start_of(self, cid: int) -> float:
        """When an agent picked up conversation ``cid`` (NaN if nobody has)."""
        return float(self._cols.start[cid])

    def submit(
        self,
        intent: str = "other",
        priority: int = 0,
        patience_s: float = math.inf,
        language: str = "en",
        handle_s: float | None = None,
    ) -> simpy.Event:
        """A conversation arrives now. Returns an event that succeeds with its id when it is over.

        ``patience_s`` is how long it will wait before abandoning (``inf``: never). ``handle_s`` fixes its
        handle time (e.g. drawn upstream for common random numbers); otherwise it is drawn from the intent's
        sampler when an agent picks it up.
        """
        if not self.handles(language):
            raise ValueError(f"pool {self.name!r} does not handle language {language!r}")
        if not patience_s >= 0:
            raise ValueError("patience_s must be >= 0")
        now = self.env.now
        cid = self._cols.append(now, patience_s, int(priority), intent, language)
        done = self.env.event()
        self._done_events[cid] = done
        if handle_s is not None:
            self._fixed[cid] = float(handle_s)
        if self.waiting == 0 and self.busy < self.capacity:
            self._start(cid)
            return done
        self._enqueue(cid)
        if math.isfinite(patience_s):
            timeout = self.env.timeout(patience_s)
            timeout.callbacks.append(partial(self._renege, cid))
        return done

    def feed(
        self,
        arrival_s: np.ndarray,
        intent: Sequence[str] | str = "other",
        priority: np.ndarray | int = 0,
        patience_s: np.ndarray | float = math.inf,
        language: Sequence[str] | str = "en",
    ) -> Generator[simpy.Event, Any, None]:
        """A SimPy process that submits conversations at the given (sorted, absolute) arrival times.

        The other arguments are scalars or arrays aligned with ``arrival_s``. Use as
        ``env.process(pool.feed(times, ...))``.
        """
        times = np.asarray(arrival_s, dtype=np.float64)
        if times.ndim != 1 or np.any(np.diff(times) < 0):
            raise ValueError("arrival_s must be a sorted 1-d array")
        n = times.shape[0]
        intents = [intent] * n if isinstance(intent, str) else list(intent)
        languages = [language] * n if isinstance(language, str) else list(language)
        prio = np.broadcast_to(np.asarray(priority, dtype=np.int64), (n,)).tolist()
        pat = np.broadcast_to(np.asarray(patience_s, dtype=np.float64), (n,)).tolist()
        if len(intents) != n or len(languages) != n:
            raise ValueError("intent and language must be scalars or have one entry per arrival")
        env = self.env
        for i, t in enumerate(times.tolist()):
            if t > env.now:
                yield env.timeout(t - env.now)
            self.submit(intents[i], prio[i], pat[i], languages[i])

    def records(self) -> ConversationRecords:
        c = self._cols
        n = c.n
        start, end, arrival = c.start[:n].copy(), c.end[:n].copy(), c.arrival[:n].copy()
        status = c.status[:n].copy()
        wait = np.where(status == ABANDONED, end - arrival, start - arrival)
        return ConversationRecords(
            pool=self.name,
            arrival_s=arrival,
            start_s=start,
            end_s=end,
            wait_s=wait,
            status=status,
            priority=c.priority[:n].copy(),
            intent=np.array(c.intent, dtype=object),
            language=np.array(c.language, dtype=object),
            patience_s=c.patience[:n].copy(),
        )

    # -- internals -----------------------------------------------------------------------------------
    @staticmethod
    def _hour_of_week(t: float) -> int:
        return int(t // HOUR_S) % HOURS_PER_WEEK

    def _sampler(self, intent: str) -> _Buffered:
        buffered = self._samplers.get(intent)
        if buffered is None:
            ht = self._handle_time
            if isinstance(ht, Mapping):
                chosen = ht.get(intent, ht.get("default"))
                if chosen is None:
                    raise KeyError(f"pool {self.name!r} has no handle time for intent {intent!r} and no default")
            else:
                chosen = ht
            buffered = _Buffered(chosen, self.rng)
            self._samplers[intent] = buffered
        return buffered

    def _enqueue(self, cid: int) -> None:
        self.waiting += 1
        if self.discipline == "fifo":
            self._fifo.append(cid)
        else:
            heapq.heappush(self._heap, (-int(self._cols.priority[cid]), cid))

    def _pop(self) -> int | None:
        """Next conversation still waiting (abandoned ones are skipped: lazy deletion)."""
        status = self._cols.status
        if self.discipline == "fifo":
            while self._fifo:
                cid = self._fifo.popleft()
                if status[cid] == WAITING:
                    return cid
        else:
            while self._heap:
                cid = heapq.heappop(self._heap)[1]
                if status[cid] == WAITING:
                    return cid
        return None

    def _start(self, cid: int) -> None:
        cols = self._cols
        now = self.env.now
        cols.status[cid] = IN_SERVICE
        cols.start[cid] = now
        self.busy += 1
        handle = self._fixed.pop(cid, None) if self._fixed else None
        if handle is None:
            handle = self._sampler(cols.intent[cid]).next()
        end = self.env.timeout(handle)
        end.callbacks.append(partial(self._finish, cid))

    def _finish(self, cid: int, _event: simpy.Event) -> None:
        cols = self._cols
        cols.status[cid] = DONE
        cols.end[cid] = self.env.now
        self.busy -= 1
        self._dispatch()
        self._done_events.pop(cid).succeed(cid)

    def _renege(self, cid: int, _event: simpy.Event) -> None:
        cols = self._cols
        if cols.status[cid] != WAITING:
            return
        cols.status[cid] = ABANDONED
        cols.end[cid] = self.env.now
        self.waiting -= 1
        self._done_events.pop(cid).succeed(cid)

    def _dispatch(self) -> None:
        while self.waiting and self.busy < self.capacity:
            cid = self._pop()
            if cid is None:  # pragma: no cover - waiting > 0 guarantees one
                break
            self.waiting -= 1
            self._start(cid)

    def _shifts(self) -> Generator[simpy.Event, Any, None]:
        """Sets the capacity at every hour boundary where the schedule changes."""
        env = self.env
        hour = math.floor(env.now / HOUR_S)  # counted as an integer: no drift from adding float delays
        while True:
            hour += 1
            yield env.timeout(max(hour * HOUR_S - env.now, 0.0))
            capacity = int(self.schedule[hour % HOURS_PER_WEEK])
            if capacity != self.capacity:
                self.capacity = capacity
                self._dispatch()


def pool_summary(records: ConversationRecords, since_s: float = 0.0) -> dict[str, float]:
    """Share abandoned, share that waited (not picked up on arrival), mean wait (abandoners counted until
    they leave), over arrivals at or after ``since_s`` that are resolved (started or abandoned)."""
    keep = (records.arrival_s >= since_s) & ~np.isnan(records.wait_s)
    n = int(keep.sum())
    if n == 0:
        return {"n": 0.0, "p_abandon": math.nan, "p_wait": math.nan, "mean_wait_s": math.nan}
    wait = records.wait_s[keep]
    abandoned = records.abandoned[keep]
    return {
        "n": float(n),
        "p_abandon": float(abandoned.mean()),
        "p_wait": float(((wait > 0) | abandoned).mean()),
        "mean_wait_s": float(wait.mean()),
    }
