"""The load generator: the three scenarios and the peak search, on one asyncio loop.

* ``server`` (open loop): queries leave at the scheduled Poisson times whatever the target is doing; the
  number in flight is unlimited (up to the abort guard). Latency runs from each query's *scheduled* time, so
  a stall in the target (or the generator) is charged to every query it delays — no coordinated omission.
  The actual issue time is recorded too, and its lateness judges the generator.
* ``single-stream`` (closed loop): one query at a time; the next leaves when the previous answer arrives.
* ``offline``: all samples are available at once and sent in batches, ``concurrency`` batches in flight,
  until both the minimum count and the minimum duration are met (MLPerf LoadGen's rule: the count planned
  from the warm-up's throughput is a first estimate, and a machine slower than the estimate keeps issuing).

A warm-up (not measured) comes first. Every query ends with an answer or a counted failure; when too many
fail, the closed-loop and offline scenarios stop issuing (the verdict is already FAIL), so a hanging or
broken target ends a run within its duration plus the timeout.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from masssim.bench.config import BenchConfig
from masssim.bench.corpus import Corpus, Predictions
from masssim.bench.schedule import STREAM_SAMPLES, SampleStream, Schedule, child_generator, server_schedule
from masssim.bench.targets import FAILURE_KINDS, Reply, Target, TargetFailure

OK = 0
NOT_ISSUED = len(FAILURE_KINDS) + 1  # scheduled but never sent (the run was aborted)
STATUS_NAMES: tuple[str, ...] = ("ok", *FAILURE_KINDS, "not_issued")

clock = time.perf_counter


@dataclass
class Records:
    """One row per query (struct of arrays); times are seconds from the run's start, NaN when not reached."""

    scheduled_s: np.ndarray
    issued_s: np.ndarray
    completed_s: np.ndarray
    size: np.ndarray  # samples in the query
    status: np.ndarray  # index into STATUS_NAMES
    service_s: np.ndarray  # the classifier's own time (python targets), else NaN
    warmup: np.ndarray  # bool

    @classmethod
    def allocate(cls, n: int) -> Records:
        nan = np.full(n, np.nan)
        return cls(
            nan.copy(),
            nan.copy(),
            nan.copy(),
            np.zeros(n, np.int64),
            np.full(n, NOT_ISSUED, np.int8),
            nan.copy(),
            np.zeros(n, bool),
        )

    def __len__(self) -> int:
        return int(self.status.shape[0])

    def grow(self, n: int) -> None:
        """Room for at least ``n`` rows (closed loop and offline, whose counts are known only at the end)."""
        if n <= len(self):
            return
        extra = Records.allocate(max(n, 2 * len(self)) - len(self))
        for name in self.__dataclass_fields__:
            setattr(self, name, np.concatenate([getattr(self, name), getattr(extra, name)]))

    def truncate(self, n: int) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name)[:n])


@dataclass
class RunOutcome:
    """What one measurement run produced, before it is summarised."""

    scenario: str
    records: Records
    rate: float | None = None
    schedule: Schedule | None = None
    started_at: str = ""
    wall_s: float = 0.0
    stopped: list[str] = field(default_factory=list)  # why issuing stopped early, if it did
    failures: Counter[str] = field(default_factory=Counter)
    failure_examples: dict[str, str] = field(default_factory=dict)
    planned_samples: int | None = None  # offline: the measured samples planned
    warmup_throughput: float | None = None  # offline: samples per second during the warm-up
    measure_start_s: float | None = None  # when the measured part began (server: the end of the warm-up)


