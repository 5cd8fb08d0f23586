"""The loop between the outbound and inbound halves of one arm (DESIGN §1.5).

With an ``[inbound]`` table, each arm runs an :class:`~masssim.engine.inbound.InboundDesk` on its own SimPy
clock, beside the wave and bucket processes (:mod:`masssim.engine.sim`):

* the replication's **organic mention stream** (shared by the arms: common random numbers) is registered
  at t = 0;
* every **reply** to an outbound message on a conversational channel (``reply_rate > 0``) becomes an
  inbound message when the wave is sent, arriving at the reply's time (content drawn with
  ``inbound.replies``), so a strategy that provokes replies also loads the responders;
* at the end of each feedback bucket the conversations settled in it act on the customers
  (:meth:`ConversationLoop.apply`): **declared taste** captured in an answered conversation joins the
  declared-taste table the targeting policy reads (``CustomerView.declared_row`` / ``declared_taste``,
  ``declared_version``), a **churned** customer leaves every channel and buys no more of our brand, and a
  **conversion** by a customer is a purchase of our brand.

What the arms share on the inbound side (:class:`InboundWorld`): the organic stream and the classifier.
The classifier is fitted **once per run** on a training corpus from a run-level stream
(:func:`masssim.model.streams.run_level_sequence`) and cached in the process, so replications and variants
share one fitted model (it is the "classifier" of the experiment; the stream varies by replication).
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import simpy

from masssim.classify.base import Classifier, Labels, TrainableClassifier
from masssim.classify.registry import build_classifier
from masssim.config.schema import CHANNEL_NAMES, InboundConfig, PoolConfig, Scenario
from masssim.engine.chunks import ChunkDraws, Draw
from masssim.engine.conversations import OutcomeModel, Outcomes
from masssim.engine.inbound import CoreServer, InboundDesk, PoolSpec
from masssim.engine.responders import HandleTime, LognormalHandleTime
from masssim.engine.state import CustomerState, Recorder, increment
from masssim.model.channels import DAY_S
from masssim.model.message_files import load_source
from masssim.model.messages import (
    SOURCES,
    CustomerVoices,
    LabelledMessages,
    Mentions,
    generate_mentions,
    reply_messages,
    split_labelled,
    training_corpus,
)
from masssim.model.metrics import inbound_metrics
from masssim.model.streams import Component, component_sequence, generator, run_level_sequence
from masssim.policies.response import build_response_policy

if TYPE_CHECKING:
    from masssim.model.population import Population
    from masssim.policies.base import CustomerView

TRAINING_PURPOSE = 1  # run-level stream of the classifier's training corpus (never renumber)
SPLIT_PURPOSE = 2  # run-level stream of the training / stream split of a user's messages (never renumber)
# The inbound source a reply arrives through, by outbound channel.
REPLY_SOURCE = {"email": "email", "sms": "messaging", "messaging": "messaging", "paid_social": "social"}
_SOURCE_OF_CHANNEL = np.array([SOURCES.index(REPLY_SOURCE[c]) for c in CHANNEL_NAMES], np.int8)

# Sub-streams of Component.INBOUND (never renumber).
_MENTIONS, _DESK, _REPLIES = 0, 1, 2

_CLASSIFIERS: OrderedDict[tuple[object, ...], Classifier] = OrderedDict()
_CACHE_SIZE = 4


_USER_MESSAGES: OrderedDict[tuple[object, ...], tuple[LabelledMessages, LabelledMessages]] = OrderedDict()


def user_messages(
    cfg: InboundConfig, replication_seq: np.random.SeedSequence
) -> tuple[LabelledMessages, LabelledMessages] | None:
    """A user's labelled messages split, once per run, into (training share, stream share); None without."""
    if cfg.messages is None:
        return None
    path = Path(cfg.messages.path)
    key = (
        str(path),
        path.stat().st_mtime_ns,
        cfg.messages.format,
        replication_seq.entropy,
        replication_seq.spawn_key[:-1],
    )
    cached = _USER_MESSAGES.get(key)
    if cached is None:
        rng = generator(run_level_sequence(replication_seq, SPLIT_PURPOSE))
        cached = split_labelled(load_source(cfg.messages), rng)
        _USER_MESSAGES[key] = cached
        if len(_USER_MESSAGES) > 2:
            _USER_MESSAGES.popitem(last=False)
    return cached


