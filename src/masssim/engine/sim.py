"""Assembly of one replication: a shared world, then each arm simulated on it with SimPy.

Per arm, two SimPy processes share the clock:

* the **wave process** wakes at each wave, asks the policy for a plan and sends it (all outcomes of the
  wave are drawn at once, as arrays, and put in flight with their times);
* the **bucket process** wakes every ``feedback_bucket_minutes``: it first lets the bucket's organic
  purchase occasions choose a brand (with the adstock as it stood), then releases the outcomes whose time
  has come into state, metrics and the policy's ``observe``.

Occasions are processed before the same bucket's clicks, so a purchase never benefits from a click that
happens after it (outcomes can lag by up to one bucket, never lead).

When the scenario has an ``[inbound]`` table, each arm also runs find -> classify -> respond on the same
clock (:mod:`masssim.engine.conversation_loop`): the replication's organic mentions (shared by the arms) and
the replies the arm's own messages provoke go through the classification core and the responders, and the
conversations settled in each bucket act on the customers at the end of it (declared taste, churn,
purchases). Without the table nothing is drawn and the inbound metrics stay 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy
from scipy import stats as scipy_stats
from threadpoolctl import threadpool_limits

from masssim.config.schema import CHANNEL_NAMES, Arm, Scenario
from masssim.engine import kernels, release_kernels
from masssim.engine.absent_columns import AbsentColumn
from masssim.engine.chunks import CUSTOMER_CHUNK, ChunkDraws, ChunkLayout, Draw, chunk_generators, sort_by_chunk
from masssim.engine.conversation_loop import ConversationLoop, DeclaredTable, InboundWorld, build_inbound_world
from masssim.engine.events import PendingEvents, concatenate
from masssim.engine.organic import Occasions, OccasionStream
from masssim.engine.outbound import Fanatics, OutboundSender, find_fanatics
from masssim.engine.outcome import ArmOutcome
from masssim.engine.state import CustomerState, Recorder, increment
from masssim.estimation.histograms import bincount_in_blocks
from masssim.estimation.holdout import bootstrap_t_interval, buyers, purchase_histogram
from masssim.model.channels import DAY_S, HOUR_S
from masssim.model.creatives import make_catalogue
from masssim.model.market import MarketTally, market_window_days
from masssim.model.metrics import channel_metric, derive
from masssim.model.population import Population, generate_population
from masssim.model.streams import Component, chunk_sequence, component_sequence, generator
from masssim.policies.base import (
    ARM_CHANNELS,
    FEEDBACK_KINDS,
    Catalogue,
    CustomerView,
    Feedback,
    PolicyWorld,
    WaveContext,
    declared_view_columns,
)
from masssim.policies.registry import params_model, resolve_targeting


@dataclass
class SharedWorld:
    """What the arms of one replication share: the customers, who is held out, the creatives."""

    population: Population
    contactable: np.ndarray  # bool: outside the holdout
    catalogue: Catalogue
    replication_seq: np.random.SeedSequence
    declared_row: np.ndarray | None  # int32 [N]: row in declared_taste, -1 if not declared; None if nobody
    declared_taste: np.ndarray | None  # float32 [M, d]
    fanatics: Fanatics | None = None  # diagnostics: the treated customers with the strongest taste
    inbound: InboundWorld | None = None  # the organic mention stream and the classifier, with [inbound]
    layout: ChunkLayout | None = None  # the customer chunks of the per-chunk streams (set by build_world)
    chunks: range | None = None  # the chunks whose customers this world holds (a shard's); None: all


def build_world(
    scenario: Scenario, replication_seq: np.random.SeedSequence, *, chunk_size: int = CUSTOMER_CHUNK
) -> SharedWorld:
    """The shared world. ``chunk_size`` is the size of the customer chunks whose streams every per-customer
    draw comes from (a fixed constant in runs; tests use small chunks to have several of them)."""
    population = generate_population(
        scenario.population,
        scenario.market,
        scenario.channels.by_name(),
        component_sequence(replication_seq, Component.POPULATION),
        conversation_attributes=scenario.inbound is not None,  # only conversations read voice and patience
    )
    layout = ChunkLayout(population.n, chunk_size)
    contactable = np.empty(population.n, bool)
    for lo, hi, rng in chunk_generators(component_sequence(replication_seq, Component.HOLDOUT), layout):
        contactable[lo:hi] = rng.random(hi - lo) >= scenario.holdout.share
    catalogue = make_catalogue(
        scenario.creatives,
        scenario.population.taste_dims,
        generator(component_sequence(replication_seq, Component.CREATIVES)),
    )
    declared_row, declared_taste = _initial_declarations(scenario, population, layout, replication_seq)
    fanatics = find_fanatics(population, contactable, catalogue, scenario.diagnostics.fanatic_top_share)
    inbound = build_inbound_world(scenario, population, replication_seq) if scenario.inbound is not None else None
    return SharedWorld(
        population, contactable, catalogue, replication_seq, declared_row, declared_taste, fanatics, inbound, layout
    )


# Sub-key of Component.DECLARED under which the starting declarations' chunk streams live ((r, 1007, 1) is
# the taste captured in conversations).
_DECLARED_AT_START = 0


def _initial_declarations(
    scenario: Scenario, population: Population, layout: ChunkLayout, replication_seq: np.random.SeedSequence
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Customers who declared their taste before the run: theta + N(0, sigma_decl^2) per topic. Each chunk
    draws who declared and their noise from its own stream; rows are numbered in customer order."""
    cfg = scenario.population
    if cfg.declared_taste_share == 0:
        return None, None
    parent = chunk_sequence(component_sequence(replication_seq, Component.DECLARED), _DECLARED_AT_START)
    whos: list[np.ndarray] = []
    noises: list[np.ndarray] = []
    d = population.taste.shape[1]
    for lo, hi, rng in chunk_generators(parent, layout):
        who = lo + np.flatnonzero(rng.random(hi - lo) < cfg.declared_taste_share)
        whos.append(who)
        noises.append(rng.standard_normal((who.shape[0], d)).astype(np.float32))
    who = np.concatenate(whos)
    row = np.full(population.n, -1, np.int32)
    row[who] = np.arange(who.shape[0], dtype=np.int32)
    noise = np.concatenate(noises) if noises else np.empty((0, d), np.float32)
    return row, population.taste[who] + np.float32(cfg.declared_taste_noise_sd) * noise


