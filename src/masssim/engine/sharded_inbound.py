"""``[inbound]`` in a sharded replication (docs/model.md §16.8).

The inbound desk, its classifier and the conversations' bookkeeping run on the **coordinator**, exactly as
in one process (:class:`~masssim.engine.conversation_loop.ConversationLoop`); the shards keep what the
conversations do to their customers. Three things cross the wire:

* **once per replication**, shards -> coordinator: every customer's voice rate (4 bytes per customer), from
  which the coordinator draws the organic mention stream as one process does, and who had declared their
  taste before the run (the shards draw it from their chunks' streams);
* **per block of sends**, shards -> coordinator: each reply's customer and time. One process hands a block's
  replies to the desk ordered by time, ties in the block's (departure) order; each shard's replies are a
  subsequence of them, so the coordinator merges them back by (time, row of the block): customers are unique
  within a wave, so a customer's row in the block is known from its id. The desk then registers them and
  draws their content from its own stream, in the one-process order;
* **per feedback bucket**, coordinator -> shards: the conversations settled in it that change customers:
  who left (their churn mark: a shard takes every opt-in of a customer whose mark becomes non-zero, and its
  organic occasions and direct purchases consult the marks) and the conversation purchases in settlement
  order, each with whether a reply started it (the shard counts it and draws its pull-forward coin from the
  customer's chunk stream, which consumes the stream in the order one process does). Between two waves
  they travel in the one call per shard that runs the buckets (``ArmInbound.settle``), each applied right
  after its bucket, unless the arm's policy reads declared taste (then a call per bucket).

Declared taste captured in conversations is counted on the coordinator (who declared). For a policy that reads
declared taste its values are made as one process makes them: the coordinator asks the shards for the latent
taste of the bucket's new declarers (4·d bytes each) and adds the noise it draws from the one stream one
process uses; otherwise they are not drawn (nobody reads them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import simpy

from masssim.config.schema import Scenario
from masssim.engine.chunks import ChunkLayout, chunk_generators
from masssim.engine.conversation_loop import ConversationLoop, DeclaredTable, InboundWorld, build_inbound_world
from masssim.engine.shard_views import ShardTaste
from masssim.engine.sim import _DECLARED_AT_START
from masssim.engine.state import Recorder
from masssim.model.population import Population
from masssim.model.streams import Component, chunk_sequence, component_sequence
from masssim.policies.base import FEEDBACK_KINDS, CustomerView, Feedback
from masssim.policies.registry import resolve_targeting


class ShardCalls(Protocol):
    """The calls to a replication's shards (:class:`masssim.engine.sharded.ShardGroup`)."""

    ranges: list[range]

    def call(self, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]: ...


def _everyone(group: ShardCalls) -> dict[int, tuple[Any, ...]]:
    return dict.fromkeys(range(len(group.ranges)), ())


# -- on a shard ---------------------------------------------------------------------------------------


class ShardChurn:
    """A shard's churn marks for its own rows (0: stays; 1: left after a conversation a reply started; 2: after
    an organic one): the part of the conversation loop that purchase occasions consult on a shard."""

    def __init__(self, n: int) -> None:
        self.churn = np.zeros(n, np.uint8)

    def churn_filter(self, customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`ConversationLoop.churn_filter`."""
        kind = self.churn[customers]
        return kind > 0, kind == 2


def declared_at_start(
    scenario: Scenario, replication_seq: np.random.SeedSequence, layout: ChunkLayout, chunks: range, rows: range
) -> np.ndarray:
    """Which customers of ``rows`` (a shard's) had declared their taste before the run: the first draw of
    each chunk's stream, as in :func:`masssim.engine.sim.build_world` (the taste values that follow are not
    needed sharded)."""
    declared = np.zeros(len(rows), bool)
    share = scenario.population.declared_taste_share
    if share == 0:
        return declared
    parent = chunk_sequence(component_sequence(replication_seq, Component.DECLARED), _DECLARED_AT_START)
    for lo, hi, rng in chunk_generators(parent, layout, chunks):
        declared[lo - rows.start : hi - rows.start] = rng.random(hi - lo) < share
    return declared


# -- on the coordinator -------------------------------------------------------------------------------


@dataclass
class _Voices:
    """What the organic mention stream needs of the population: who posts how often, and local time."""

    voice_rate: np.ndarray
    region: np.ndarray
    region_utc_offset_hours: np.ndarray

    def utc_offset_seconds(self, idx: Any = None) -> np.ndarray:
        return Population.utc_offset_seconds(cast(Population, self), idx)


@dataclass
class CoordinatorInbound:
    """What the arms of a sharded replication share on the inbound side, built on the coordinator."""

    world: InboundWorld
    declared: np.ndarray  # bool [N]: declared their taste before the run


def coordinator_inbound(
    scenario: Scenario, replication_seq: np.random.SeedSequence, group: ShardCalls, region: np.ndarray
) -> CoordinatorInbound:
    """The replication's mention stream, fitted classifier and labels (as ``build_inbound_world`` in one
    process), from the voice rates gathered from the shards, and who declared their taste at the start."""
    voices = np.concatenate(group.call("voices", _everyone(group)))
    offsets = np.array([r.utc_offset_hours for r in scenario.population.regions], np.float64)
    population = cast(Population, _Voices(voices, region, offsets))
    world = build_inbound_world(scenario, population, replication_seq)
    declared = np.concatenate(group.call("declared_at_start", _everyone(group)))
    return CoordinatorInbound(world, declared)


def merge_replies(
    customer: np.ndarray, answers: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray] | None:
    """A block's replies from its shards (each shard's customers and times) in the one-process order: by
    time, ties by row of the block (``customer``, in its plan order; customers are unique within a wave).
    None when there are none."""
    who = np.concatenate([a[0] for a in answers]) if answers else np.empty(0, np.int64)
    if who.shape[0] == 0:
        return None
    when = np.concatenate([a[1] for a in answers])
    by_customer = np.argsort(customer, kind="stable")
    row = by_customer[np.searchsorted(customer[by_customer], who)]
    order = np.lexsort((row, when))
    return who[order], when[order]


class _NoDeclaredView:
    """Stands in for the policy's view when the policy reads no declared taste (§16.5)."""

    declared_row: np.ndarray | None = None
    declared_taste: np.ndarray | None = None
    declared_version = 0


