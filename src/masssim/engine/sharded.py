"""One replication across shards of customers (docs/model.md §16).

The **coordinator** keeps the clock (SimPy), the policies, the catalogue, the budget and the capacity queues.
**Shards** (:class:`ShardWorker`) each hold a run of whole customer chunks: their population rows, holdout
flags, customer state, events in flight and organic occasions. A policy that can (``ShardPlanning``: none,
random, broadcast, segments) plans on the shards: each wave it decides a rule from counts, each shard
applies it to its own customers and the whole-plan rules run from counts and offsets
(:mod:`masssim.engine.shard_planning`; on a paid channel or through a channel order,
:mod:`masssim.engine.shard_channels`). Otherwise (other policies, or with [inbound]) the policy plans here
from a gathered view and every rule that needs the whole plan in order runs here; the shards answer "may
these rows be sent?" and draw the responses of the sends handed to them. Either way the shards release their
outcomes bucket by bucket. Every per-customer draw comes from its chunk's streams and every
merge is in chunk order, so the bytes of the results do not depend on the number of shards or on where they
run.

A :class:`ShardGroup` carries the calls: :class:`InProcessShards` in this process, or
:class:`masssim.engine.dask_shards.DaskShards` on Dask workers, where the shards' state stays between calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import simpy

from masssim.config.schema import CHANNEL_NAMES, ChannelConfig, Scenario
from masssim.engine import kernels
from masssim.engine.chunks import CUSTOMER_CHUNK, ChunkLayout, chunk_generators
from masssim.engine.conversation_loop import DeclaredTable, credit_conversation_purchases
from masssim.engine.outbound import Fanatics, OutboundSender, taste_norms
from masssim.engine.shard_channels import ChannelShardWave, ChannelWaveCoordinator
from masssim.engine.shard_planning import ShardWave, ShardWaveCoordinator, padded_sum
from masssim.engine.shard_views import (
    CodedObservables,
    GatheredColumns,
    absent_columns,
    gather_columns,
    starting_declarations,
    unknown_view_columns,
    view_needs,
)
from masssim.engine.sharded_fanatics import share_fanatics
from masssim.engine.sharded_inbound import (
    ArmInbound,
    CoordinatorInbound,
    ShardChurn,
    coordinator_inbound,
    declared_at_start,
    merge_replies,
)
from masssim.engine.sim import (
    ArmOutcome,
    ArmSimulation,
    ShardingUnsupported,
    SharedWorld,
    _merge_in_chunk_order,
    channel_order_of,
    default_channel_of,
    holdout_interval,
    one_blas_thread,
    wave_days,
    wave_event_time,
)
from masssim.engine.state import Recorder
from masssim.model.channels import DAY_S
from masssim.model.creatives import make_catalogue
from masssim.model.market import MarketCounts, add_market_counts
from masssim.model.metrics import derive
from masssim.model.population import Population, generate_population
from masssim.model.streams import Component, component_sequence, generator
from masssim.policies.base import (
    ARM_CHANNELS,
    CustomerView,
    Feedback,
    PolicyWorld,
    ShardPlanning,
    ShardRule,
    WaveContext,
)
from masssim.policies.registry import params_model, resolve_targeting


def sharding_problem(scenario: Scenario) -> str | None:
    """Why the scenario cannot run sharded yet (one line), or None when it can. Every policy can: one that
    does not plan on the shards plans on the coordinator from the view columns it reads (docs/model.md §16.5)."""
    unknown = unknown_view_columns(scenario)
    if unknown is not None:
        return unknown
    for index, arm in enumerate(scenario.arms):
        if arm.params.get("bespoke") and (scenario.population.declared_taste_share > 0 or scenario.inbound):
            return (
                f"arms[{index}].bespoke: bespoke creatives (arm {arm.name!r}) aim at declared taste, which a "
                "sharded run does not gather yet (set population.declared_taste_share = 0, no [inbound], "
                "or run unsharded)"
            )
    return None


def shard_ranges(n: int, shards: int, chunk_size: int = CUSTOMER_CHUNK) -> list[range]:
    """The customers of each shard: runs of whole chunks, as even as whole chunks allow (no empty shard)."""
    count = -(-n // chunk_size)
    ranges = []
    shards = min(shards, count)
    for s in range(shards):
        first, stop = s * count // shards, (s + 1) * count // shards
        ranges.append(range(first * chunk_size, min(stop * chunk_size, n)))
    return ranges


def build_shard_world(
    scenario: Scenario, replication_seq: np.random.SeedSequence, customers: range, chunk_size: int
) -> SharedWorld:
    """A shard's world: only its customers' rows, with the whole population's chunk numbering (so their
    draws are those of one process). Declared taste, fanatics and the inbound desk are not built here (the desk
    runs on the coordinator: engine/sharded_inbound.py; the coordinator finds the fanatics from every shard's
    rows and sets each shard's: engine/sharded_fanatics.py)."""
    population = generate_population(
        scenario.population,
        scenario.market,
        scenario.channels.by_name(),
        component_sequence(replication_seq, Component.POPULATION),
        customers=customers,
        conversation_attributes=scenario.inbound is not None,  # as one process: only conversations read them
    )
    layout = ChunkLayout(scenario.population.customers, chunk_size).shifted(customers.start)
    chunks = range(customers.start // chunk_size, -(-customers.stop // chunk_size))
    contactable = np.empty(population.n, bool)
    holdout = component_sequence(replication_seq, Component.HOLDOUT)
    for lo, hi, rng in chunk_generators(holdout, layout, chunks):
        contactable[lo - customers.start : hi - customers.start] = rng.random(hi - lo) >= scenario.holdout.share
    catalogue = make_catalogue(
        scenario.creatives,
        scenario.population.taste_dims,
        generator(component_sequence(replication_seq, Component.CREATIVES)),
    )
    return SharedWorld(population, contactable, catalogue, replication_seq, None, None, None, None, layout, chunks)


@dataclass
class ShardTotals:
    """What a shard reports when an arm ends (small: counts, a daily series and a few histograms)."""

    totals: dict[str, float]
    series: np.ndarray
    purchase_squares: tuple[float, float]  # treated, holdout
    everyone_histogram: np.ndarray  # customers by purchases of our brand
    holdout_histogram: np.ndarray
    market: MarketCounts | None  # the first arm's tally of every brand's buying
    arm_market: MarketCounts | None = None  # every brand's buying under this arm's marketing


class ShardWorker:
    """The customers of one shard and, while an arm runs, that arm's engine for them. On Dask this object
    lives on a worker (an actor) for a whole replication; only plan rows and outcomes travel."""

    def __init__(
        self, scenario: Scenario, replication_seq: np.random.SeedSequence, start: int, stop: int, chunk_size: int
    ) -> None:
        self.scenario = scenario
        self.customers = range(start, stop)
        self.world = build_shard_world(scenario, replication_seq, self.customers, chunk_size)
        self.arm: ArmSimulation | None = None
        self.wave: ShardWave | None = None  # the arm's waves planned here (docs/model.md §16.2)

    # Everything here takes and returns whole-population customer indices; the arrays are the shard's rows.
    def static_view(self) -> dict[str, np.ndarray]:
        pop = self.world.population
        return {
            "region": pop.region,
            "age_band": pop.age_band,
            "income_band": pop.income_band,
            "contactable": self.world.contactable,
        }

    # The fanatics diagnostic, once per replication (engine/sharded_fanatics.py).
    def taste_norms(self) -> np.ndarray:
        return taste_norms(self.world.population.taste)

    def taste_rows(self, local: np.ndarray) -> np.ndarray:
        return self.world.population.taste[local]

    def set_fanatics(self, local: np.ndarray, best: np.ndarray) -> None:
        """The shard's fanatics (its own indices) and their best affinities, for every arm of the replication."""
        self.world.fanatics = Fanatics(ids=local, best_affinity=best)

    def shares(self) -> dict[str, np.ndarray]:
        """The configured shares that standardise the observables' encoding (the same on every shard)."""
        pop = self.world.population
        return {"region": pop.region_share, "age_band": pop.age_band_share, "income_band": pop.income_band_share}

    def start_arm(self, arm_index: int) -> None:
        self.arm = self.wave = None  # the previous arm's state goes before the next arm's is allocated
        self.arm = ArmSimulation(self.scenario, self.world, arm_index, with_policy=False, tally_market=arm_index == 0)

    def _engine(self) -> ArmSimulation:
        if self.arm is None:
            raise RuntimeError("no arm started on this shard")
        return self.arm

    def add_creatives(self, directions: np.ndarray) -> None:
        """The creatives the coordinator's policy generated (``bespoke``), with the coordinator's ids."""
        self._engine().catalogue.add(directions)

    def dynamic_view(self, columns: tuple[str, ...] = ("optin", "sends", "opens", "clicks")) -> dict[str, np.ndarray]:
        state = self._engine().state
        return {name: getattr(state, name) for name in columns}

    # The columns of a policy's view gathered once per replication (engine/shard_views.py).
    def crm_scores(self) -> np.ndarray:
        return self.world.population.crm_scores

    def latent_taste(self) -> np.ndarray:
        return self.world.population.taste

    def starting_declarations(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.world.layout is not None and self.world.chunks is not None
        return starting_declarations(
            self.scenario,
            self.world.replication_seq,
            self.world.layout,
            self.world.chunks,
            self.customers,
            self.world.population.taste,
        )

    def declarers_taste(self, customers: np.ndarray) -> np.ndarray:
        """The latent taste of some of the shard's customers (whole-population ids)."""
        return self.world.population.taste[customers - self.customers.start]

    def start_week(self, week_index: int) -> None:
        self._engine().state.start_week(week_index)

    def wave_start(
        self,
        bounds: np.ndarray,
        conversations: list[tuple[Any, ...] | None] | None,
        week_index: int,
        columns: tuple[str, ...],
    ) -> tuple[list[dict[str, dict[str, np.ndarray]]], dict[str, np.ndarray]]:
        """A wave planned on the coordinator starts with one call, the three it replaces in their order: the
        buckets put off since the last wave (:meth:`buckets`), the calendar week (:meth:`start_week`) and
        the view's columns as they then are (:meth:`dynamic_view`)."""
        events = self.buckets(bounds, conversations)
        self.start_week(week_index)
        return events, self.dynamic_view(columns)

    def sendable(self, channel: int, customer: np.ndarray, cap: int) -> tuple[np.ndarray, int, int]:
        sim = self._engine()
        return sim.sender._sendable(channel, customer - self.customers.start, cap)

    def respond(
        self,
        channel: int,
        customer: np.ndarray,
        creative: np.ndarray,
        departure: np.ndarray,
        increasing: bool = False,
    ) -> None:
        sim = self._engine()
        sim.sender._dispatch(
            channel,
            sim.sender.channels.configs[channel],
            customer - self.customers.start,
            creative,
            departure,
            increasing=increasing,
        )

    def bucket(self, t0: float, t1: float) -> dict[str, dict[str, np.ndarray]]:
        sim = self._engine()
        sim.state.rebase(t0)
        events = sim._shard_bucket(sim.shards[0], t0, t1)
        offset = self.customers.start
        if offset:
            for e in events.values():
                e["customer"] = (e["customer"] + offset).astype(e["customer"].dtype, copy=False)
        return events

    def buckets(
        self, bounds: np.ndarray, conversations: list[tuple[Any, ...] | None] | None = None
    ) -> list[dict[str, dict[str, np.ndarray]]]:
        """:meth:`bucket` for each bucket ``(t0, t1)`` of ``bounds`` in turn: one call of the coordinator for
        every bucket up to the arm's next wave (or its end), each bucket's feedback events in bucket order.
        ``conversations`` (with [inbound]): per bucket, what its settled conversations did to the shard's
        customers (:meth:`conversation_outcomes`' arguments, or None), applied right after that bucket."""
        out = []
        for k, (t0, t1) in enumerate(bounds.tolist()):
            out.append(self.bucket(t0, t1))
            settled = None if conversations is None else conversations[k]
            if settled is not None:
                self.conversation_outcomes(*settled)
        return out

    # Waves planned on the shards (engine/shard_planning.py): the coordinator's steps, in the order it calls them.
    def rule_segments(self, segments: tuple[np.ndarray, np.ndarray] | None) -> None:
        self.wave = ShardWave(self._engine(), segments)

    def _wave(self) -> ShardWave:
        if self.wave is None:
            raise RuntimeError("the arm's waves are not planned on this shard")
        return self.wave

    def rule_reachable(self, week_index: int, channel: int) -> np.ndarray:
        return self._wave().reachable(week_index, channel)

    def rule_draw(self, rule: ShardRule, state: dict[str, Any] | None) -> int:
        return self._wave().draw(rule, state)

    def rule_rows(self, state: dict[str, Any] | None, cap: int) -> tuple[int, np.ndarray, np.ndarray]:
        return self._wave().rows(state, cap)

    def rule_cut(self, keep: int) -> tuple[int, np.ndarray, np.ndarray]:
        return self._wave().cut(keep)

    def rule_send(self, *args: Any) -> list[tuple[int, np.ndarray]]:
        return self._wave().send(*args)

    def rule_buckets(self, bounds: np.ndarray, cell_creatives: int) -> dict[str, tuple[np.ndarray, ...]]:
        return self._wave().buckets_cells(bounds, cell_creatives)

    # On a paid channel or through a channel order (engine/shard_channels.py).
    def rule_channel_segments(self, segments: tuple[np.ndarray, np.ndarray] | None) -> None:
        self.wave = ChannelShardWave(self._engine(), segments)

    def _channel_wave(self) -> ChannelShardWave:
        return cast(ChannelShardWave, self._wave())

    def rule_creatives(self, state: dict[str, Any] | None) -> int:
        return self._channel_wave().draw_creatives(state)

    def rule_offer(self, c: int, cap: int, passing: bool, paid: bool) -> tuple[int, Any]:
        return self._channel_wave().offer(c, cap, passing, paid)

    def rule_audiences(self, small: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        return self._channel_wave().refuse_audiences(small)

    def rule_channel_send(self, *args: Any) -> list[tuple[Any, ...]]:
        return self._channel_wave().send_channel(*args)

    def finish_arm(self) -> ShardTotals:
        """The arm's counts on this shard: recorder totals and daily series, the purchase squares and
        histograms, and (first arm) the market tally. All are sums over customers, merged by addition."""
        sim = self._engine()
        sim._reach_metrics()
        everyone, holdout = sim.purchase_histograms()
        market = sim.market_tally.finish() if sim.market_tally is not None else None
        totals = ShardTotals(
            sim.recorder.totals,
            sim.recorder.series,
            sim._purchase_squares(),
            everyone,
            holdout,
            market,
            arm_market=sim.arm_market_tally.finish(),
        )
        self.arm = self.wave = None
        return totals

    # -- [inbound]: the desk runs on the coordinator (engine/sharded_inbound.py) ----------------------
    def voices(self) -> np.ndarray:
        """The shard's customers' posts about the brand per year (for the coordinator's mention stream)."""
        return self.world.population.voice_rate

    def declared_at_start(self) -> np.ndarray:
        """Which of the shard's customers had declared their taste before the run."""
        assert self.world.layout is not None and self.world.chunks is not None
        return declared_at_start(
            self.scenario, self.world.replication_seq, self.world.layout, self.world.chunks, self.customers
        )

    def respond_with_replies(
        self,
        channel: int,
        customer: np.ndarray,
        creative: np.ndarray,
        departure: np.ndarray,
        increasing: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`respond`, returning the replies drawn (customers, times) for the coordinator's desk."""
        sender = self._engine().sender
        replies: list[tuple[np.ndarray, np.ndarray]] = []
        sender.reply_sink = lambda who, _channel, when: replies.append((who, when))
        try:
            self.respond(channel, customer, creative, departure, increasing)
        finally:
            sender.reply_sink = None
        if not replies:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        who = np.concatenate([r[0] for r in replies]).astype(np.int64) + self.customers.start
        return who, np.concatenate([r[1] for r in replies])

    def conversation_outcomes(
        self, churned: np.ndarray, churn_mark: np.ndarray, buyers: np.ndarray, from_reply: np.ndarray
    ) -> None:
        """What a bucket's conversations did to the shard's customers: new churn marks (a customer whose mark
        becomes non-zero leaves every channel) and conversation purchases, in settlement order."""
        sim = self._engine()
        if churned.shape[0]:
            if sim.loop is None:
                sim.loop = cast(Any, ShardChurn(self.world.population.n))
            marks = cast(Any, sim.loop).churn
            local = churned - self.customers.start
            sim.state.optin[local[marks[local] == 0]] = 0
            marks[local] = churn_mark
        if buyers.shape[0]:
            credit_conversation_purchases(
                sim.state,
                sim.draws,
                buyers - self.customers.start,
                from_reply,
                self.scenario.response.pull_forward_share,
            )

    def nbytes(self) -> int:
        """Bytes of the shard's per-customer arrays (population, holdout, and the running arm's state)."""
        pop = self.world.population
        total = int(pop.nbytes_per_customer() * pop.n) + self.world.contactable.nbytes
        if self.arm is not None:
            total += self.arm.state.nbytes() + sum(s.pending.nbytes() for s in self.arm.shards)
        return total


class ShardGroup(Protocol):
    """Calls to the shards of a replication, in shard order. ``args`` maps a shard's position to its
    arguments (shards not named are not called); results come back in the same order."""

    ranges: list[range]

    def call(self, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]: ...

    def close(self) -> None: ...


class InProcessShards:
    """The shards as objects in this process: the reference the Dask shards must match and, with ``threads``
    above 1, a replication spread over this machine's cores without Dask.

    With threads, the shards are built and each call runs on a pool of that many threads, one shard's call
    per thread at a time; the answers are taken in shard order, as on Dask. A shard touches only its own
    objects (its rows, state, streams and recorder), and its heavy passes are numpy operations and compiled
    kernels that release the interpreter's lock, so the shards overlap; the bytes are those of one shard
    in one thread, since nothing a shard computes depends on when it runs (docs/model.md §16.9)."""

    def __init__(
        self,
        scenario: Scenario,
        replication_seq: np.random.SeedSequence,
        ranges: list[range],
        chunk_size: int,
        threads: int = 1,
    ):
        self.ranges = ranges
        threads = min(threads, len(ranges))
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="masssim-shard") if threads > 1 else None

        def build(customers: range) -> ShardWorker:
            return ShardWorker(scenario, replication_seq, customers.start, customers.stop, chunk_size)

        if self._pool is None:
            self.workers = [build(r) for r in ranges]
            return
        building = [self._pool.submit(build, r) for r in ranges]
        # This thread only waits while the shards build their customers (about 27 s at 95 million): it loads
        # the compiled loops' runtime meanwhile, once per process, which the policy's set-up here would
        # otherwise wait for with the shards idle (segments' profile coding at 20 million customers: 0.35 s
        # without this, 0.22 s with it).
        kernels.load_runtime()
        self.workers = [future.result() for future in building]

    def call(self, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]:
        calls = [(getattr(self.workers[s], method), a) for s, a in sorted(args.items())]
        if self._pool is None or len(calls) < 2:
            return [bound(*a) for bound, a in calls]
        futures = [self._pool.submit(bound, *a) for bound, a in calls]
        return [future.result() for future in futures]

    def close(self) -> None:
        self.workers = []
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _everyone(group: ShardGroup, *args: Any) -> dict[int, tuple[Any, ...]]:
    return dict.fromkeys(range(len(group.ranges)), args)


@dataclass
class _PopulationIndex:
    """What the coordinator's sender needs of the population: its size and every customer's region."""

    n: int
    region: np.ndarray
    region_utc_offset_hours: np.ndarray


class _CoordinatorSender(OutboundSender):
    """The wave's rules that need the whole plan run here; the per-customer ones go to the shards."""

    group: ShardGroup

    def _by_shard(self, customer: np.ndarray) -> list[tuple[int, np.ndarray]]:
        parts = []
        for s, r in enumerate(self.group.ranges):
            rows = np.flatnonzero((customer >= r.start) & (customer < r.stop))
            if rows.shape[0]:
                parts.append((s, rows))
        return parts

    def _sendable(self, c: int, customer: np.ndarray, cap: int) -> tuple[np.ndarray, int, int]:
        parts = self._by_shard(customer)
        answers = self.group.call("sendable", {s: (c, customer[rows], cap) for s, rows in parts})
        ok = np.empty(customer.shape[0], bool)
        unreachable = capped = 0
        for (_, rows), (mask, refused, over_cap) in zip(parts, answers, strict=True):
            ok[rows] = mask
            unreachable += refused
            capped += over_cap
        return ok, unreachable, capped

    def _dispatch(
        self,
        c: int,
        cfg: ChannelConfig,
        customer: np.ndarray,
        creative: np.ndarray,
        departure: np.ndarray,
        span: tuple[float, float] | None = None,
        increasing: bool = False,
    ) -> None:
        parts = self._by_shard(customer)
        self.group.call(
            "respond", {s: (c, customer[rows], creative[rows], departure[rows], increasing) for s, rows in parts}
        )


class _RepliesCoordinatorSender(_CoordinatorSender):
    """With [inbound]: the shards also return each block's replies, which go to the desk in the order one
    process registers them (engine/sharded_inbound.py: merge_replies)."""

    def _dispatch(
        self,
        c: int,
        cfg: ChannelConfig,
        customer: np.ndarray,
        creative: np.ndarray,
        departure: np.ndarray,
        span: tuple[float, float] | None = None,
        increasing: bool = False,
    ) -> None:
        if self.reply_sink is None:  # replies start no conversation: the shards keep them
            super()._dispatch(c, cfg, customer, creative, departure, increasing=increasing)
            return
        parts = self._by_shard(customer)
        answers = self.group.call(
            "respond_with_replies",
            {s: (c, customer[rows], creative[rows], departure[rows], increasing) for s, rows in parts},
        )
        replies = merge_replies(customer, answers)
        if replies is not None:
            who, when = replies
            self.reply_sink(who, np.full(who.shape[0], c, np.int8), when)


class ShardedArm:
    """One arm on the coordinator: the clock, the policy and the whole-plan rules, over a group of shards."""

    def __init__(
        self,
        scenario: Scenario,
        replication_seq: np.random.SeedSequence,
        arm_index: int,
        group: ShardGroup,
        static: dict[str, np.ndarray],
        shares: dict[str, np.ndarray],
        inbound: CoordinatorInbound | None = None,
        gathered: GatheredColumns | None = None,
    ) -> None:
        """``inbound``: with [inbound], the replication's desk world on this coordinator. ``gathered``: the
        per-customer columns gathered for the replication's policies (engine/shard_views.py)."""
        self.scenario = scenario
        self.group = group
        self.replication_seq = replication_seq
        self.arm_index = arm_index
        self.arm = scenario.arms[arm_index]
        self.horizon_s = scenario.horizon_days * DAY_S
        self.recorder = Recorder(self.horizon_s)
        self.days = wave_days(scenario)
        n = scenario.population.customers
        self.contactable = static["contactable"]
        catalogue = make_catalogue(
            scenario.creatives,
            scenario.population.taste_dims,
            generator(component_sequence(replication_seq, Component.CREATIVES)),
        )
        offsets = np.array([r.utc_offset_hours for r in scenario.population.regions], np.float64)
        population = cast(Population, _PopulationIndex(n, static["region"], offsets))
        # No customer state, shards or draws here: the sender's only users of them (_sendable, _dispatch) are
        # overridden to ask the shards.
        channel_order = channel_order_of(scenario, self.arm)
        sender_type = _CoordinatorSender if inbound is None else _RepliesCoordinatorSender
        sender = sender_type(
            scenario,
            population,
            self.contactable,
            catalogue,
            cast(Any, None),
            [],
            self.recorder,
            cast(Any, None),
            channel_order=channel_order,
        )
        sender.group = group
        self.sender = sender
        self.shard_creatives = catalogue.count  # the creatives the shards hold (generated ones are sent)
        gathered = GatheredColumns() if gathered is None else gathered
        needs = view_needs(scenario, arm_index)
        reads_latent = needs.latent_taste
        m = scenario.population.crm_scores
        # With CRM scores in its view a policy's segments need not be a function of the profile: it plans here.
        self.scores_in_view = m > 0 and "observables" in needs.columns
        scores = gathered.crm_scores if self.scores_in_view else None
        # With [inbound] and a policy that reads declared taste, the arm's own growing table (as one process).
        self.declared: DeclaredTable | None = None
        declared_row, declared_taste = gathered.declared_row, gathered.declared_taste
        if inbound is not None and "declared_taste" in needs.columns:
            d = scenario.population.taste_dims
            self.declared = DeclaredTable(n, d, declared_row, declared_taste)
            declared_row, declared_taste = self.declared.row, self.declared.taste
        # The policy's view: gathered once (codes, holdout and the columns it reads) and refreshed before each
        # plan (opt-ins, and counters if it reads them).
        self.view = CustomerView(
            n=n,
            region=static["region"],
            age_band=static["age_band"],
            income_band=static["income_band"],
            observables=CodedObservables(
                static["region"],
                static["age_band"],
                static["income_band"],
                shares["region"],
                shares["age_band"],
                shares["income_band"],
                np.empty((n, 0), np.float16) if scores is None else scores,
            ),
            contactable=self.contactable,
            # Filled by _refresh_view before each plan, only when the arm plans here (not on the shards).
            optin=np.empty(0, np.uint8),
            sends=np.empty(0, np.uint16),
            opens=np.empty(0, np.uint16),
            clicks=np.empty(0, np.uint16),
            latent_taste=gathered.latent_taste if reads_latent else None,
            continuous_observables=m,
            declared_row=declared_row,
            declared_taste=declared_taste,
            channel_order=channel_order,
        )
        self.dynamic_columns = ("optin", "sends", "opens", "clicks") if "history" in needs.columns else ("optin",)
        for name, absent in absent_columns(scenario, arm_index, needs).items():
            setattr(self.view, name, absent)
        factory = resolve_targeting(self.arm.policy)
        params = params_model(factory).model_validate(self.arm.params)
        if inbound is not None or self.scores_in_view or not _may_plan_on_shards(factory):
            # It plans here: its constructor sees the state at the start, as in one process.
            self._refresh_view()
        policy_rng = generator(component_sequence(replication_seq, Component.POLICY, arm_index))
        self.policy = factory(
            params,
            PolicyWorld(
                customers=self.view,
                # Creative quality is the engine's truth; only a latent-reading policy (the oracle) sees it.
                catalogue=catalogue.view(reveal_quality=reads_latent),
                channel_names=CHANNEL_NAMES,
                default_channel=default_channel_of(scenario, channel_order),
                waves_planned=len(self.days),
                horizon_s=self.horizon_s,
                rng=policy_rng,
                budget_total=scenario.budget_total,
                affinity_click_beta=scenario.response.affinity_click_beta if reads_latent else None,
            ),
        )
        self.inbound = None if inbound is None else ArmInbound(self, inbound)
        # The feedback buckets put off to the next wave planned here (or the arm's end), and with [inbound]
        # what each one's conversations did (ArmInbound.settle); with [inbound] and a policy that reads
        # declared taste, a call per bucket (ArmInbound.batches).
        self.batched = self.inbound is None or self.inbound.batches
        self.pending_buckets: list[tuple[float, float]] = []
        self.pending_settled: list[tuple[dict[int, tuple[Any, ...]], dict[str, np.ndarray] | None]] = []
        # Planning on the shards when the policy can (a rule per wave, docs/model.md §16.2); on a paid channel
        # or through a channel order with the steps of engine/shard_channels.py. With [inbound] the desk needs
        # each block's replies gathered as the coordinator sends it (§16.8), so the coordinator plans.
        self.on_shards: ShardWaveCoordinator | None = None
        if self.inbound is None and not self.scores_in_view and _plans_on_shards(self.policy, channel_order, sender):
            planner = cast(ShardPlanning, self.policy)
            if _offers_to_channels(planner, channel_order, sender):  # paid or a channel order
                group.call("rule_channel_segments", _everyone(group, planner.shard_segments()))
                self.on_shards = ChannelWaveCoordinator(group, sender, policy_rng)
            else:
                group.call("rule_segments", _everyone(group, planner.shard_segments()))
                self.on_shards = ShardWaveCoordinator(group, sender, policy_rng)

    def run(self, progress: Callable[[float], None] | None = None) -> ArmOutcome:
        n_treated = int(self.contactable.sum())
        self.recorder.add("customers_treated", n_treated)
        self.recorder.add("customers_holdout", self.contactable.shape[0] - n_treated)
        env = simpy.Environment()
        self._start_inbound(env)
        buckets = env.process(self._buckets(env, progress))
        env.process(self._waves(env))
        env.run(until=buckets)
        totals = dict(self.recorder.totals)
        series = self.recorder.series.copy()
        treated_squares = holdout_squares = 0.0
        everyone = holdout = np.zeros(1, np.int64)
        markets: list[MarketCounts] = []
        arm_markets: list[MarketCounts] = []
        # Shard counts are integers (exact in float64), so these sums do not depend on the grouping.
        for shard in self.group.call("finish_arm", _everyone(self.group)):
            for name, value in shard.totals.items():
                totals[name] += value
            series += shard.series
            treated_squares += shard.purchase_squares[0]
            holdout_squares += shard.purchase_squares[1]
            everyone = _add_histograms(everyone, shard.everyone_histogram)
            holdout = _add_histograms(holdout, shard.holdout_histogram)
            if shard.market is not None:
                markets.append(shard.market)
            if shard.arm_market is not None:
                arm_markets.append(shard.arm_market)
        pools = self._finish_inbound(totals)
        recorder = Recorder(self.horizon_s)
        histograms, interval = holdout_interval(everyone, holdout, self.replication_seq, self.arm_index, recorder)
        for name, value in recorder.totals.items():
            totals[name] += value
        market = self.scenario.market
        metrics = derive(
            totals,
            price=market.price,
            margin_share=market.gross_margin_share,
            purchase_squares=(treated_squares, holdout_squares),
            holdout_interval=interval,
        )
        return ArmOutcome(
            metrics=metrics,
            series=series,
            market=add_market_counts(markets) if markets else None,
            purchase_histograms=histograms,
            pools=pools,
            arm_market=add_market_counts(arm_markets) if arm_markets else None,
        )

    def _wave_event_time(self, day: int) -> float:
        return wave_event_time(self.scenario, day, self.sender.region_rel_s)

    def _refresh_view(self) -> None:
        self._write_view(self.group.call("dynamic_view", _everyone(self.group, self.dynamic_columns)))

    def _write_view(self, parts: list[dict[str, np.ndarray]]) -> None:
        """Copy the shards' view columns (in shard order) into the policy's view."""
        for name in self.dynamic_columns:
            target = getattr(self.view, name)
            if target.shape[0] != self.view.n:  # allocated at the first wave planned here
                target = np.empty(self.view.n, target.dtype)
                setattr(self.view, name, target)
            for r, part in zip(self.group.ranges, parts, strict=True):
                target[r.start : r.stop] = part[name]

    def _waves(self, env: simpy.Environment):  # type: ignore[no-untyped-def]
        # The same steps as ArmSimulation._waves, with the shards' state behind calls.
        for index, day in enumerate(self.days):
            t_event = max(self._wave_event_time(day), env.now)
            yield env.timeout(t_event - env.now)
            yield env.timeout(0)
            week = int(env.now // (7 * DAY_S))
            budget_left = self.sender.channels.budget_left
            wave = WaveContext(time_s=env.now, wave_index=index, budget_left=budget_left)
            if self.on_shards is not None:
                planner = cast(ShardPlanning, self.policy)
                self._observe_pending_buckets()
                reachable = self.on_shards.reachable(week, planner.channel)
                total = padded_sum(reachable, max(r.shape[0] for r in reachable))
                rule = planner.shard_rule(wave, total)
                if rule is not None:
                    self._share_generated()
                    self.on_shards.send(rule, reachable, env.now, day * DAY_S)
                continue
            self._start_wave(week)
            plan = self.policy.plan(wave)
            self._share_generated()
            self.sender.send(plan, env.now, day * DAY_S)
            self._after_send(index)

    def _share_generated(self) -> None:
        """Send the shards the creatives the policy generated since the last wave (``bespoke``: a unit
        direction of a few float32 per creative), before any row names them; the shards add them with the
        same ids, so their responses and production costs are one process's."""
        catalogue = self.sender.catalogue
        if catalogue.count > self.shard_creatives:
            new = np.ascontiguousarray(catalogue.directions[self.shard_creatives :])
            self.group.call("add_creatives", _everyone(self.group, new))
            self.shard_creatives = catalogue.count

    def _buckets(self, env: simpy.Environment, progress: Callable[[float], None] | None):  # type: ignore[no-untyped-def]
        step = self.scenario.feedback_bucket_minutes * 60.0
        t0 = 0.0
        while t0 < self.horizon_s:
            t1 = min(t0 + step, self.horizon_s)
            yield env.timeout(t1 - env.now)
            if self.on_shards is not None:
                # Put off to the next wave (or the arm's end): one call per shard for all the buckets between.
                self.on_shards.pending_buckets.append((t0, t1))
            elif self.batched:
                self.pending_buckets.append((t0, t1))  # the same, with the events themselves
            else:
                merged = _merge_in_chunk_order(self.group.call("bucket", _everyone(self.group, t0, t1)))
                if merged:
                    self.policy.observe(Feedback(time_s=t1, events=merged))
            self._after_bucket(t1)
            if progress is not None:
                progress(t1 / self.horizon_s)
            t0 = t1
        self._observe_pending_buckets()

    def _observe_pending_buckets(self) -> None:
        """Run the buckets put off since the last wave and give the policy each one's feedback in order (its
        cells when it plans on the shards, else its events). The policy sees the same calls in the same order
        as with a call per bucket: nothing reads what it learns before its next plan, and nothing else
        touches the shards between waves (docs/model.md §16.2)."""
        if self.on_shards is None:
            self._observe_pending_events()
            return
        planner = cast(ShardPlanning, self.policy)
        for t1, cells in self.on_shards.run_pending_buckets(planner.cell_creatives):
            if cells:
                planner.observe_cells(t1, cells)

    def _start_wave(self, week: int) -> None:
        """The start of a wave planned here, in one call per shard (``wave_start``): the pending buckets run
        and the policy observes them (as :meth:`_observe_pending_events`), the shards start the calendar week,
        and the view is refreshed after the policy has observed (as one process's view changes only then)."""
        bounds, settled, args = self._take_pending()
        wave_args = {s: (a[0], a[1] if len(a) > 1 else None, week, self.dynamic_columns) for s, a in args.items()}
        parts = self.group.call("wave_start", wave_args)
        self._observe_bucket_events(bounds, settled, [events for events, _ in parts])
        self._write_view([view for _, view in parts])

    def _take_pending(self) -> tuple[list[tuple[float, float]], list[Any], dict[int, tuple[Any, ...]]]:
        """The buckets put off since the last wave, what their conversations did (with [inbound]), and each
        shard's arguments for running them (:meth:`ShardWorker.buckets`); the pending lists are emptied."""
        bounds, self.pending_buckets = self.pending_buckets, []
        settled, self.pending_settled = self.pending_settled, []
        array = np.array(bounds, np.float64).reshape(-1, 2)
        args: dict[int, tuple[Any, ...]] = {}
        for s in range(len(self.group.ranges)):
            conversations = [outcomes.get(s) for outcomes, _ in settled]
            args[s] = (array, conversations) if any(c is not None for c in conversations) else (array,)
        return bounds, settled, args

    def _observe_pending_events(self) -> None:
        """The coordinator's policy's side of :meth:`_observe_pending_buckets`: one call per shard returns every
        pending bucket's events; each bucket's are merged in chunk order and observed, then let go, so the
        coordinator holds at most the events of the buckets between two waves (docs/model.md §16.7)."""
        if not self.pending_buckets:
            return
        bounds, settled, args = self._take_pending()
        self._observe_bucket_events(bounds, settled, self.group.call("buckets", args))

    def _observe_bucket_events(
        self, bounds: list[tuple[float, float]], settled: list[Any], parts: list[list[dict[str, Any]]]
    ) -> None:
        """Give the policy each bucket's events merged in chunk order and then, with [inbound], the bucket's
        conversation purchases: one process's calls in its order."""
        for i, (_, t1) in enumerate(bounds):
            merged = _merge_in_chunk_order([part[i] for part in parts])
            for part in parts:
                part[i] = {}
            if merged:
                self.policy.observe(Feedback(time_s=t1, events=merged))
            won = settled[i][1] if settled else None
            if won is not None:  # the bucket's conversation purchases, as ArmInbound.after_bucket gives them
                self.policy.observe(Feedback(time_s=t1, events={"purchase": won}))

    # The inbound desk's hooks (engine/sharded_inbound.py: ArmInbound); nothing without [inbound].
    def _start_inbound(self, env: simpy.Environment) -> None:
        if self.inbound is not None:
            self.inbound.start(env)

    def _after_send(self, index: int) -> None:
        if self.inbound is not None:
            self.inbound.after_send(index)

    def _after_bucket(self, t1: float) -> None:
        if self.inbound is None:
            return
        if self.batched:
            self.pending_settled.append(self.inbound.settle(t1))
        else:
            self.inbound.after_bucket(t1)

    def _finish_inbound(self, totals: dict[str, float]) -> dict[str, dict[str, float]]:
        return {} if self.inbound is None else self.inbound.finish(totals)


def _may_plan_on_shards(factory: Any) -> bool:
    """Whether a policy class implements planning on the shards (``ShardPlanning``, docs/model.md §6.1) and
    does not opt out of it (``plans_on_shards = False``: a subclass that plans otherwise)."""
    methods = ("shard_rule", "shard_segments", "observe_cells")
    return all(hasattr(factory, name) for name in methods) and bool(getattr(factory, "plans_on_shards", True))


def _plans_on_shards(policy: Any, channel_order: tuple[int, ...], sender: OutboundSender) -> bool:
    """Whether the arm's waves are planned on the shards (else on the coordinator, from a gathered view)."""
    if not _may_plan_on_shards(policy) or not hasattr(policy, "channel"):
        return False
    channel = int(policy.channel)
    return (channel == ARM_CHANNELS and bool(channel_order)) or 0 <= channel < len(CHANNEL_NAMES)


def _offers_to_channels(policy: Any, channel_order: tuple[int, ...], sender: OutboundSender) -> bool:
    """Whether the waves planned on the shards take the steps of engine/shard_channels.py: through the arm's
    channel order, or on a paid channel (prices per ad set, summed in departure order)."""
    channel = int(policy.channel)
    return channel == ARM_CHANNELS or sender.channels.configs[channel].paid


def _add_histograms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of two histograms of different lengths (the longer one's length: no trailing zeros are added)."""
    if a.shape[0] < b.shape[0]:
        a, b = b, a
    out = a.copy()
    out[: b.shape[0]] += b
    return out


def simulate_sharded_replication(
    scenario: Scenario,
    replication_seq: np.random.SeedSequence,
    open_group: Callable[[Scenario, np.random.SeedSequence, list[range], int], ShardGroup],
    shards: int,
    progress: Callable[[float], None] | None = None,
    *,
    chunk_size: int = CUSTOMER_CHUNK,
) -> dict[str, ArmOutcome]:
    """Every arm of one replication, its customers in ``shards`` shards opened by ``open_group``; the
    same results as :func:`masssim.engine.sim.simulate_replication`."""
    problem = sharding_problem(scenario)
    if problem is not None:
        raise ShardingUnsupported(problem)
    ranges = shard_ranges(scenario.population.customers, shards, chunk_size)
    group = open_group(scenario, replication_seq, ranges, chunk_size)
    try:
        with one_blas_thread():  # the policies plan here, as in simulate_replication
            parts = group.call("static_view", _everyone(group))
            static = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
            share_fanatics(scenario, replication_seq, group, static["contactable"])
            (shares,) = group.call("shares", {0: ()})
            outcomes: dict[str, ArmOutcome] = {}
            n_arms = len(scenario.arms)
            inbound = None
            if scenario.inbound is not None:  # the desk on this coordinator (engine/sharded_inbound.py)
                inbound = coordinator_inbound(scenario, replication_seq, group, static["region"])
            # The columns the arms' policies read beyond codes and holdout, once for the replication.
            gathered = gather_columns(scenario, group, [view_needs(scenario, i) for i in range(n_arms)])
            for index, arm in enumerate(scenario.arms):
                group.call("start_arm", _everyone(group, index))
                report = None if progress is None else _arm_share(progress, index, n_arms)
                sharded = ShardedArm(scenario, replication_seq, index, group, static, shares, inbound, gathered)
                outcomes[arm.name] = sharded.run(report)
            return outcomes
    finally:
        group.close()


def _arm_share(progress: Callable[[float], None], index: int, n_arms: int) -> Callable[[float], None]:
    return lambda share: progress((index + share) / n_arms)


def in_process(
    scenario: Scenario, replication_seq: np.random.SeedSequence, ranges: list[range], chunk_size: int, threads: int = 1
) -> ShardGroup:
    return InProcessShards(scenario, replication_seq, ranges, chunk_size, threads)


__all__: Sequence[str] = (
    "InProcessShards",
    "ShardGroup",
    "ShardWorker",
    "ShardedArm",
    "build_shard_world",
    "in_process",
    "shard_ranges",
    "sharding_problem",
    "simulate_sharded_replication",
)
