"""Inbound, end to end (DESIGN §1.5): find → classify → respond in one SimPy environment.

:func:`simulate_inbound` takes a mention stream (:func:`masssim.model.messages.generate_mentions`), a classifier
(:mod:`masssim.classify`), a model of the classification core as a server (:class:`CoreServer`), a
response policy (:mod:`masssim.policies.response`) and pool specifications (:class:`PoolSpec`), and
returns an :class:`InboundResult`: one row per message plus summary metrics.

**The core as a server.** Messages are gathered into batches in arrival order: a batch opens with the
first message not yet batched and is sent when it holds ``batch_size`` messages (at the arrival of the
last one) or ``max_wait_s`` after it opened, whichever is first. Batches queue FIFO for ``replicas``
identical workers; a batch of k messages takes ``a_s + b_s · k`` seconds. A message is classified when its
batch ends: ``classified_at - arrival`` is its classification delay, which includes the wait for its
batch to fill. When the service rate ``replicas · batch_size / (a_s + b_s · batch_size)`` is below the
arrival rate, batches queue up and every answer is delayed by a growing amount: the stream has outgrown
the core. Batch formation and the worker queue are computed with numpy before the simulation (they do not
depend on the responders); the classifier labels the whole stream in one call (its labels do not depend on
the batching).

**Respond.** At ``classified_at`` the policy's decision is applied: a message to answer is submitted to
its pool (:class:`~masssim.engine.responders.ResponderPool`, FIFO or priority), with its predicted intent
(which picks the handle-time sampler) and language. Each message has a patience drawn from a lognormal
(``patience_median_s · exp(patience_sigma · Z)``), counted **from its arrival**: time spent in the core and
in a bot conversation uses it up. A message whose patience has run out before it reaches a pool is
recorded as abandoned at ``arrival + patience`` without entering a queue. When the first pool has served
a conversation that has an escalation pool, it is resolved with probability ``p_resolve`` (drawn here),
otherwise it is submitted to the escalation pool with what is left of its patience.

**Per-message outcome** (:data:`STATUS_NAMES`): ``unclassified`` (its batch was not done by the horizon),
``ignored`` (the policy did not answer it), ``unroutable`` (no pool handles its language), ``pending``
(still queued, or with a bot that will escalate, at the horizon), ``answered`` (the pool that settles it
has started the answer) or ``abandoned``. The **response time** is the start of the settling answer minus
the arrival (for an escalated conversation: the human's start, the bot's time included).

All randomness comes from ``rng`` (patience and escalation coins first, then one child generator per pool
for handle times). Times are seconds from t = 0 (Monday 00:00 on the reference clock).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import simpy

from masssim.classify.base import INTENT_NAMES, Classifier, Labels
from masssim.classify.quality import QualityReport, evaluate
from masssim.engine.conversations import COMPLAINT, PURCHASE, OutcomeModel, Outcomes, decide
from masssim.engine.responders import (
    ABANDONED,
    DONE,
    HOUR_S,
    HOURS_PER_WEEK,
    IN_SERVICE,
    HandleTime,
    ResponderPool,
)
from masssim.model.messages import LANGUAGES, SOURCES, Mentions
from masssim.policies.response import Decisions, PoolKind, ResponsePolicyProtocol

UNCLASSIFIED, IGNORED, UNROUTABLE, PENDING, ANSWERED, ABANDON = range(6)
STATUS_NAMES = ("unclassified", "ignored", "unroutable", "pending", "answered", "abandoned")
QUANTILES = (50, 90, 99)


@dataclass(frozen=True)
class CoreServer:
    """The classification core as a batch server: ``replicas`` workers, service ``a_s + b_s · batch``."""

    batch_size: int = 32
    replicas: int = 1
    a_s: float = 0.05
    b_s: float = 0.002
    max_wait_s: float = 1.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.replicas < 1:
            raise ValueError("the core needs batch_size >= 1 and replicas >= 1")
        if not (self.a_s >= 0 and self.b_s >= 0 and self.max_wait_s >= 0):
            raise ValueError("a_s, b_s and max_wait_s must be non-negative")
        if not all(math.isfinite(v) for v in (self.a_s, self.b_s, self.max_wait_s)):
            raise ValueError("a_s, b_s and max_wait_s must be finite")

    def capacity_per_s(self) -> float:
        """Messages per second the core can classify with full batches (inf when service is free)."""
        service = self.a_s + self.b_s * self.batch_size
        return math.inf if service == 0 else self.replicas * self.batch_size / service


@dataclass(frozen=True)
class PoolSpec:
    """A responder pool to build in the simulation's environment.

    ``schedule`` (168 entries or a constant) overrides the policy's mode; otherwise the policy sets it from
    ``kind`` and ``agents`` (:meth:`~masssim.policies.response.ResponsePolicy.schedule_for`).
    """

    name: str
    agents: int
    handle_time: HandleTime | Mapping[str, HandleTime]
    kind: PoolKind = "human"
    languages: Sequence[str] | None = None
    discipline: Literal["fifo", "priority"] = "fifo"
    schedule: np.ndarray | int | None = None


@dataclass
class BatchPlan:
    """The core's batches: per batch its first message, size, send, start and end times."""

    first: np.ndarray
    size: np.ndarray
    send_s: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray

    def per_message(self, n: int) -> np.ndarray:
        """Index of the batch of each of the n messages."""
        return np.repeat(np.arange(len(self.size)), self.size) if n else np.zeros(0, np.int64)