class CoordinatorConversations(ConversationLoop):
    """The desk and the conversations' bookkeeping on the coordinator; what they do to customers is queued
    for the shards that hold them and sent after each bucket (:meth:`push`)."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        inbound: CoordinatorInbound,
        contactable: np.ndarray,
        recorder: Recorder,
        replication_seq: np.random.SeedSequence,
        group: ShardCalls,
        declared: DeclaredTable | None = None,
        view: CustomerView | None = None,
    ) -> None:
        """``declared`` and ``view``: the arm's declared-taste table and its policy's view, when the policy
        reads declared taste (its values are then made as in one process); None otherwise."""
        n = contactable.shape[0]
        self.with_values = declared is not None
        if declared is None:
            start = int(np.count_nonzero(inbound.declared))
            row = np.full(n, -1, np.int32)
            row[inbound.declared] = np.arange(start, dtype=np.int32)
            declared = DeclaredTable(n, 0, row, np.empty((start, 0), np.float32))
        dims = declared.taste.shape[1]
        super().__init__(
            env,
            scenario,
            inbound.world,
            cast(Population, _Customers(n, ShardTaste(group, dims))),
            contactable,
            cast(Any, None),  # no customer state here: _leave and _credit_purchases go to the shards
            recorder,
            cast(Any, _NoDeclaredView()) if view is None else view,
            declared,
            replication_seq,
            cast(Any, None),
        )
        self.group = group
        self._churned: list[tuple[np.ndarray, np.ndarray]] = []
        self._bought: list[tuple[np.ndarray, np.ndarray]] = []

    def _declare(self, customers: np.ndarray) -> None:
        if self.with_values:  # one process's code: the taste of the new declarers comes from their shards
            super()._declare(customers)
            return
        new = np.unique(customers[self.declared.row[customers] < 0])
        if new.shape[0]:
            self.declared.add(new, np.empty((new.shape[0], 0), np.float32))

    def _churn(self, customers: np.ndarray, from_reply: np.ndarray, when: np.ndarray) -> None:
        super()._churn(customers, from_reply, when)
        if customers.shape[0]:
            touched = np.unique(customers)
            self._churned.append((touched, self.churn[touched]))

    def _leave(self, who: np.ndarray) -> None:
        """Nothing here: a shard takes the opt-ins of a customer whose churn mark becomes non-zero."""

    def _credit_purchases(self, customers: np.ndarray, from_reply: np.ndarray) -> None:
        self._bought.append((customers, from_reply))

    def push(self) -> None:
        """Send the bucket's churn marks and conversation purchases to the shards that hold the customers."""
        if not self._churned and not self._bought:
            return
        self.group.call("conversation_outcomes", self.take_outcomes())

    def take_outcomes(self) -> dict[int, tuple[Any, ...]]:
        """The churn marks and conversation purchases settled since the last call, as the arguments of
        ``conversation_outcomes`` for each shard that holds some of their customers (none: an empty dict)."""
        if not self._churned and not self._bought:
            return {}
        churned = _joined(self._churned, np.int64, np.uint8)
        bought = _joined(self._bought, np.int64, bool)
        self._churned, self._bought = [], []
        args: dict[int, tuple[Any, ...]] = {}
        for s, r in enumerate(self.group.ranges):
            mine = (churned[0] >= r.start) & (churned[0] < r.stop)
            buys = (bought[0] >= r.start) & (bought[0] < r.stop)
            if mine.any() or buys.any():
                args[s] = (churned[0][mine], churned[1][mine], bought[0][buys], bought[1][buys])
        return args