def fitted_classifier(cfg: InboundConfig, replication_seq: np.random.SeedSequence) -> Classifier:
    """The run's classifier: built, fitted once on the run-level training corpus (or the training share of
    the user's messages), then reused."""
    key = (
        cfg.classifier,
        json.dumps(cfg.classifier_params, sort_keys=True, default=str),
        cfg.training_messages,
        cfg.mentions.model_dump_json(),
        None if cfg.messages is None else (cfg.messages.model_dump_json(), Path(cfg.messages.path).stat().st_mtime_ns),
        replication_seq.entropy,
        replication_seq.spawn_key[:-1],
    )
    cached = _CLASSIFIERS.get(key)
    if cached is not None:
        _CLASSIFIERS.move_to_end(key)
        return cached
    classifier = build_classifier(cfg.classifier, cfg.classifier_params)
    user = user_messages(cfg, replication_seq)
    if isinstance(classifier, TrainableClassifier) and user is not None:
        train = user[0]
        classifier.fit(train.text, train.relevant, train.intent)
    elif isinstance(classifier, TrainableClassifier) and cfg.training_messages > 0:
        rng = generator(run_level_sequence(replication_seq, TRAINING_PURPOSE))
        corpus = training_corpus(cfg.mentions, cfg.training_messages, rng, needle_share=0.5)
        classifier.fit(corpus.text, corpus.relevant, corpus.intent)
    _CLASSIFIERS[key] = classifier
    if len(_CLASSIFIERS) > _CACHE_SIZE:
        _CLASSIFIERS.popitem(last=False)
    return classifier


def _inbound_sequence(replication_seq: np.random.SeedSequence, part: int) -> np.random.SeedSequence:
    parent = component_sequence(replication_seq, Component.INBOUND)
    return np.random.SeedSequence(parent.entropy, spawn_key=(*parent.spawn_key, part))


@dataclass
class InboundWorld:
    """What the arms of one replication share on the inbound side."""

    mentions: Mentions
    classifier: Classifier
    labels: Labels  # the classifier's labels of the organic stream, computed once for every arm's desk
    content: LabelledMessages | None = None  # the stream share of a user's messages (texts of the stream)


def build_inbound_world(
    scenario: Scenario, population: Population, replication_seq: np.random.SeedSequence
) -> InboundWorld:
    cfg = scenario.inbound
    assert cfg is not None
    rng = generator(_inbound_sequence(replication_seq, _MENTIONS))
    user = user_messages(cfg, replication_seq)
    content = None if user is None else user[1]
    mentions = generate_mentions(
        cfg.mentions,
        scenario.horizon_days * DAY_S,
        rng,
        customers=CustomerVoices.from_population(population),
        reference_utc_offset_hours=scenario.reference_utc_offset_hours,
        content=content,
    )
    classifier = fitted_classifier(cfg, replication_seq)
    labels = classifier.classify(mentions.text)
    return InboundWorld(mentions=mentions, classifier=classifier, labels=labels, content=content)


def outcome_model(cfg: InboundConfig) -> OutcomeModel:
    o = cfg.outcomes
    return OutcomeModel(
        satisfaction_max=o.satisfaction_max,
        satisfaction_half_life_s=o.satisfaction_half_life_minutes * 60.0,
        conversion_max=o.conversion_max,
        conversion_half_life_s=o.conversion_half_life_minutes * 60.0,
        churn_after_unanswered_complaint=o.churn_after_unanswered_complaint,
        declare_share=o.declare_share,
    )


def _handle_times(pool: PoolConfig) -> HandleTime | dict[str, HandleTime]:
    """The pool's lognormal handle time, or one per intent where the scenario gives intent medians."""
    default = LognormalHandleTime(pool.handle_time_median_minutes * 60.0, pool.handle_time_sigma)
    if not pool.handle_time_median_minutes_by_intent:
        return default
    by_intent: dict[str, HandleTime] = {"default": default}
    for intent, minutes in pool.handle_time_median_minutes_by_intent.items():
        by_intent[intent] = LognormalHandleTime(minutes * 60.0, pool.handle_time_sigma)
    return by_intent


