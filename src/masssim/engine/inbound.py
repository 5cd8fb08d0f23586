"""Inbound, end to end (DESIGN §1.5): find → classify → respond in one SimPy environment.

:func:`simulate_inbound` takes a mention stream (:func:`masssim.messages.generate_mentions`), a classifier
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
from masssim.engine.responders import (
    ABANDONED,
    DONE,
    HOUR_S,
    HOURS_PER_WEEK,
    IN_SERVICE,
    HandleTime,
    ResponderPool,
)
from masssim.messages import LANGUAGES, SOURCES, Mentions
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


def plan_batches(arrival_s: np.ndarray, server: CoreServer) -> BatchPlan:
    """Form batches (full, or ``max_wait_s`` after opening) and queue them FIFO on the replicas."""
    t = np.asarray(arrival_s, dtype=np.float64)
    n = t.shape[0]
    if n and np.any(np.diff(t) < 0):
        raise ValueError("arrival times must be sorted")
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
    last = first + size - 1
    send = np.where(full, t[last] if n else np.zeros(0), t[first] + server.max_wait_s) if n else np.zeros(0)
    service = server.a_s + server.b_s * size
    if server.replicas == 1:
        # Lindley: end_k = max(send_k, end_{k-1}) + s_k  =  S_k + max_{j<=k}(send_j - S_{j-1}).
        cum = np.cumsum(service)
        end = cum + np.maximum.accumulate(send - (cum - service))
        start = end - service
    else:
        start = np.empty(len(size))
        free = [0.0] * server.replicas
        for k, (s, d) in enumerate(zip(send.tolist(), service.tolist(), strict=True)):
            earliest = heapq.heappop(free)
            start[k] = max(s, earliest)
            heapq.heappush(free, start[k] + d)
        end = start + service
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
) -> InboundResult:
    """Run find → classify → respond on ``[0, horizon_s)`` and measure it (see the module docstring).

    ``relevance_threshold`` is where the core's quality (precision, recall, F1 against the ground truth)
    is measured; the policy has its own thresholds.
    """
    if not horizon_s > 0:
        raise ValueError("horizon_s must be positive")
    if not pools:
        raise ValueError("at least one responder pool is needed")
    if not (patience_median_s > 0 and patience_sigma >= 0 and sla_minutes >= 0):
        raise ValueError("patience_median_s > 0, patience_sigma >= 0 and sla_minutes >= 0 are required")
    n = len(mentions)
    arrival = np.asarray(mentions.time_s, dtype=np.float64)

    # -- Classify: labels in one call, timing from the batch plan --------------------------------------
    labels = classifier.classify(mentions.text)
    if len(labels) != n:
        raise ValueError(f"the classifier returned {len(labels)} labels for {n} messages")
    plan = plan_batches(arrival, server)
    done_at = plan.end_s[plan.per_message(n)] if n else np.zeros(0)
    classified = done_at < horizon_s
    classified_at = np.where(classified, done_at, np.nan)

    # -- Route ---------------------------------------------------------------------------------------
    decisions = policy.route(labels, mentions)
    if len(decisions) != n:
        raise ValueError(f"the response policy returned {len(decisions)} decisions for {n} messages")
    n_pools = len(pools)
    for name, arr in (("pool", decisions.pool), ("escalate_to", decisions.escalate_to)):
        used = arr[decisions.respond]
        if used.size and (used.min() < (0 if name == "pool" else -1) or used.max() >= n_pools):
            raise ValueError(f"the policy routes to {name} {int(used.max())}, but there are {n_pools} pools")
    patience = patience_median_s * np.exp(patience_sigma * rng.standard_normal(n))
    resolved_first = rng.random(n) < decisions.p_resolve
    pool_rngs = rng.spawn(n_pools)

    env = simpy.Environment()
    built = [
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
    intent_name = [INTENT_NAMES[c] for c in labels.intent.tolist()]
    language = [LANGUAGES[c] for c in np.asarray(mentions.language).tolist()]
    priority = decisions.priority.tolist()
    escalate_to = decisions.escalate_to.tolist()
    pool_msgs: list[list[int]] = [[] for _ in pools]  # message index of each pool's conversation id
    stage1 = np.full(n, -1, np.int64)  # conversation id in the first pool
    stage2 = np.full(n, -1, np.int64)  # conversation id in the escalation pool
    final_pool = np.full(n, -1, np.int64)
    status = np.where(classified, IGNORED, UNCLASSIFIED).astype(np.int8)
    abandon = np.full(n, np.nan)
    escalation_failed = np.full(n, -1, np.int8)  # status of an escalation that never reached its pool

    def submit(i: int, k: int) -> int:
        """Message i to pool k now; -1 if it abandoned before getting there or the pool cannot take it."""
        final_pool[i] = k
        pool = built[k]
        if not pool.handles(language[i]):
            status[i] = UNROUTABLE
            return -1
        left = float(patience[i]) - (env.now - float(arrival[i]))
        if left <= 0:
            status[i] = ABANDON
            abandon[i] = arrival[i] + patience[i]
            return -1
        status[i] = PENDING
        cid = len(pool_msgs[k])
        pool_msgs[k].append(i)
        event = pool.submit(intent_name[i], priority[i], left, language[i])
        if escalate_to[i] >= 0 and k != escalate_to[i] and not resolved_first[i]:
            event.callbacks.append(partial(after_first, i, k, cid))
        return cid

    def after_first(i: int, k: int, cid: int, _event: simpy.Event) -> None:
        # The pool's done event carries only the id: read whether it was served or abandoned.
        if built[k]._cols.status[cid] == DONE:  # served, not resolved: escalate, clock still running
            stage2[i] = submit(i, escalate_to[i])
            if stage2[i] < 0:  # abandoned before reaching the escalation pool, or unroutable there
                escalation_failed[i] = status[i]

    order = np.flatnonzero(classified & decisions.respond)
    order = order[np.argsort(classified_at[order], kind="stable")]

    def router() -> Any:
        times = classified_at[order].tolist()
        for i, t in zip(order.tolist(), times, strict=True):
            if t > env.now:
                yield env.timeout(t - env.now)
            stage1[i] = submit(i, int(decisions.pool[i]))

    env.process(router())
    env.run(until=horizon_s)

    # -- Gather ----------------------------------------------------------------------------------------
    records = [p.records() for p in built]
    first_pool = np.where(decisions.respond & classified, decisions.pool, -1).astype(np.int64)
    first_start = np.full(n, np.nan)
    answer_start = np.full(n, np.nan)
    answer_end = np.full(n, np.nan)
    escalated = stage2 >= 0
    # Fill from the first stage, then overwrite with the second (the settling one) where there is one.
    for stage in (stage1, stage2):
        for k, rec in enumerate(records):
            msgs = np.asarray(pool_msgs[k], dtype=np.int64)
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
    will_escalate = (stage1 >= 0) & (decisions.escalate_to >= 0) & ~resolved_first
    will_escalate &= first_pool != decisions.escalate_to
    status[will_escalate & ~escalated & (status == ANSWERED)] = PENDING  # still with the first pool
    failed = escalation_failed >= 0
    status[failed] = escalation_failed[failed]
    not_answered = status != ANSWERED
    answer_start[not_answered] = np.nan
    answer_end[not_answered] = np.nan
    final_pool[status == UNCLASSIFIED] = -1
    final_pool[status == IGNORED] = -1
    response = answer_start - arrival

    truth = np.asarray(mentions.relevant, dtype=bool)
    quality = evaluate(labels, truth, mentions.intent, threshold=relevance_threshold)
    delay = classified_at - arrival
    result = InboundResult(
        arrival_s=arrival,
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
        patience_s=patience,
        pool_names=tuple(spec.name for spec in pools),
        quality=quality,
    )
    answered = status == ANSWERED
    routed = classified & decisions.respond
    sla_s = sla_minutes * 60.0
    summary: dict[str, float] = {
        "volume": float(n),
        "needles": float(truth.sum()),
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
    }
    for name in STATUS_NAMES:
        summary[f"n_{name}"] = float(result.count(name))
    for k, (spec, rec) in enumerate(zip(pools, records, strict=True)):
        start = rec.start_s
        end = np.where(np.isnan(rec.end_s) | (rec.status != DONE), horizon_s, rec.end_s)
        busy = np.nansum(np.clip(np.minimum(end, horizon_s) - start, 0.0, None))
        capacity = _agent_seconds(built[k].schedule, horizon_s)
        summary[f"utilisation_{spec.name}"] = float(busy / capacity) if capacity > 0 else math.nan
    result.summary = summary
    source = np.asarray(mentions.source)
    for code, name in enumerate(SOURCES):
        sel = source == code
        if not sel.any():
            continue
        by = {"volume": float(sel.sum()), "answered": float(np.count_nonzero(answered & sel))}
        by.update(_quantiles(response[sel], "response_time_s"))
        result.by_source[name] = by
    return result