@dataclass
class _Customers:
    """What the conversations read of the population on the coordinator: its size and, for declarations,
    the latent taste of given customers (asked of their shards)."""

    n: int
    taste: ShardTaste


def _joined(parts: list[tuple[np.ndarray, np.ndarray]], first: Any, second: Any) -> tuple[np.ndarray, np.ndarray]:
    if not parts:
        return np.empty(0, first), np.empty(0, second)
    return (
        np.concatenate([p[0] for p in parts]).astype(first, copy=False),
        np.concatenate([p[1] for p in parts]).astype(second, copy=False),
    )


class ArmInbound:
    """One sharded arm's inbound desk on the coordinator, driven by the arm's hooks
    (:class:`masssim.engine.sharded.ShardedArm`: before the clock starts, after each wave is sent, after
    each bucket is observed, and when the arm ends), at the points where one process drives its
    :class:`ConversationLoop`."""

    def __init__(self, arm: Any, inbound: CoordinatorInbound) -> None:
        self.arm = arm  # the ShardedArm: its clock's times, sender, recorder, policy and shards
        self.inbound = inbound
        self.loop: CoordinatorConversations | None = None
        declared = getattr(resolve_targeting(arm.arm.policy), "feedback_kinds", None)
        self.feedback_kinds = FEEDBACK_KINDS if declared is None else FEEDBACK_KINDS & frozenset(declared)

    def start(self, env: simpy.Environment) -> None:
        arm = self.arm
        self.loop = CoordinatorConversations(
            env,
            arm.scenario,
            self.inbound,
            arm.contactable,
            arm.recorder,
            arm.replication_seq,
            arm.group,
            arm.declared,
            arm.view if arm.declared is not None else None,
        )
        cfg = arm.scenario.inbound
        if cfg is not None and cfg.replies.enabled:
            arm.sender.reply_sink = self.loop.on_replies
        # As in one process: replies are registered only when a wave is sent.
        self.loop.desk.quiet_until(arm._wave_event_time(arm.days[0]) if arm.days else math.inf)

    def after_send(self, index: int) -> None:
        assert self.loop is not None
        days = self.arm.days
        following = days[index + 1] if index + 1 < len(days) else None
        self.loop.desk.quiet_until(math.inf if following is None else self.arm._wave_event_time(following))

    @property
    def batches(self) -> bool:
        """Whether the arm's buckets between two waves may run in one call per shard (docs/model.md §16.8):
        yes unless the arm's policy reads declared taste, whose table the desk grows as conversations settle:
        its ``observe`` of a bucket must see the table of that bucket, not of the wave's last one."""
        return self.arm.declared is None

    def after_bucket(self, t1: float) -> None:
        assert self.loop is not None
        won = self.loop.apply(t1)
        self.loop.push()  # before the next wave checks opt-ins and the next bucket's occasions
        if won is not None and "purchase" in self.feedback_kinds:
            self.arm.policy.observe(Feedback(time_s=t1, events={"purchase": won}))

    def settle(self, t1: float) -> tuple[dict[int, tuple[Any, ...]], dict[str, np.ndarray] | None]:
        """:meth:`after_bucket` with the shards' part and the policy's put off to the next wave (batched
        buckets): the conversations settled by ``t1`` change the desk's bookkeeping now (nothing of it comes
        from the shards); returns what they did to the customers, per shard (``take_outcomes``), which each
        shard applies right after its bucket and before the next, and the purchases the policy observes
        after the bucket's feedback (None: nothing to observe)."""
        assert self.loop is not None
        won = self.loop.apply(t1)
        observed = won if won is not None and "purchase" in self.feedback_kinds else None
        return self.loop.take_outcomes(), observed

    def finish(self, totals: dict[str, float]) -> dict[str, dict[str, float]]:
        """Add the desk's totals to ``totals``; returns its figures per pool."""
        assert self.loop is not None
        inbound_totals, pools = self.loop.finish()
        for name, value in inbound_totals.items():
            totals[name] += float(value)
        return pools