def build_desk(
    env: simpy.Environment, scenario: Scenario, classifier: Classifier, replication_seq: np.random.SeedSequence
) -> InboundDesk:
    """The desk of one arm (its draws start from the same stream in every arm: common random numbers)."""
    cfg = scenario.inbound
    assert cfg is not None
    core = cfg.core
    pools = [
        PoolSpec(
            pool.name,
            pool.agents,
            _handle_times(pool),
            kind=pool.kind,
            languages=pool.languages,
            discipline=pool.discipline,
        )
        for pool in cfg.pools
    ]
    policy = build_response_policy(cfg.response_policy, cfg.response_params)
    if hasattr(policy, "reference_utc_offset_hours"):  # business hours are read on the scenario's clock
        policy.reference_utc_offset_hours = scenario.reference_utc_offset_hours
    return InboundDesk(
        env,
        classifier,
        CoreServer(core.batch_size, core.replicas, core.a_s, core.b_s, core.max_wait_s),
        policy,
        pools,
        generator(_inbound_sequence(replication_seq, _DESK)),
        scenario.horizon_days * DAY_S,
        patience_median_s=scenario.population.patience_median_minutes * 60.0,
        patience_sigma=cfg.patience_sigma,
        sla_minutes=cfg.sla_minutes,
        outcomes=outcome_model(cfg),
    )


class DeclaredTable:
    """Declared taste of one arm, growing as conversations capture it (rows are only ever appended)."""

    def __init__(self, n: int, dims: int, row: np.ndarray | None, taste: np.ndarray | None) -> None:
        self.row = np.full(n, -1, np.int32) if row is None else row.copy()
        start = 0 if taste is None else taste.shape[0]
        self._buf = np.empty((max(1024, 2 * start), dims), np.float32)
        if taste is not None:
            self._buf[:start] = taste
        self.count = start

    @property
    def taste(self) -> np.ndarray:
        return self._buf[: self.count]

    def add(self, customers: np.ndarray, taste: np.ndarray) -> None:
        need = self.count + customers.shape[0]
        if need > self._buf.shape[0]:
            grown = np.empty((max(need, 2 * self._buf.shape[0]), self._buf.shape[1]), np.float32)
            grown[: self.count] = self._buf[: self.count]
            self._buf = grown
        self._buf[self.count : need] = taste
        self.row[customers] = np.arange(self.count, need, dtype=np.int32)
        self.count = need


def credit_conversation_purchases(
    state: CustomerState, draws: ChunkDraws, customers: np.ndarray, from_reply: np.ndarray, pull_forward_share: float
) -> None:
    """Count conversation purchases on the customers' state. Every purchase draws a pull-forward coin from
    its chunk's stream (in the order given); a purchase a reply started uses up a later occasion when the
    coin says so. ``customers`` index ``state`` (a shard's own rows on a shard)."""
    increment(state.purchases, customers)
    coin = draws.random(customers, Draw.CONVERSATION_PULL_FORWARD)
    pulled = from_reply & (coin < pull_forward_share)
    room = pulled & (state.pull_forward_credit[customers] < 255)
    increment(state.pull_forward_credit, customers[room])