def form_batches(arrival_s: np.ndarray, server: CoreServer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batches of sorted arrivals (full, or ``max_wait_s`` after opening): first message, size, send time.

    Send times never decrease: a batch cut by its deadline is followed by an arrival after that deadline,
    one cut by size by an arrival no earlier than its last."""
    t = np.asarray(arrival_s, dtype=np.float64)
    n = t.shape[0]
    if n and np.any(np.diff(t) < 0):
        raise ValueError("arrival times must be sorted")
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    # Batch k holds messages [first_k, first_k + size_k): at most batch_size, all within max_wait of the first.
    deadline_end = np.searchsorted(t, t + server.max_wait_s, side="right")  # one past the last that fits
    firsts: list[int] = []
    i = 0
    while i < n:
        firsts.append(i)
        i = min(i + server.batch_size, int(deadline_end[i]))
    first = np.asarray(firsts, dtype=np.int64)
    size = np.diff(np.append(first, n))
    full = size == server.batch_size
    send = np.where(full, t[first + size - 1], t[first] + server.max_wait_s)
    return first, size, send


def serve_batches(
    send_s: np.ndarray, size: np.ndarray, server: CoreServer, free: list[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each batch, FIFO on the replicas; ``free`` (a heap of the replicas' free times,
    updated in place) carries the core's state from earlier batches."""
    free = [0.0] * server.replicas if free is None else free
    service = server.a_s + server.b_s * size
    if server.replicas == 1:
        # Lindley: end_k = max(send_k, end_{k-1}) + s_k  =  S_k + max(free, max_{j<=k}(send_j - S_{j-1})).
        cum = np.cumsum(service)
        end = cum + np.maximum(np.maximum.accumulate(send_s - (cum - service)), free[0]) if size.size else cum
        start = end - service
        if size.size:
            free[0] = float(end[-1])
    else:
        start = np.empty(len(size))
        for k, (s, d) in enumerate(zip(send_s.tolist(), service.tolist(), strict=True)):
            earliest = heapq.heappop(free)
            start[k] = max(s, earliest)
            heapq.heappush(free, start[k] + d)
        end = start + service
    return start, end


def plan_batches(arrival_s: np.ndarray, server: CoreServer) -> BatchPlan:
    """Form batches (full, or ``max_wait_s`` after opening) and queue them FIFO on the replicas."""
    first, size, send = form_batches(arrival_s, server)
    start, end = serve_batches(send, size, server)
    return BatchPlan(first=first, size=size, send_s=send, start_s=start, end_s=end)


@dataclass
class InboundResult:
    """One row per message (struct of arrays, in arrival order) and the summary metrics."""

    arrival_s: np.ndarray
    classified_at_s: np.ndarray  # NaN if the core had not finished its batch by the horizon
    classification_delay_s: np.ndarray
    labels: Labels
    decisions: Decisions
    status: np.ndarray  # int8, see STATUS_NAMES
    first_pool: np.ndarray  # int64, -1 if never submitted
    final_pool: np.ndarray  # int64: the pool that settles it (the escalation pool if escalated); -1 if none
    escalated: np.ndarray  # bool
    first_start_s: np.ndarray  # first pool's start (e.g. the bot's answer); NaN if none
    answer_start_s: np.ndarray  # settling answer's start; NaN if not answered
    answer_end_s: np.ndarray  # settling answer's end; NaN if not over by the horizon
    abandon_s: np.ndarray  # NaN unless abandoned
    response_time_s: np.ndarray  # answer_start - arrival; NaN if not answered
    patience_s: np.ndarray
    pool_names: tuple[str, ...]
    quality: QualityReport
    author: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # customer, -1 for a stranger
    source: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # index into SOURCES
    from_reply: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # a reply to an outbound message
    summary: dict[str, float] = field(default_factory=dict)
    by_source: dict[str, dict[str, float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    def count(self, status: str) -> int:
        return int(np.count_nonzero(self.status == STATUS_NAMES.index(status)))


def _quantiles(values: np.ndarray, prefix: str) -> dict[str, float]:
    v = values[~np.isnan(values)]
    if v.size == 0:
        return {f"{prefix}_p{q}": math.nan for q in QUANTILES}
    qs = np.percentile(v, QUANTILES)
    return {f"{prefix}_p{q}": float(x) for q, x in zip(QUANTILES, qs, strict=True)}


def _agent_seconds(schedule: np.ndarray, horizon_s: float) -> float:
    hours = math.ceil(horizon_s / HOUR_S)
    idx = np.arange(hours)
    length = np.minimum((idx + 1) * HOUR_S, horizon_s) - idx * HOUR_S
    return float(np.sum(schedule[idx % HOURS_PER_WEEK] * length))


class _Columns:
    """Per-message columns of the desk, grown by concatenation at each registration."""

    def __init__(self) -> None:
        self.n = 0
        f, i, b = np.zeros(0, np.float64), np.zeros(0, np.int64), np.zeros(0, bool)
        self.arrival, self.classified_at, self.abandon, self.patience = f, f, f, f
        self.answer_start, self.settled_at = f, f
        self.status, self.final_pool, self.stage1, self.stage2 = i, i, i, i
        self.first_pool, self.escalation_failed, self.author, self.source = i, i, i, i
        self.relevant, self.resolved_first, self.from_reply, self.settled, self.respond = b, b, b, b, b
        self.true_intent = np.zeros(0, np.int8)

    def extend(self, **values: np.ndarray) -> None:
        added = len(next(iter(values.values())))
        for name, value in values.items():
            setattr(self, name, np.concatenate([getattr(self, name), value]))
        self.n += added


class InboundDesk:
    """Find -> classify -> respond inside a SimPy environment that other processes share.

    Messages are :meth:`register`-ed with arrival times at or after the present (the organic stream at
    t = 0, replies to outbound messages as a wave sends them). The core batches them as they arrive (the
    same rule as :func:`plan_batches`, decided on the arrivals known so far: a later registration can
    still complete a batch that is open), routes each classified batch, and the pools answer. Settled
    conversations (see :mod:`masssim.engine.conversations`) are handed out by :meth:`drain` in time
    order, with their outcomes, so the outbound side can act on them (declared taste, churn, purchases).
    """

    def __init__(
        self,
        env: simpy.Environment,
        classifier: Classifier,
        server: CoreServer,
        policy: ResponsePolicyProtocol,
        pools: Sequence[PoolSpec],
        rng: np.random.Generator,
        horizon_s: float,
        *,
        patience_median_s: float = 3600.0,
        patience_sigma: float = 1.0,
        sla_minutes: float = 60.0,
        relevance_threshold: float = 0.5,
        outcomes: OutcomeModel | None = None,
    ) -> None:
        if not horizon_s > 0:
            raise ValueError("horizon_s must be positive")
        if not pools:
            raise ValueError("at least one responder pool is needed")
        if not (patience_median_s > 0 and patience_sigma >= 0 and sla_minutes >= 0):
            raise ValueError("patience_median_s > 0, patience_sigma >= 0 and sla_minutes >= 0 are required")
        self.env = env
        self.classifier = classifier
        self.server = server
        self.policy = policy
        self.pool_specs = tuple(pools)
        self.horizon_s = float(horizon_s)
        self.patience_median_s = patience_median_s
        self.patience_sigma = patience_sigma
        self.sla_minutes = sla_minutes
        self.relevance_threshold = relevance_threshold
        self.outcome_model = outcomes or OutcomeModel()
        # Child streams: message draws (patience, escalation coins), one per pool, outcome coins.
        self.rng, outcome_rng, *pool_rngs = rng.spawn(2 + len(pools))
        self.outcome_rng = outcome_rng
        self.pools = [
            ResponderPool(
                env,
                spec.name,
                policy.schedule_for(spec.kind, spec.agents) if spec.schedule is None else spec.schedule,
                spec.handle_time,
                pool_rngs[k],
                languages=spec.languages,
                discipline=spec.discipline,
            )
            for k, spec in enumerate(pools)
        ]
        self.cols = _Columns()
        self._labels: list[Labels] = []
        self._decisions: list[Decisions] = []
        self._mentions: list[Mentions] = []
        # Hot per-message fields read one at a time in callbacks (python lists are fastest there).
        self._intent_name: list[str] = []
        self._language: list[str] = []
        self._priority: list[int] = []
        self._escalate_to: list[int] = []
        self._first: list[int] = []
        self.pool_msgs: list[list[int]] = [[] for _ in pools]  # message index of each pool's conversation id
        # The core: messages not yet batched (indices sorted by arrival), free times of the replicas.
        self._queue = np.zeros(0, np.int64)
        self._head = 0
        self._free = [0.0] * server.replicas
        # No registration will come before this time: batches sent earlier can be planned in bulk.
        self._quiet_until = 0.0
        self._wake = env.event()
        self._settled: list[tuple[float, int]] = []  # heap of (time known, message)
        self.outcomes: list[Outcomes] = []
        env.process(self._core())

    # -- input ---------------------------------------------------------------------------------------
    def register(self, mentions: Mentions, *, from_reply: bool = False, labels: Labels | None = None) -> None:
        """Messages arriving at their ``time_s`` (sorted, none before now): classified and routed as the
        core and the policy decide. Labels come from one classifier call (they do not depend on batching),
        or are given (the same classifier's labels of the same messages, computed once for several desks)."""
        n = len(mentions)
        if n == 0:
            return
        arrival = np.asarray(mentions.time_s, dtype=np.float64)
        if np.any(np.diff(arrival) < 0) or arrival[0] < self.env.now:
            raise ValueError("registered arrivals must be sorted and not in the past")
        if labels is None:
            labels = self.classifier.classify(mentions.text)
        if len(labels) != n:
            raise ValueError(f"the classifier returned {len(labels)} labels for {n} messages")
        decisions = self.policy.route(labels, mentions)
        if len(decisions) != n:
            raise ValueError(f"the response policy returned {len(decisions)} decisions for {n} messages")
        n_pools = len(self.pools)
        for name, arr in (("pool", decisions.pool), ("escalate_to", decisions.escalate_to)):
            used = arr[decisions.respond]
            if used.size and (used.min() < (0 if name == "pool" else -1) or used.max() >= n_pools):
                raise ValueError(f"the policy routes to {name} {int(used.max())}, but there are {n_pools} pools")
        patience = self.patience_median_s * np.exp(self.patience_sigma * self.rng.standard_normal(n))
        resolved_first = self.rng.random(n) < decisions.p_resolve
        first = self.cols.n
        minus = np.full(n, -1, np.int64)
        self.cols.extend(
            arrival=arrival,
            classified_at=np.full(n, np.nan),
            abandon=np.full(n, np.nan),
            patience=patience,
            answer_start=np.full(n, np.nan),
            settled_at=np.full(n, np.nan),
            status=np.full(n, UNCLASSIFIED, np.int64),
            final_pool=minus,
            stage1=minus,
            stage2=minus,
            first_pool=minus,
            escalation_failed=minus,
            respond=np.asarray(decisions.respond, dtype=bool),
            author=np.asarray(mentions.author, dtype=np.int64),
            source=np.asarray(mentions.source, dtype=np.int64),
            relevant=np.asarray(mentions.relevant, dtype=bool),
            resolved_first=resolved_first,
            from_reply=np.full(n, from_reply),
            settled=np.zeros(n, bool),
            true_intent=np.asarray(mentions.intent, dtype=np.int8),
        )
        self._labels.append(labels)
        self._decisions.append(decisions)
        self._mentions.append(mentions)
        self._intent_name += [INTENT_NAMES[c] for c in labels.intent.tolist()]
        self._language += [LANGUAGES[c] for c in np.asarray(mentions.language).tolist()]
        self._priority += decisions.priority.tolist()
        self._escalate_to += decisions.escalate_to.tolist()
        self._first += decisions.pool.tolist()
        waiting = np.concatenate([self._queue[self._head :], np.arange(first, first + n, dtype=np.int64)])
        self._queue = waiting[np.argsort(self.cols.arrival[waiting], kind="stable")]
        self._head = 0
        if not self._wake.triggered:
            self._wake.succeed()

    # -- the core ------------------------------------------------------------------------------------
    def quiet_until(self, time_s: float) -> None:
        """Promise that nothing will be registered before ``time_s`` (``inf``: nothing more at all).

        Batches sent before then cannot change, so the core plans them in bulk (vectorised) instead of
        one SimPy step per batch; the result is the same."""
        self._quiet_until = float(time_s)
        if not self._wake.triggered:
            self._wake.succeed()

    def _core(self) -> Any:
        env, server, cols = self.env, self.server, self.cols
        size_max = server.batch_size
        while True:
            queue, head = self._queue, self._head
            if head >= queue.shape[0]:
                self._wake = env.event()
                yield self._wake
                continue
            if self._quiet_until > env.now and self._plan_block():
                continue
            window = queue[head : head + size_max]
            t = cols.arrival[window]
            deadline = float(t[0]) + server.max_wait_s
            full = window.shape[0] == size_max and t[-1] <= deadline
            send = float(t[-1]) if full else deadline
            if send > env.now:  # wait for the batch to fill or time out; a registration may change that
                self._wake = env.event()
                yield env.timeout(send - env.now) | self._wake
                continue
            size = size_max if full else int(np.searchsorted(t, deadline, side="right"))
            batch = window[:size]
            self._head = head + size
            _, end = serve_batches(np.array([send]), np.array([size]), server, self._free)
            self._classify_at(batch, np.full(size, float(end[0])))

    def _plan_block(self) -> bool:
        """Plan, in one vectorised pass, every batch that will be sent before the quiet time ends."""
        waiting = self._queue[self._head :]
        first, size, send = form_batches(self.cols.arrival[waiting], self.server)
        k = int(np.searchsorted(send, self._quiet_until, side="left"))  # sent strictly before
        if k == 0:
            return False
        _, end = serve_batches(send[:k], size[:k], self.server, self._free)
        count = int(first[k - 1] + size[k - 1])
        self._head += count
        self._classify_at(waiting[:count], np.repeat(end, size[:k]))
        return True

    def _classify_at(self, msgs: np.ndarray, done_s: np.ndarray) -> None:
        """Messages ``msgs`` leave the core at ``done_s``: ignored ones are settled now (vectorised), the
        others are routed at that time by a process (one timeout per distinct time)."""
        cols = self.cols
        inside = done_s < self.horizon_s
        # Needles the core will not have classified by the horizon: their authors give up all the same.
        late = msgs[~inside][cols.relevant[msgs[~inside]]]
        give_up = cols.arrival[late] + cols.patience[late]
        for i, t in zip(
            late[give_up < self.horizon_s].tolist(), give_up[give_up < self.horizon_s].tolist(), strict=True
        ):
            self._settle(i, t)
        msgs, done_s = msgs[inside], done_s[inside]
        if msgs.shape[0] == 0:
            return
        cols.classified_at[msgs] = done_s
        respond = cols.respond[msgs]
        ignored = msgs[~respond]
        cols.status[ignored] = IGNORED
        needles = ignored[cols.relevant[ignored]]  # unanswered: the author gives up when patience runs out
        give_up = np.maximum(cols.classified_at[needles], cols.arrival[needles] + cols.patience[needles])
        for i, t in zip(needles.tolist(), give_up.tolist(), strict=True):
            self._settle(i, t)
        routed, at = msgs[respond], done_s[respond]
        if routed.shape[0]:
            order = np.argsort(at, kind="stable")
            self.env.process(self._router(routed[order].tolist(), at[order].tolist()))

    def _router(self, msgs: list[int], times: list[float]) -> Any:
        env, cols = self.env, self.cols
        for i, t in zip(msgs, times, strict=True):
            if t > env.now:
                yield env.timeout(t - env.now)
            first = self._first[i]
            cols.first_pool[i] = first
            cols.stage1[i] = self._submit(i, first, stage=1)

    # -- respond -------------------------------------------------------------------------------------
    def _submit(self, i: int, k: int, *, stage: int) -> int:
        """Message i to pool k now; -1 if it abandoned before getting there or the pool cannot take it."""
        cols, env = self.cols, self.env
        cols.final_pool[i] = k
        pool = self.pools[k]
        if not pool.handles(self._language[i]):
            cols.status[i] = UNROUTABLE
            self._settle(i, max(env.now, cols.arrival[i] + cols.patience[i]))
            return -1
        left = float(cols.patience[i]) - (env.now - float(cols.arrival[i]))
        if left <= 0:
            cols.status[i] = ABANDON
            cols.abandon[i] = cols.arrival[i] + cols.patience[i]
            self._settle(i, env.now)
            return -1
        cols.status[i] = PENDING
        cid = len(self.pool_msgs[k])
        self.pool_msgs[k].append(i)
        event = pool.submit(self._intent_name[i], self._priority[i], left, self._language[i])
        event.callbacks.append(partial(self._after, i, k, cid, stage))
        return cid

    def _after(self, i: int, k: int, cid: int, stage: int, _event: simpy.Event) -> None:
        """A pool is done with conversation ``cid`` (message i): escalate it, or settle it."""
        pool, cols = self.pools[k], self.cols
        if pool.status_of(cid) != DONE:  # abandoned in the queue
            self._settle(i, self.env.now)
            return
        escalate_to = self._escalate_to[i]
        if stage == 1 and escalate_to >= 0 and escalate_to != k and not cols.resolved_first[i]:
            cols.stage2[i] = self._submit(i, escalate_to, stage=2)
            if cols.stage2[i] < 0:  # abandoned before reaching the escalation pool, or unroutable there
                cols.escalation_failed[i] = cols.status[i]
            return
        cols.answer_start[i] = pool.start_of(cid)
        self._settle(i, self.env.now)

    def _settle(self, i: int, time_s: float) -> None:
        """Message i's outcome is known at ``time_s``; :meth:`drain` reads whether it was answered."""
        heapq.heappush(self._settled, (float(time_s), i))

    # -- output --------------------------------------------------------------------------------------
    def drain(self, until_s: float) -> Outcomes | None:
        """Outcomes of the conversations settled at or before ``until_s`` not drained yet (time order)."""
        heap = self._settled
        taken: list[int] = []
        times: list[float] = []
        while heap and heap[0][0] <= until_s:
            t, i = heapq.heappop(heap)
            taken.append(i)
            times.append(t)
        if not taken:
            return None
        cols = self.cols
        msg = np.asarray(taken, dtype=np.int64)
        cols.settled[msg] = True
        cols.settled_at[msg] = times
        answered = ~np.isnan(cols.answer_start[msg])
        wait = cols.answer_start[msg] - cols.arrival[msg]
        out = decide(
            self.outcome_model,
            msg,
            answered,
            wait,
            cols.relevant[msg],
            cols.true_intent[msg],
            cols.author[msg],
            self.outcome_rng,
        )
        self.outcomes.append(out)
        return out

    def result(self) -> InboundResult:
        """Per-message records (in registration order) and the summary, as of now."""
        return _gather(self)


def _concat_labels(parts: Sequence[Labels]) -> Labels:
    if not parts:
        return Labels.empty()
    return Labels(
        np.concatenate([p.relevant_prob for p in parts]),
        np.concatenate([p.intent for p in parts]),
        np.concatenate([p.priority for p in parts]),
    )


def _concat_decisions(parts: Sequence[Decisions]) -> Decisions:
    if not parts:
        e = np.zeros(0, np.int64)
        return Decisions(np.zeros(0, bool), e, e, e, np.zeros(0))
    return Decisions(
        np.concatenate([p.respond for p in parts]),
        np.concatenate([p.pool for p in parts]),
        np.concatenate([p.priority for p in parts]),
        np.concatenate([p.escalate_to for p in parts]),
        np.concatenate([p.p_resolve for p in parts]),
    )


def _gather(desk: InboundDesk) -> InboundResult:
    cols, pools, horizon_s = desk.cols, desk.pools, desk.horizon_s
    n = cols.n
    arrival = cols.arrival
    classified_at = cols.classified_at.copy()
    classified = ~np.isnan(classified_at)
    labels = _concat_labels(desk._labels)
    decisions = _concat_decisions(desk._decisions)
    status = cols.status.astype(np.int8)
    abandon = cols.abandon.copy()
    final_pool = cols.final_pool.copy()
    stage1, stage2 = cols.stage1, cols.stage2
    records = [p.records() for p in pools]
    first_pool = np.where(decisions.respond & classified, decisions.pool, -1).astype(np.int64)
    first_start = np.full(n, np.nan)
    answer_start = np.full(n, np.nan)
    answer_end = np.full(n, np.nan)
    escalated = stage2 >= 0
    # Fill from the first stage, then overwrite with the second (the settling one) where there is one.
    for stage in (stage1, stage2):
        for k, rec in enumerate(records):
            msgs = np.asarray(desk.pool_msgs[k], dtype=np.int64)
            in_pool = (final_pool == k) if stage is stage2 else (first_pool == k)
            sel = np.flatnonzero((stage >= 0) & in_pool)
            if sel.size == 0:
                continue
            cid = stage[sel]
            assert np.all(msgs[cid] == sel)
            st = rec.status[cid]
            if stage is stage1:
                first_start[sel] = rec.start_s[cid]
            answer_start[sel] = rec.start_s[cid]
            answer_end[sel] = np.where(st == DONE, rec.end_s[cid], np.nan)
            started = (st == DONE) | (st == IN_SERVICE)
            status[sel] = np.where(started, ANSWERED, np.where(st == ABANDONED, ABANDON, PENDING))
            abandon[sel] = np.where(st == ABANDONED, rec.end_s[cid], abandon[sel])
    # A first-stage conversation that will be escalated is not settled by its first answer.
    will_escalate = (stage1 >= 0) & (decisions.escalate_to >= 0) & ~cols.resolved_first
    will_escalate &= first_pool != decisions.escalate_to
    status[will_escalate & ~escalated & (status == ANSWERED)] = PENDING  # still with the first pool
    failed = cols.escalation_failed >= 0
    status[failed] = cols.escalation_failed[failed]
    not_answered = status != ANSWERED
    answer_start[not_answered] = np.nan
    answer_end[not_answered] = np.nan
    final_pool[status == UNCLASSIFIED] = -1
    final_pool[status == IGNORED] = -1
    response = answer_start - arrival

    truth = cols.relevant
    mentions_intent = cols.true_intent
    quality = evaluate(labels, truth, mentions_intent, threshold=desk.relevance_threshold)
    delay = classified_at - arrival
    result = InboundResult(
        arrival_s=arrival.copy(),
        classified_at_s=classified_at,
        classification_delay_s=delay,
        labels=labels,
        decisions=decisions,
        status=status,
        first_pool=first_pool,
        final_pool=final_pool,
        escalated=escalated,
        first_start_s=first_start,
        answer_start_s=answer_start,
        answer_end_s=answer_end,
        abandon_s=abandon,
        response_time_s=response,
        patience_s=cols.patience.copy(),
        pool_names=tuple(spec.name for spec in desk.pool_specs),
        quality=quality,
        author=cols.author.copy(),
        source=cols.source.astype(np.int8),
        from_reply=cols.from_reply.copy(),
    )
    answered = status == ANSWERED
    routed = classified & decisions.respond
    sla_s = desk.sla_minutes * 60.0
    summary: dict[str, float] = {
        "volume": float(n),
        "needles": float(truth.sum()),
        "replies": float(cols.from_reply.sum()),
        "classified": float(classified.sum()),
        "routed": float(routed.sum()),
        "escalated": float(escalated.sum()),
        "precision": quality.relevance.precision,
        "recall": quality.relevance.recall,
        "f1": quality.relevance.f1,
        "intent_macro_f1": quality.intent.macro_f1,
        **_quantiles(delay, "classification_delay_s"),
        **_quantiles(response, "response_time_s"),
        "sla_attainment": float(np.count_nonzero(answered & (response <= sla_s)) / routed.sum())
        if routed.any()
        else math.nan,
        "abandonment": float(np.count_nonzero(status == ABANDON) / routed.sum()) if routed.any() else math.nan,
        "missed_needles": float(np.count_nonzero(truth & ~answered)),
        "false_alarms": float(np.count_nonzero(~truth & answered)),
        "resolutions": float(np.count_nonzero(answered & ~np.isnan(answer_end))),
        **_quantiles(np.where(truth, response, np.nan), "needle_response_time_s"),
        "needle_sla_attainment": float(np.count_nonzero(truth & answered & (response <= sla_s)) / truth.sum())
        if truth.any()
        else math.nan,
        "missed_purchase_intents": float(np.count_nonzero(truth & ~answered & (mentions_intent == PURCHASE))),
        "missed_complaints": float(np.count_nonzero(truth & ~answered & (mentions_intent == COMPLAINT))),
    }
    for name in STATUS_NAMES:
        summary[f"n_{name}"] = float(result.count(name))
    busy_by_kind: dict[str, float] = {"bot": 0.0, "human": 0.0}
    capacity_by_kind: dict[str, float] = {"bot": 0.0, "human": 0.0}
    for k, (spec, rec) in enumerate(zip(desk.pool_specs, records, strict=True)):
        start = rec.start_s
        end = np.where(np.isnan(rec.end_s) | (rec.status != DONE), horizon_s, rec.end_s)
        held = np.clip(np.minimum(end, horizon_s) - start, 0.0, None)
        busy = float(np.nansum(held))
        capacity = _agent_seconds(pools[k].schedule, horizon_s)
        summary[f"utilisation_{spec.name}"] = busy / capacity if capacity > 0 else math.nan
        summary[f"agent_hours_{spec.name}"] = capacity / HOUR_S
        taken = (rec.status == DONE) | (rec.status == IN_SERVICE)  # picked up by an agent
        summary[f"conversations_{spec.name}"] = float(np.count_nonzero(taken))
        # What false alarms take from this pool: conversations about haystack, and the time spent on them.
        haystack = ~truth[np.asarray(desk.pool_msgs[k], dtype=np.int64)] & taken if len(rec) else np.zeros(0, bool)
        summary[f"false_alarm_conversations_{spec.name}"] = float(np.count_nonzero(haystack))
        summary[f"false_alarm_busy_hours_{spec.name}"] = float(np.nansum(held[haystack])) / HOUR_S
        busy_by_kind[spec.kind] += busy
        capacity_by_kind[spec.kind] += capacity
    for kind in ("bot", "human"):
        cap = capacity_by_kind[kind]
        summary[f"utilisation_{kind}s"] = busy_by_kind[kind] / cap if cap > 0 else math.nan
    outcome_summary(desk.outcomes, cols, summary)
    result.summary = summary
    source = cols.source
    for code, name in enumerate(SOURCES):
        sel = source == code
        if not sel.any():
            continue
        by = {"volume": float(sel.sum()), "answered": float(np.count_nonzero(answered & sel))}
        quantiles = _quantiles(response[sel], "response_time_s")
        by.update(quantiles)
        result.by_source[name] = by
        for key, value in quantiles.items():
            summary[f"{key}_{name}"] = value
    return result


def outcome_summary(outcomes: Sequence[Outcomes], cols: _Columns, summary: dict[str, float]) -> None:
    """Counts of the conversation outcomes drained so far (see :mod:`masssim.engine.conversations`)."""
    settled_needles = int(np.count_nonzero(cols.settled & cols.relevant))
    parts = {
        name: np.concatenate([getattr(o, name) for o in outcomes]) if outcomes else np.zeros(0, bool)
        for name in ("satisfied", "converted", "churned", "declared")
    }
    message = np.concatenate([o.message for o in outcomes]) if outcomes else np.zeros(0, np.int64)
    summary["settled_needles"] = float(settled_needles)
    summary["satisfied"] = float(parts["satisfied"].sum())
    summary["satisfaction"] = float(parts["satisfied"].sum() / settled_needles) if settled_needles else math.nan
    summary["conversions"] = float(parts["converted"].sum())
    summary["conversions_from_replies"] = float(np.count_nonzero(parts["converted"] & cols.from_reply[message]))
    # Customers, not outcomes: a customer who has left may still post, and complain unanswered, again.
    summary["churned"] = float(np.unique(cols.author[message[parts["churned"]]]).shape[0])
    summary["declarations"] = float(parts["declared"].sum())


def simulate_inbound(
    mentions: Mentions,
    classifier: Classifier,
    server: CoreServer,
    policy: ResponsePolicyProtocol,
    pools: Sequence[PoolSpec],
    rng: np.random.Generator,
    horizon_s: float,
    *,
    patience_median_s: float = 3600.0,
    patience_sigma: float = 1.0,
    sla_minutes: float = 60.0,
    relevance_threshold: float = 0.5,
    outcomes: OutcomeModel | None = None,
) -> InboundResult:
    """Run find -> classify -> respond on a known stream over ``[0, horizon_s)`` (see :class:`InboundDesk`).

    ``relevance_threshold`` is where the core's quality (precision, recall, F1 against the ground truth)
    is measured; the policy has its own thresholds.
    """
    env = simpy.Environment()
    desk = InboundDesk(
        env,
        classifier,
        server,
        policy,
        pools,
        rng,
        horizon_s,
        patience_median_s=patience_median_s,
        patience_sigma=patience_sigma,
        sla_minutes=sla_minutes,
        relevance_threshold=relevance_threshold,
        outcomes=outcomes,
    )
    desk.register(mentions)
    desk.quiet_until(math.inf)
    env.run(until=horizon_s)
    desk.drain(horizon_s)
    return desk.result()