class Runner:
    """Runs scenarios against one started target; collects the answers for the quality report."""

    def __init__(self, target: Target, corpus: Corpus, cfg: BenchConfig, root: np.random.SeedSequence) -> None:
        self.target = target
        self.corpus = corpus
        self.cfg = cfg
        self.root = root
        self.predictions = Predictions(len(corpus))
        self._runs = 0

    # -- one query -------------------------------------------------------------------------------

    async def _query(self, out: RunOutcome, i: int, indices: np.ndarray, t0: float) -> None:
        rec = out.records
        texts = [self.corpus.texts[j] for j in indices]
        rec.size[i] = len(indices)
        rec.issued_s[i] = clock() - t0
        try:
            reply: Reply = await self.target.classify(texts)
        except TargetFailure as failure:
            self._fail(out, i, failure.kind, failure.detail)
        except Exception as exc:  # a target bug must not end the run silently
            self._fail(out, i, "connection" if self.target.kind == "http" else "worker", f"{type(exc).__name__}: {exc}")
        else:
            rec.status[i] = OK
            if reply.service_s is not None:
                rec.service_s[i] = reply.service_s
            if len(reply.labels) == len(indices):
                self.predictions.record(indices, reply.labels)
            else:  # pragma: no cover - targets check the length
                self._fail(out, i, "bad_response", "wrong number of labels")
        rec.completed_s[i] = clock() - t0

    def _fail(self, out: RunOutcome, i: int, kind: str, detail: str) -> None:
        out.records.status[i] = STATUS_NAMES.index(kind)
        out.failures[kind] += 1
        out.failure_examples.setdefault(kind, detail)

    def _too_many_failures(self, out: RunOutcome) -> bool:
        return sum(out.failures.values()) > self.cfg.max_errors

    # -- server: open loop -----------------------------------------------------------------------

    async def server(self, rate: float, *, trial: int = 0) -> RunOutcome:
        cfg = self.cfg
        pool = len(self.corpus)
        schedule = server_schedule(
            _trial_root(self.root, trial),
            rate=rate,
            warmup_s=cfg.warmup_s,
            duration_s=cfg.duration_s,
            min_queries=cfg.min_queries,
            batch_size=cfg.query_size,
            pool=pool,
            unique=cfg.unique_samples,
        )
        n = len(schedule)
        rec = Records.allocate(n)
        rec.scheduled_s[:] = schedule.times_s
        rec.warmup[: schedule.warmup_count] = True
        out = RunOutcome("server", rec, rate=rate, schedule=schedule, started_at=_now(), measure_start_s=cfg.warmup_s)
        tasks: set[asyncio.Task[None]] = set()
        times = schedule.times_s
        samples = schedule.samples
        t0 = clock() + 0.02  # a moment to enter the loop before the first arrival
        i = 0
        while i < n:
            now = clock() - t0
            while i < n and times[i] <= now:
                task = asyncio.create_task(self._query(out, i, samples[i], t0))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            if len(tasks) > cfg.max_outstanding:
                out.stopped.append(
                    f"aborted at {now:.2f} s: {len(tasks)} queries outstanding exceeded the guard "
                    f"(--max-outstanding {cfg.max_outstanding})"
                )
                break
            if i < n:
                await asyncio.sleep(max(0.0, times[i] - (clock() - t0)))
        await _drain(tasks, cfg.timeout_s)
        out.wall_s = clock() - t0
        return out

    # -- single-stream: closed loop --------------------------------------------------------------

    async def single_stream(self) -> RunOutcome:
        cfg = self.cfg
        stream = SampleStream(len(self.corpus), child_generator(self.root, STREAM_SAMPLES), unique=cfg.unique_samples)
        rec = Records.allocate(1024)
        out = RunOutcome("single-stream", rec, started_at=_now())
        t0 = clock()
        measured = 0
        i = 0
        while True:
            elapsed = clock() - t0
            if elapsed >= cfg.warmup_s + cfg.duration_s and measured >= cfg.min_queries:
                break
            if elapsed >= cfg.closed_loop_cap_s:
                out.stopped.append(f"stopped at the maximum duration ({cfg.closed_loop_cap_s:g} s)")
                break
            if self._too_many_failures(out):
                out.stopped.append("stopped issuing: too many failed queries")
                break
            indices = stream.take(cfg.query_size)
            if indices is None:
                out.stopped.append("the sample pool is used up (each sample is sent once): raise --samples")
                break
            rec.grow(i + 1)
            rec.scheduled_s[i] = elapsed
            rec.warmup[i] = elapsed < cfg.warmup_s
            if out.measure_start_s is None and not rec.warmup[i]:
                out.measure_start_s = elapsed
            await self._query(out, i, indices, t0)
            measured += int(not rec.warmup[i])
            i += 1
        rec.truncate(i)
        out.wall_s = clock() - t0
        return out

    # -- offline: everything at once, in batches -------------------------------------------------

    async def offline(
        self,
        *,
        batch_size: int | None = None,
        concurrency: int | None = None,
        samples: int | None = None,
        warmup_s: float | None = None,
    ) -> RunOutcome:
        cfg = self.cfg
        b = batch_size or cfg.query_size
        c = concurrency or cfg.concurrency
        warm = cfg.warmup_s if warmup_s is None else warmup_s
        stream = SampleStream(
            len(self.corpus), child_generator(self.root, STREAM_SAMPLES, self._next_run()), unique=cfg.unique_samples
        )
        rec = Records.allocate(256)
        out = RunOutcome("offline", rec, started_at=_now())
        state = {"i": 0}
        t0 = clock()

        async def lane(
            deadline: float | None, budget: list[int], warmup: bool, start: float, until: float | None = None
        ) -> None:
            while True:
                if self._too_many_failures(out):
                    return
                if deadline is not None and clock() >= deadline:
                    return
                # The planned count is spent: stop, unless the minimum duration (``until``) is not reached yet.
                if budget and budget[0] <= 0 and (until is None or clock() >= until):
                    return
                k = min(b, budget[0]) if budget and budget[0] > 0 else b
                indices = stream.take(k)
                if indices is None:
                    if "the sample pool" not in " ".join(out.stopped):
                        out.stopped.append("the sample pool is used up (each sample is sent once): raise --samples")
                    return
                if budget:
                    budget[0] -= k
                i = state["i"]
                state["i"] += 1
                rec.grow(i + 1)
                rec.scheduled_s[i] = start - t0
                rec.warmup[i] = warmup
                await self._query(out, i, indices, t0)

        if warm > 0:
            start = clock()
            await asyncio.gather(*(lane(start + warm, [], True, start) for _ in range(c)))
            done = rec.status[: state["i"]] == OK
            span = clock() - start
            if span > 0 and done.any():
                out.warmup_throughput = float(rec.size[: state["i"]][done].sum()) / span
        if samples is None:
            planned = cfg.min_queries
            if out.warmup_throughput:
                planned = max(planned, math.ceil(1.1 * out.warmup_throughput * cfg.duration_s))
        else:
            planned = samples
        out.planned_samples = planned
        if not self._too_many_failures(out):
            start = clock()
            out.measure_start_s = start - t0
            budget = [planned]
            # A fixed sample count (``samples``, as the calibration asks) is exactly that; otherwise the run also
            # lasts the minimum duration.
            until = start + cfg.duration_s if samples is None else None
            await asyncio.gather(*(lane(None, budget, False, start, until) for _ in range(c)))
        if self._too_many_failures(out):
            out.stopped.append("stopped issuing: too many failed queries")
        rec.truncate(state["i"])
        out.wall_s = clock() - t0
        return out

    def _next_run(self) -> int:
        self._runs += 1
        return self._runs


def _trial_root(root: np.random.SeedSequence, trial: int) -> np.random.SeedSequence:
    if trial == 0:
        return root
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 100 + trial))


async def _drain(tasks: set[asyncio.Task[None]], timeout_s: float) -> None:
    """Wait for every query in flight; each has its own timeout, so this ends within about ``timeout_s``."""
    if not tasks:
        return
    _, pending = await asyncio.wait(set(tasks), timeout=timeout_s + 2.0)
    for task in pending:  # pragma: no cover - only a target that ignores its own timeout gets here
        task.cancel()
    if pending:  # pragma: no cover
        await asyncio.wait(pending, timeout=1.0)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary_rows(records: Records) -> dict[str, Any]:
    """Counts by status (for debugging and tests)."""
    counts = np.bincount(records.status.astype(np.int64), minlength=len(STATUS_NAMES))
    return {name: int(c) for name, c in zip(STATUS_NAMES, counts, strict=True)}