class ConversationLoop:
    """One arm's inbound desk and what its conversations do to the arm's customers (module docstring)."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        world: InboundWorld,
        population: Population,
        contactable: np.ndarray,
        state: CustomerState,
        recorder: Recorder,
        view: CustomerView,
        declared: DeclaredTable,
        replication_seq: np.random.SeedSequence,
        draws: ChunkDraws,
    ) -> None:
        cfg = scenario.inbound
        assert cfg is not None
        self.cfg = cfg
        self.scenario = scenario
        self.population = population
        self.contactable = contactable
        self.state = state
        self.recorder = recorder
        self.view = view
        self.draws = draws  # the arm's per-chunk response streams (pull-forward coins)
        self.horizon_s = scenario.horizon_days * DAY_S
        self.desk = build_desk(env, scenario, world.classifier, replication_seq)
        self.desk.register(world.mentions, labels=world.labels)
        self.content = world.content
        self.reply_rng = generator(_inbound_sequence(replication_seq, _REPLIES))
        self.declared_rng = generator(component_sequence(replication_seq, Component.DECLARED, 1))
        self.declared = declared
        self.declared_at_start = int(np.count_nonzero(declared.row >= 0))
        # 0: stays; 1: churned after a conversation a reply started; 2: after an organic one (2 wins: a
        # customer who would also have left without marketing is gone in the counterfactual too).
        self.churn = np.zeros(population.n, np.uint8)
        self.churn_at = np.full(population.n, np.inf)  # when the customer left
        self.blocked_conversions = 0  # conversions of customers who had already left (not purchases)
        self.blocked_from_replies = 0

    # -- outbound -> inbound ---------------------------------------------------------------------------
    def on_replies(self, customer: np.ndarray, channel: np.ndarray, time_s: np.ndarray) -> None:
        if not self.cfg.replies.enabled:
            return
        keep = time_s < self.horizon_s
        order = np.argsort(time_s[keep], kind="stable")
        t, c, ch = time_s[keep][order], customer[keep][order], channel[keep][order]
        if t.shape[0] == 0:
            return
        replies = self.cfg.replies
        messages = reply_messages(
            self.cfg.mentions,
            t.astype(np.float64),
            c.astype(np.int64),
            _SOURCE_OF_CHANNEL[ch],
            self.reply_rng,
            needle_share=replies.needle_share,
            intent_shares=replies.intent_shares,
            content=self.content,
        )
        self.desk.register(messages, from_reply=True)

    # -- inbound -> outbound ---------------------------------------------------------------------------
    def apply(self, until_s: float) -> dict[str, np.ndarray] | None:
        """Act on the conversations settled by ``until_s``; returns our customers' conversion purchases
        (as purchase feedback events for the policy) or None."""
        out = self.desk.drain(until_s)
        if out is None:
            return None
        cols = self.desk.cols
        author = cols.author[out.message]
        when = cols.settled_at[out.message]
        self._declare(author[out.declared])
        self._churn(author[out.churned], cols.from_reply[out.message][out.churned], when[out.churned])
        return self._convert(out, author, when, cols.from_reply[out.message])

    def _publish_declared(self) -> None:
        self.view.declared_row = self.declared.row
        self.view.declared_taste = self.declared.taste
        self.view.declared_version += 1

    def _declare(self, customers: np.ndarray) -> None:
        new = np.unique(customers[self.declared.row[customers] < 0])
        if new.shape[0] == 0:
            return
        sd = np.float32(self.scenario.population.declared_taste_noise_sd)
        noise = self.declared_rng.standard_normal((new.shape[0], self.declared.taste.shape[1])).astype(np.float32)
        self.declared.add(new, self.population.taste[new] + sd * noise)
        self._publish_declared()

    def _churn(self, customers: np.ndarray, from_reply: np.ndarray, when: np.ndarray) -> None:
        """Customers leave (in settlement order; the first churn sets the time). An organic churn after a
        reply-started one changes the cause: that customer leaves in the counterfactual as well."""
        if customers.shape[0] == 0:
            return
        organic = ~from_reply
        self.churn[customers[organic & (self.churn[customers] == 1)]] = 2
        _, first = np.unique(customers, return_index=True)
        first = np.sort(first)
        fresh = first[self.churn[customers[first]] == 0]
        who = customers[fresh]
        self.churn[who] = np.where(from_reply[fresh], 1, 2).astype(np.uint8)
        # A later organic churn of the same customer within this batch also makes the cause organic.
        self.churn[np.intersect1d(who, customers[organic])] = 2
        self.churn_at[who] = when[fresh]
        self._leave(who)

    def _leave(self, who: np.ndarray) -> None:
        """Customers who left take every opt-in along (a sharded coordinator tells their shards instead)."""
        self.state.optin[who] = 0

    def _convert(
        self, out: Outcomes, author: np.ndarray, when: np.ndarray, from_reply: np.ndarray
    ) -> dict[str, np.ndarray] | None:
        won = out.converted & (author >= 0)
        rec = self.recorder
        gone = won & (self.churn_at[np.maximum(author, 0)] <= when)
        if gone.any():  # a customer who has left buys nothing of ours, in a conversation either
            self.blocked_conversions += int(gone.sum())
            self.blocked_from_replies += int(np.count_nonzero(gone & from_reply))
            rec.add("purchases_lost_to_churn", float(gone.sum()))
            # An organic conversion lost to a churn that marketing caused is a (negative) lift.
            lost_lift = gone & ~from_reply & (self.churn[np.maximum(author, 0)] == 1)
            if lost_lift.any():
                rec.add_events("incremental_purchases_true", when[lost_lift], -np.ones(int(lost_lift.sum())))
            won &= ~gone
        if not won.any():
            return None
        c, t, reply = author[won], when[won], from_reply[won]
        treated = self.contactable[c]
        rec.add_events("purchases_treated", t[treated])
        rec.add_events("purchases_holdout", t[~treated])
        rec.add("conversation_purchases", float(c.shape[0]))
        # A conversation that a reply to our message started is caused by marketing: like a click-triggered
        # purchase, it is incremental and may use up a later occasion (pull-forward).
        rec.add_events("incremental_purchases_true", t[reply])
        self._credit_purchases(c, reply)
        bought = treated
        return {
            "customer": c[bought].astype(np.int64),
            "creative": np.full(int(bought.sum()), -1, np.int32),
            "channel": np.full(int(bought.sum()), -1, np.int8),
            "time_s": t[bought],
        }

    def _credit_purchases(self, customers: np.ndarray, from_reply: np.ndarray) -> None:
        """Conversation purchases (in settlement order) counted on the customers; a purchase a reply started
        may use up a later occasion. A sharded coordinator hands them to the shards instead."""
        credit_conversation_purchases(
            self.state, self.draws, customers, from_reply, self.scenario.response.pull_forward_share
        )

    def churn_filter(self, customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For purchase occasions of ``customers``: (gone: churned, so no purchase of ours; gone without
        marketing: churned after an organic conversation, so no purchase in the counterfactual either)."""
        kind = self.churn[customers]
        return kind > 0, kind == 2

    # -- at the horizon --------------------------------------------------------------------------------
    def finish(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """The arm's inbound metric totals (with costs; see masssim.model.metrics) and its figures per pool."""
        summary = self.desk.result().summary
        pools = self._pools(summary)
        return self._totals(summary, pools), pools

    def _pools(self, summary: dict[str, float]) -> dict[str, dict[str, float]]:
        figures = {}
        for pool in self.cfg.pools:
            n = pool.name
            hours = summary.get(f"agent_hours_{n}", 0.0)
            taken = summary.get(f"conversations_{n}", 0.0)
            figures[n] = {
                "utilisation": summary.get(f"utilisation_{n}", math.nan),
                "agent_hours": hours,
                "conversations": taken,
                "false_alarm_conversations": summary.get(f"false_alarm_conversations_{n}", 0.0),
                "cost": hours * pool.cost_per_agent_hour + taken * pool.cost_per_conversation,
            }
        return figures

    def _totals(self, summary: dict[str, float], pools: dict[str, dict[str, float]]) -> dict[str, float]:
        totals = inbound_metrics(summary)
        # The desk counts every conversion its conversations won; customers who had left bought nothing.
        totals["conversation_conversions"] -= self.blocked_conversions
        totals["conversions_from_replies"] -= self.blocked_from_replies
        cost = sum(figures["cost"] for figures in pools.values())
        cost += summary.get("classified", 0.0) / 1000.0 * self.cfg.core.cost_per_1000
        agent_hours = sum(pools[pool.name]["agent_hours"] for pool in self.cfg.pools if pool.kind == "human")
        # False alarms take agents' time (priced at the agent-hour cost: a busy agent is not answering a
        # needle) and per-conversation charges.
        totals["false_alarm_cost"] = sum(
            summary.get(f"false_alarm_busy_hours_{pool.name}", 0.0) * pool.cost_per_agent_hour
            + pools[pool.name]["false_alarm_conversations"] * pool.cost_per_conversation
            for pool in self.cfg.pools
        )
        totals["cost_inbound"] = cost
        totals["agent_hours"] = agent_hours
        with_taste = int(np.count_nonzero(self.declared.row >= 0))
        totals["customers_with_declared_taste"] = float(with_taste)
        totals["declarations_captured"] = float(with_taste - self.declared_at_start)  # new customers only
        return totals