def wave_days(scenario: Scenario) -> list[int]:
    schedule = scenario.schedule
    days = []
    day = schedule.first_wave_day
    while day < scenario.horizon_days:
        days.append(day)
        day += schedule.wave_every_days
    return days


@dataclass
class ArmShard:
    """An arm's share of the customers of a run of chunks (lo..hi-1): their outcomes in flight and their
    organic occasions. The customers' state arrays are the arm's (one process); what belongs to a shard is
    what it alone processes, in its own order (docs/model.md §16)."""

    chunks: range
    lo: int
    hi: int
    pending: PendingEvents
    occasions: OccasionStream


class ShardingUnsupported(ValueError):
    """The scenario uses a part of the model that cannot run in several shards yet."""


class ArmSimulation:
    def __init__(
        self,
        scenario: Scenario,
        world: SharedWorld,
        arm_index: int,
        *,
        shards: int = 1,
        with_policy: bool = True,
        tally_market: bool = False,
    ) -> None:
        """``shards``: how many runs of chunks the customers are split into (the same results for any
        number; more than one in one process serves to prove it, docs/model.md §16.4). ``with_policy``:
        False for a worker's shard of a sharded run, whose policy lives on the coordinator
        (:mod:`masssim.engine.sharded`); the shard only sends what it is handed and releases outcomes.
        ``tally_market``: count every brand's buying in the world without marketing (the first arm)."""
        self.scenario = scenario
        self.world = world
        self.arm = scenario.arms[arm_index]
        self.arm_index = arm_index
        pop = world.population
        assert world.layout is not None
        self.layout = layout = world.layout
        if shards > 1 and world.inbound is not None:
            raise ShardingUnsupported("a scenario with [inbound] cannot run in several shards yet")
        self.horizon_s = scenario.horizon_days * DAY_S
        response = scenario.response
        self.state = CustomerState(
            pop.n,
            pop.optin,
            response.fatigue_time_constant_days * DAY_S,
            response.adstock_half_life_days * DAY_S,
            world.catalogue.count,
        )
        self.recorder = Recorder(self.horizon_s)
        seq = world.replication_seq
        self.draws = ChunkDraws(component_sequence(seq, Component.RESPONSES, arm_index), layout)
        occasion_seq = component_sequence(seq, Component.OCCASIONS)
        self.shards: list[ArmShard] = []
        held = range(layout.count) if world.chunks is None else world.chunks
        for part in range(shards):
            chunks = held[part * len(held) // shards : (part + 1) * len(held) // shards]
            if len(chunks) == 0:
                continue
            lo, hi = layout.bounds(chunks.start)[0], layout.bounds(chunks.stop - 1)[1]
            self.shards.append(
                ArmShard(
                    chunks,
                    lo,
                    hi,
                    PendingEvents(scenario.feedback_bucket_minutes * 60.0),
                    OccasionStream(pop, self.horizon_s, occasion_seq, layout, chunks),
                )
            )
        self.market_tally = (
            MarketTally(pop.n, pop.brand_prob.shape[1], market_window_days(scenario) * DAY_S) if tally_market else None
        )
        # Every brand's buying under this arm's marketing (model/market.py): every arm has one.
        self.arm_market_tally = MarketTally(pop.n, pop.brand_prob.shape[1], market_window_days(scenario) * DAY_S)
        self.catalogue = world.catalogue.copy()  # generated creatives belong to this arm only
        self.channel_order = channel_order_of(scenario, self.arm)
        self.sender = OutboundSender(
            scenario,
            pop,
            world.contactable,
            self.catalogue,
            self.state,
            self.shards,
            self.recorder,
            self.draws,
            fanatics=world.fanatics,
            channel_order=self.channel_order,
        )
        # Per-channel names of the outcomes counted when released: figure -> one name per channel index.
        self.channel_names = {
            figure: [channel_metric(figure, name) for name in CHANNEL_NAMES]
            for figure in ("reads", "clicks", "unsubscribes", "replies")
        }
        self.window_s = scenario.attribution.window_days * DAY_S
        channels = scenario.channels.by_name()
        self.adstock_per_open = np.array([channels[c].adstock_per_open for c in CHANNEL_NAMES], np.float32)
        self.adstock_per_click = np.array([channels[c].adstock_per_click for c in CHANNEL_NAMES], np.float32)
        self.days = wave_days(scenario)

        factory = resolve_targeting(self.arm.policy)
        params = params_model(factory).model_validate(self.arm.params)
        reads_latent = bool(getattr(factory, "reads_latent_taste", False))
        # With inbound, conversations add to the declared taste: the arm gets its own growing copy.
        self.declared: DeclaredTable | None = None
        declared_row, declared_taste = world.declared_row, world.declared_taste
        if world.inbound is not None:
            self.declared = DeclaredTable(pop.n, pop.taste.shape[1], declared_row, declared_taste)
            declared_row, declared_taste = self.declared.row, self.declared.taste
        self.view = view = CustomerView(
            n=pop.n,
            region=pop.region,
            age_band=pop.age_band,
            income_band=pop.income_band,
            observables=pop.observables,
            contactable=world.contactable,
            optin=self.state.optin,
            sends=self.state.sends,
            opens=self.state.opens,
            clicks=self.state.clicks,
            latent_taste=pop.taste if reads_latent else None,
            continuous_observables=int(pop.crm_scores.shape[1]) if pop.crm_scores.ndim == 2 else 0,
            declared_row=declared_row,
            declared_taste=declared_taste,
            channel_order=self.channel_order,
        )
        # Each customer's count of recorded opens is only read through the view's history column: a policy
        # that names its columns without "history" never reads it, so the opens (most of a bucket's events)
        # are then only counted per day, not per customer, and reading view.opens raises one line.
        named = declared_view_columns(factory, params)
        self.counts_opens = named is None or "history" in named
        if not self.counts_opens:
            view.opens = AbsentColumn(arm_index, self.arm.policy, self.arm.name, "opens", "history", sharded=False)  # type: ignore[assignment]
        declared = getattr(factory, "feedback_kinds", None)
        self.feedback_kinds = FEEDBACK_KINDS if declared is None else FEEDBACK_KINDS & frozenset(declared)
        self.sender.report_deliveries = "delivered" in self.feedback_kinds
        self.sender.report_open_creatives = "open" in self.feedback_kinds
        self.sender.keep_open_customers = self.counts_opens
        self.loop: ConversationLoop | None = None  # built by run() when the scenario has [inbound]
        if not with_policy:
            return
        self.policy = factory(
            params,
            PolicyWorld(
                customers=view,
                # Creative quality is the engine's truth; only a latent-reading policy (the oracle) sees it.
                catalogue=self.catalogue.view(reveal_quality=reads_latent),
                channel_names=CHANNEL_NAMES,
                # With a channel order the policy's default channel is the order itself (the engine picks).
                default_channel=default_channel_of(scenario, self.channel_order),
                waves_planned=len(self.days),
                horizon_s=self.horizon_s,
                rng=generator(component_sequence(seq, Component.POLICY, arm_index)),
                budget_total=scenario.budget_total,
                affinity_click_beta=scenario.response.affinity_click_beta if reads_latent else None,
            ),
        )

    # ----------------------------------------------------------------------------------------------
    def run(self, progress: Callable[[float], None] | None = None) -> ArmOutcome:
        n_treated = int(self.world.contactable.sum())
        self.recorder.add("customers_treated", n_treated)
        self.recorder.add("customers_holdout", self.world.population.n - n_treated)
        env = simpy.Environment()
        if self.world.inbound is not None:
            assert self.declared is not None
            self.loop = ConversationLoop(
                env,
                self.scenario,
                self.world.inbound,
                self.world.population,
                self.world.contactable,
                self.state,
                self.recorder,
                self.view,
                self.declared,
                self.world.replication_seq,
                self.draws,
            )
            self.sender.reply_sink = self.loop.on_replies
            # Replies are registered only when a wave is sent: until the first wave the stream is known.
            self.loop.desk.quiet_until(self._wave_event_time(self.days[0]) if self.days else math.inf)
        buckets = env.process(self._buckets(env, progress))
        env.process(self._waves(env))
        # Run until the last bucket (the one ending at the horizon) is processed; run(until=horizon) would
        # stop just before the events at that instant.
        env.run(until=buckets)
        self._reach_metrics()
        pools: dict[str, dict[str, float]] = {}
        if self.loop is not None:
            totals, pools = self.loop.finish()
            for name, value in totals.items():
                self.recorder.add(name, value)
        market = self.scenario.market
        histograms, holdout_interval = self._holdout_interval()
        metrics = derive(
            self.recorder.totals,
            price=market.price,
            margin_share=market.gross_margin_share,
            purchase_squares=self._purchase_squares(),
            holdout_interval=holdout_interval,
        )
        counts = self.market_tally.finish() if self.market_tally is not None else None
        return ArmOutcome(
            metrics=metrics,
            series=self.recorder.series,
            pools=pools,
            market=counts,
            purchase_histograms=histograms,
            arm_market=self.arm_market_tally.finish(),
        )

    def _reach_metrics(self) -> None:
        """Who was contacted: distinct customers, and sends to light and non-buyers of our brand (p_i0 below
        the median of its Beta(S s_0, S (1 - s_0)) marginal, an exact population figure)."""
        sends = self.state.sends
        self.recorder.add("customers_reached", int(np.count_nonzero(sends)))
        market = self.scenario.market
        alpha = market.dirichlet_s * market.brands[0].market_share
        median = float(scipy_stats.beta(alpha, market.dirichlet_s - alpha).median())
        light = self.world.population.brand_prob[:, 0] < median
        self.recorder.add("sends_to_light_buyers", float(sends[light].sum(dtype=np.int64)))

    def _purchase_squares(self) -> tuple[float, float]:
        """Sums of squared per-customer purchase counts, treated and holdout (for the estimator's SE), from
        the histograms: sum_k k^2 h_k in integers, exact, with no per-customer temporary (a float64 copy of
        the counts was the run's peak memory at 10 million customers)."""
        everyone, holdout = self.purchase_histograms()
        treated = everyone.copy()
        treated[: holdout.shape[0]] -= holdout
        squares = np.arange(everyone.shape[0], dtype=np.int64) ** 2
        return float(treated @ squares), float(holdout @ squares[: holdout.shape[0]])

    def _holdout_interval(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[float, float]]:
        """The histograms of purchases per customer in the treated and holdout groups, and the bootstrap-t
        interval of the holdout estimate from them (masssim.estimation.holdout); counts the holdout's buyers."""
        everyone, holdout = self.purchase_histograms()
        return holdout_interval(everyone, holdout, self.world.replication_seq, self.arm_index, self.recorder)

    def purchase_histograms(self) -> tuple[np.ndarray, np.ndarray]:
        """Customers by number of purchases of our brand: everyone, and the holdout (additive over shards)."""
        counts = self.state.purchases
        return purchase_histogram(counts), bincount_in_blocks(counts, minlength=1, leave_out=self.world.contactable)

    def _wave_event_time(self, day: int) -> float:
        return wave_event_time(self.scenario, day, self.sender.region_rel_s)

    def _waves(self, env: simpy.Environment):  # type: ignore[no-untyped-def]
        for index, day in enumerate(self.days):
            t_event = max(self._wave_event_time(day), env.now)
            yield env.timeout(t_event - env.now)
            # Let a bucket boundary at this same instant be processed first, so the policy plans with
            # every outcome known by now (SimPy runs same-time events in scheduling order).
            yield env.timeout(0)
            self.state.start_week(int(env.now // (7 * DAY_S)))
            budget_left = self.sender.channels.budget_left
            plan = self.policy.plan(WaveContext(time_s=env.now, wave_index=index, budget_left=budget_left))
            self.sender.send(plan, env.now, day * DAY_S)
            # Let the plan go before the next wave: held until the next plan() returned, its arrays kept
            # that plan from reusing their space, and the heap grew by a plan at each of the first waves.
            del plan
            if self.loop is not None:  # nothing more is registered before the next wave
                following = self.days[index + 1] if index + 1 < len(self.days) else None
                self.loop.desk.quiet_until(math.inf if following is None else self._wave_event_time(following))

    def _buckets(self, env: simpy.Environment, progress: Callable[[float], None] | None):  # type: ignore[no-untyped-def]
        step = self.scenario.feedback_bucket_minutes * 60.0
        t0 = 0.0
        while t0 < self.horizon_s:
            t1 = min(t0 + step, self.horizon_s)
            yield env.timeout(t1 - env.now)
            self.state.rebase(t0)
            parts = [self._shard_bucket(shard, t0, t1) for shard in self.shards]
            merged = _merge_in_chunk_order(parts)
            if merged:
                self.policy.observe(Feedback(time_s=t1, events=merged))
            if self.loop is not None:
                won = self.loop.apply(t1)
                if won is not None and "purchase" in self.feedback_kinds:
                    self.policy.observe(Feedback(time_s=t1, events={"purchase": won}))
            if progress is not None:
                progress(t1 / self.horizon_s)
            t0 = t1

    # ----------------------------------------------------------------------------------------------
    def _shard_bucket(self, shard: ArmShard, t0: float, t1: float) -> dict[str, dict[str, np.ndarray]]:
        """One shard's bucket: its organic occasions choose a brand, then its outcomes in (t0, t1] are
        released. Returns the shard's feedback events, each kind ordered by chunk."""
        organic = self._purchases(shard.occasions.take(t0, t1), t0)
        events = self._release(shard, t0, t1, organic)
        for kind, e in events.items():
            order = sort_by_chunk(self.layout, e["customer"])
            if order is not None:
                events[kind] = {name: values[order] for name, values in e.items()}
        return events

    def _release(
        self, shard: ArmShard, t0: float, t1: float, organic: dict[str, np.ndarray] | None
    ) -> dict[str, dict[str, np.ndarray]]:
        """Outcomes with time in (t0, t1] become known to the customers' state and the metrics; returns those
        the policy learns from."""
        # Every kind's pieces (one per batch in flight: hundreds a bucket at 95 million customers) are joined
        # in release order first, so that each kind costs one round of calls, not one a piece: the same
        # amounts added in the same order. Until session 15 reads and opens went piece by piece, to copy
        # nothing; the round of calls per piece, holding the interpreter's lock, cost more than the copy.
        # Recorded opens (most of a bucket's events) change only each customer's count unless the policy
        # learns from them: then only their customers are joined (a join holds the lock while it copies).
        pieces = shard.pending.release_pieces(t1)
        opens_counted_only = "open" not in self.feedback_kinds
        events = {
            kind: concatenate(parts) for kind, parts in pieces.items() if not (kind == "open" and opens_counted_only)
        }
        rec, state = self.recorder, self.state
        day = int(t0 // DAY_S)  # a bucket never spans midnight (its length divides a day)
        feedback = Feedback(time_s=t1)

        def count(metric: str, kind: str) -> None:
            channel = events[kind]["channel"]
            rec.add_in_day(metric, day, channel.shape[0])
            # Per channel too (a handful of channels, one compiled pass, which unlike numpy's bincount lets the
            # other shards' threads run).
            names = self.channel_names[metric]
            for c, n in enumerate(kernels.counts(channel, len(names)).tolist()):
                if n:
                    rec.add_in_day(names[c], day, n)

        if "read" in events:
            count("reads", "read")
            e = events["read"]
            release_kernels.add_to_stock(
                state.adstock.stored,
                e["customer"],
                state.adstock.growth(e["time_s"]),
                self.adstock_per_open,
                e["channel"],
            )
        counted = shard.pending.release_counts(t1)  # pre-fetch opens nobody reads by customer
        if "open" in pieces or "open" in counted:
            n_opened = counted.get("open", 0)
            if self.counts_opens:
                if "open" in events:
                    opened = events["open"]["customer"]
                else:
                    opened = np.concatenate([p["customer"] for p in pieces["open"]])
                increment(state.opens, opened)
                n_opened += opened.shape[0]
            else:  # nobody reads each customer's count: the day's count is all there is to add
                n_opened += sum(p["customer"].shape[0] for p in pieces.get("open", ()))
            rec.add_in_day("opens_recorded", day, n_opened)
        if "click" in events:
            e = events["click"]
            count("clicks", "click")
            state.hold_creatives(self.catalogue.count)  # the policy may have generated creatives since
            # One pass: adstock, click counts, last click's time and creative (engine/release_kernels.py).
            release_kernels.release_clicks(
                state.adstock.stored,
                state.clicks,
                state.last_click_t,
                state.last_click_creative,
                e["customer"],
                e["creative"],
                e["time_s"],
                state.adstock.growth(e["time_s"]),
                self.adstock_per_click,
                e["channel"],
            )
            direct = self._direct_purchases(e)
            if "purchase" in self.feedback_kinds:
                feedback.events["purchase"] = direct
        if "unsubscribe" in events:
            e = events["unsubscribe"]
            count("unsubscribes", "unsubscribe")
            for c in np.unique(e["channel"]).tolist():
                who = e["customer"][e["channel"] == c]
                state.optin[who] &= np.uint8(~(1 << c) & 0xFF)
        if "reply" in events:
            count("replies", "reply")
        for kind in self.feedback_kinds - {"purchase"}:  # true reads are never in it
            if kind in events:
                feedback.events[kind] = events[kind]
        if organic is not None and "purchase" in self.feedback_kinds:
            feedback.events["purchase"] = _concat_events(feedback.events.get("purchase"), organic)
        return feedback.events

    def _purchases(self, occ: Occasions, t0: float) -> dict[str, np.ndarray] | None:
        """Brand choice at this bucket's organic occasions (the bucket starting at ``t0``), with the adstock each
        customer carries. Returns the treated customers' purchases of our brand, as feedback events for the
        policy."""
        if len(occ) == 0:
            return None
        state, rec, pop = self.state, self.recorder, self.world.population
        c, t, u = occ.customer, occ.time_s, occ.choice_uniform
        if self.market_tally is not None:
            # The market without marketing (MarketTally.add's counts) in one compiled pass.
            market = self.market_tally
            inside = market.inside(t)
            if inside:
                kernels.tally_brands(
                    c[:inside], pop.brand_prob, u[:inside], None, None, None, market.brands_bought, market.purchases
                )
        # -expm1(-adstock) with numpy's expm1 (its rounding is part of the results); the rest in one pass.
        lift_share, has_credit = release_kernels.adstock_now(
            state.adstock.stored, c, state.adstock.decay(t), state.pull_forward_credit
        )
        np.negative(np.expm1(lift_share, out=lift_share), out=lift_share)
        skipped = np.zeros(c.shape[0], bool)
        if has_credit.shape[0]:
            # A click-triggered purchase already used this customer's next occasion: skip one occasion.
            _, first = np.unique(c[has_credit], return_index=True)
            skipped[has_credit[first]] = True
            state.pull_forward_credit[c[skipped]] -= 1
        gone = gone_anyway = None
        if self.loop is not None:
            gone, gone_anyway = self.loop.churn_filter(c)
        day = release_kernels.day_of(t, int(t0 // DAY_S), rec.days - 1)
        counts = np.zeros((len(release_kernels.ORGANIC_METRICS), rec.days), np.int64)
        tally = self.arm_market_tally
        buyers, creative, lost = release_kernels.organic_choices(
            c,
            t,
            u,
            lift_share,
            day,
            pop.brand_prob,
            skipped,
            gone,
            gone_anyway,
            self.world.contactable,
            state.last_click_t,
            state.last_click_creative,
            self.window_s,
            state.purchases,
            tally.window_s,
            tally.brands_bought,
            tally.purchases,
            counts,
        )
        if self.loop is not None:
            rec.add("purchases_lost_to_churn", float(lost))
        for metric, per_day in zip(release_kernels.ORGANIC_METRICS, counts, strict=True):
            rec.add_day_totals(metric, per_day)
        return {
            "customer": c[buyers].astype(np.int64),
            "creative": creative,
            "channel": np.full(buyers.shape[0], -1, np.int8),
            "time_s": t[buyers],
        }

    def _tally_market(
        self,
        c: np.ndarray,
        t: np.ndarray,
        uniform: np.ndarray,
        p: np.ndarray,
        ours: np.ndarray,
        gone: np.ndarray | None,
    ) -> None:
        """Count the click-triggered purchase occasions in this arm's market (model/market.py): customers ``c``
        at times ``t``, their choice uniforms, our brand's probability with adstock ``p``, whether ours was
        bought, who has left. Brands are chosen only for the occasions inside the market's window (those
        counted). The organic occasions are counted in release_kernels.organic_choices' pass."""
        rows = np.flatnonzero(t <= self.arm_market_tally.window_s)
        if rows.shape[0] == 0:
            return
        # One compiled pass chooses each brand and counts it (MarketTally.add_brands of brand_with_marketing).
        tally = self.arm_market_tally
        kernels.tally_brands(
            c[rows],
            self.world.population.brand_prob,
            uniform[rows],
            p[rows],
            ours[rows],
            None if gone is None else gone[rows],
            tally.brands_bought,
            tally.purchases,
        )

    def _direct_purchases(self, clicks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A click may start an immediate purchase occasion, often one pulled forward from the future."""
        response = self.scenario.response
        state, rec, pop = self.state, self.recorder, self.world.population
        draws = self.draws
        starts = draws.random(clicks["customer"], Draw.DIRECT_START) < response.direct_purchase_per_click
        c, t = clicks["customer"][starts], clicks["time_s"][starts]
        p0 = pop.brand_prob[c, 0].astype(np.float64)
        p = p0 + (1.0 - p0) * -np.expm1(-state.adstock.at(c, t).astype(np.float64))
        choice = draws.random(c, Draw.DIRECT_CHOICE)
        ours = choice < p
        gone = None
        if self.loop is not None:  # a message still in flight reaches a customer who has left
            gone, _ = self.loop.churn_filter(c)
            rec.add("purchases_lost_to_churn", float(np.count_nonzero(ours & gone)))
            ours &= ~gone
        # A click-started occasion is a category purchase: ours or, failing that, a rival's (the same uniform).
        self._tally_market(c, t, choice, p, ours, gone)
        pulled = draws.random(c, Draw.PULL_FORWARD) < response.pull_forward_share
        room = pulled & (state.pull_forward_credit[c] < 255)
        increment(state.pull_forward_credit, c[room])
        # Without marketing this occasion would not have happened now: every purchase here is a lift,
        # and the occasion it replaced is taken off later (see _purchases).
        rec.add_events("purchases_treated", t[ours])
        increment(state.purchases, c[ours])
        rec.add_events("incremental_purchases_true", t[ours])
        rec.add_events("attributed_purchases", t[ours])
        return {
            "customer": c[ours].astype(np.int64),
            "creative": clicks["creative"][starts][ours],
            "channel": clicks["channel"][starts][ours],
            "time_s": t[ours],
        }


def wave_event_time(scenario: Scenario, day: int, region_rel_s: np.ndarray) -> float:
    """When a wave's plan is made: the day's send hour, in the clock of the region furthest ahead when sends
    go out in local time (``region_rel_s``: each region's offset from the reference clock, seconds)."""
    schedule = scenario.schedule
    send_s = day * DAY_S + schedule.send_hour * HOUR_S
    if schedule.send_in_local_time:
        send_s -= float(region_rel_s.max())
    return max(send_s, 0.0)


def channel_order_of(scenario: Scenario, arm: Arm) -> tuple[int, ...]:
    """The arm's channel preference order as channel indices; () when its policy names each row's channel."""
    order = arm.channel_order(scenario.schedule)
    return () if order is None else tuple(CHANNEL_NAMES.index(name) for name in order)


def default_channel_of(scenario: Scenario, channel_order: tuple[int, ...]) -> int:
    """The policy's default channel: with a channel order, the order itself (the engine picks per row)."""
    return ARM_CHANNELS if channel_order else CHANNEL_NAMES.index(scenario.schedule.channel)


def holdout_interval(
    everyone: np.ndarray,
    holdout: np.ndarray,
    replication_seq: np.random.SeedSequence,
    arm_index: int,
    recorder: Recorder,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[float, float]]:
    """(treated, holdout) histograms from everyone's and the holdout's, and the bootstrap-t interval of the
    holdout estimate (masssim.holdout); records the holdout's buyers. A sharded run calls it with the shards'
    histograms summed, which are the whole population's."""
    treated = everyone.copy()
    treated[: holdout.shape[0]] -= holdout
    recorder.add("holdout_buyers", buyers(holdout))
    rng = generator(component_sequence(replication_seq, Component.HOLDOUT_BOOTSTRAP, arm_index))
    return (treated, holdout), bootstrap_t_interval(treated, holdout, rng)


def _concat_events(a: dict[str, np.ndarray] | None, b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if a is None:
        return b
    return {k: np.concatenate([a[k], b[k]]) for k in b}


def _merge_in_chunk_order(parts: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, np.ndarray]]:
    """The shards' feedback as one: each kind's events concatenated in shard order, hence in chunk order
    (each shard's are ordered by chunk and shards hold ascending runs of chunks)."""
    if len(parts) == 1:
        return parts[0]
    merged: dict[str, dict[str, np.ndarray]] = {}
    for kind in sorted({kind for part in parts for kind in part}):
        pieces = [part[kind] for part in parts if kind in part]
        merged[kind] = pieces[0] if len(pieces) == 1 else {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
    return merged


def _arm_progress(progress: Callable[[float], None], index: int, n_arms: int) -> Callable[[float], None]:
    """Map an arm's own progress (0..1) onto the replication's."""
    return lambda share: progress((index + share) / n_arms)


def simulate_replication(
    scenario: Scenario,
    replication_seq: np.random.SeedSequence,
    progress: Callable[[float], None] | None = None,
    *,
    shards: int = 1,
    chunk_size: int = CUSTOMER_CHUNK,
) -> dict[str, ArmOutcome]:
    """Every arm of one replication, on one shared world (common random numbers across arms). ``shards``
    and ``chunk_size``: see :class:`ArmSimulation` and :func:`build_world`."""
    with one_blas_thread():
        world = build_world(scenario, replication_seq, chunk_size=chunk_size)
        outcomes: dict[str, ArmOutcome] = {}
        n_arms = len(scenario.arms)
        for index, arm in enumerate(scenario.arms):
            report = None if progress is None else _arm_progress(progress, index, n_arms)
            simulation = ArmSimulation(scenario, world, index, shards=shards, tally_market=index == 0)
            outcomes[arm.name] = simulation.run(report)
    return outcomes


def one_blas_thread() -> threadpool_limits:
    """A context in which BLAS and OpenMP use one thread. Their thread count changes the order of their sums,
    and so the last bits of what is fitted by iteration (the inbound classifier's L-BFGS weights differed
    between 1 and 2 OpenBLAS threads, and a few conversations with them): every process that simulates runs
    with one, so a replication gives the same bytes in this process, in a worker pool or on Dask."""
    return threadpool_limits(limits=1)
