"""A wave: the engine turns a policy's plan into sends and draws every customer's response as arrays.

Rules are enforced here, not trusted to the policy: holdout and opt-outs, weekly frequency caps, the
paid platforms' minimum audience, the budget, quiet hours and the channel's capacity per hour. These run on
the whole plan, in its order. Rows a policy leaves to the arm's channel order go on the first channel of it
that takes them (docs/model.md, 4.11). Then, for each send, one uniform decides delivery, reading and
clicking (a conditional uniform is re-scaled rather than re-drawn), a second decides unsubscribing; reads
also draw a normal for their delay, and pre-fetch and replies draw their own uniforms. Every such draw comes
from the stream of the customer's chunk (:mod:`masssim.engine.chunks`), and the sends of each block are
split among the shards that hold their customers, in plan order (docs/model.md §16; a block's rows are never
moved into departure order, §15.9).
Outcomes go to the shard's :class:`~masssim.engine.events.PendingEvents` with their times.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.special import expit, logit

from masssim.config.schema import CHANNEL_NAMES, ChannelConfig, Scenario
from masssim.engine import kernels, send_kernels
from masssim.engine.chunks import ChunkDraws, Draw
from masssim.engine.delivery_cells import DeliveryCells
from masssim.engine.events import PendingEvents
from masssim.engine.state import CustomerState, Recorder
from masssim.model.channels import DAY_S, HOUR_S, capacity_departures, cpm_per_impression, defer_past_quiet_hours
from masssim.model.metrics import channel_metric
from masssim.model.population import Population
from masssim.policies.base import ARM_CHANNELS, Catalogue, Plan

RESPONSE_CHUNK = 1 << 20  # rows per vectorised block: bounds temporaries, fixed so draws never depend on N
CLICK_DELAY_MEAN_S = 120.0  # a click follows its read by about two minutes
PREFETCH_DELAY_S = 60.0
REPLY_DELAY_S = 300.0


@dataclass
class _Schedule:
    """Departure slots of one wave on one channel: group g's j-th send leaves at starts[g] + j * spacing."""

    group: np.ndarray  # uint8 group (region by release order) of each row of the plan
    starts: np.ndarray  # float64 first departure of each group
    spacing_s: float
    filled: np.ndarray | None = None  # sends of each group already placed by earlier blocks

    def departures(self, lo: int, hi: int) -> tuple[np.ndarray, tuple[float, float] | None]:
        """The departure time of each of plan rows lo:hi, in plan order (send_kernels.plan_departures): a row
        is its group's next send. Rows are never moved into departure order (§15.9). With them, their least
        and greatest (send_kernels.departure_bounds, without a pass over them)."""
        if self.filled is None:
            self.filled = np.zeros(self.starts.shape[0], np.int64)
        return send_kernels.departures_and_bounds(self.group[lo:hi], self.starts, self.spacing_s, self.filled)


@dataclass
class Fanatics:
    """Diagnostics: treated customers whose taste is strongest (top share by |theta|), with the affinity of
    the catalogue creative that fits each best. Only the engine sees this; it changes no outcome."""

    ids: np.ndarray  # sorted customer indices
    best_affinity: np.ndarray  # float32, max over the starting catalogue of theta . phi

    def locate(self, customer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows of ``customer`` that are fanatics, their positions in ``ids``)."""
        pos = np.searchsorted(self.ids, customer)
        pos = np.minimum(pos, max(self.ids.shape[0] - 1, 0))
        hit = np.flatnonzero(self.ids[pos] == customer) if self.ids.shape[0] else np.empty(0, np.int64)
        return hit, pos[hit]


def find_fanatics(
    population: Population, contactable: np.ndarray, catalogue: Catalogue, top_share: float
) -> Fanatics | None:
    if top_share <= 0:
        return None
    ids = fanatic_ids(taste_norms(population.taste), contactable, top_share)
    return Fanatics(ids=ids, best_affinity=best_affinity(population.taste[ids], catalogue))


# The three steps of find_fanatics, which a sharded run makes where the rows are (docs/model.md §16.5).
TASTE_ROWS_BLOCK = 1 << 20  # rows of taste converted to float32 at a time


def taste_norms(taste: np.ndarray) -> np.ndarray:
    """|theta| of each row (float32; each row's value depends on that row only), from the stored half-precision
    values converted to float32 a block of rows at a time (float16 arithmetic would lose the sums)."""
    norms = np.empty(taste.shape[0], np.float32)
    for lo in range(0, taste.shape[0], TASTE_ROWS_BLOCK):
        rows = slice(lo, lo + TASTE_ROWS_BLOCK)
        norms[rows] = np.linalg.norm(taste[rows].astype(np.float32), axis=1)
    return norms


def fanatic_ids(norm: np.ndarray, contactable: np.ndarray, top_share: float) -> np.ndarray:
    """The treated customers whose taste norm is in the top ``top_share`` of everyone's (``norm``: all)."""
    threshold = np.quantile(norm, 1.0 - top_share)
    return np.flatnonzero((norm >= threshold) & contactable)


def best_affinity(taste: np.ndarray, catalogue: Catalogue) -> np.ndarray:
    """For rows of taste (the fanatics', in order): the affinity of the starting creative fitting best."""
    return (taste.astype(np.float32) @ catalogue.directions.T).max(axis=1).astype(np.float32)  # type: ignore[no-any-return]


class ShardSink(Protocol):
    """Where the outcomes of sends to a run of customers go: customers lo..hi-1 and their events in flight."""

    lo: int
    hi: int
    pending: PendingEvents


class PlanError(RuntimeError):
    """A policy returned a malformed plan (a bug in the policy, not in the user's scenario)."""


@dataclass
class OutboundChannels:
    """Per-arm state of the senders: when each channel is free, spend so far, creatives in use."""

    configs: tuple[ChannelConfig, ...]
    free_at_s: list[float]
    budget_left: float | None
    creatives_used: np.ndarray
    spent: float = 0.0
    refused: dict[str, int] = field(default_factory=dict)


def channel_range(channel: np.ndarray) -> tuple[int, int]:
    """The lowest and highest channel of a plan's (non-empty) channel column. A column on one channel is
    usually a broadcast view of one value (policies.base.one_channel, stride 0): its one value is read instead
    of a pass over every row, which numpy's min and max would make."""
    if channel.ndim == 1 and channel.strides == (0,):
        value = int(channel[0])
        return value, value
    return int(channel.min()), int(channel.max())


def validate_plan(plan: Plan, n_customers: int, n_creatives: int, *, mixes: bool = False) -> Plan:
    """Check shapes, ranges and uniqueness of a plan (:func:`check_plan`) and return it."""
    check_plan(plan, n_customers, n_creatives, mixes=mixes)
    return plan


def check_plan(plan: Plan, n_customers: int, n_creatives: int, *, mixes: bool = False) -> bool:
    """Check shapes, ranges and uniqueness of a plan; duplicates are a policy bug and raise. ``mixes``: the
    arm has a channel order, so rows may leave the channel to it (ARM_CHANNELS). Returns whether the plan's
    customers strictly increase (found by the same pass as their range)."""
    customer = np.asarray(plan.customer)
    creative = np.asarray(plan.creative)
    channel = np.asarray(plan.channel)
    n = customer.shape[0]
    if customer.ndim != 1 or creative.shape != (n,) or channel.shape != (n,):
        raise PlanError("plan arrays customer, creative and channel must be 1-D and of equal length")
    if plan.audience is not None and np.asarray(plan.audience).shape != (n,):
        raise PlanError("plan.audience must have one entry per row")
    if n == 0:
        return True
    # One pass for range and repeats (compiled for integer indices; anything else is the policy's bug, which
    # the numpy definition reports as numpy does).
    check = kernels.check_plan_customers if customer.dtype.kind in "iu" else kernels.check_plan_customers_numpy
    customers = check(customer, n_customers)
    if customers == kernels.PLAN_CUSTOMER_OUTSIDE:
        raise PlanError("plan names a customer index outside the population")
    if creative.min() < 0 or creative.max() >= n_creatives:
        raise PlanError("plan names a creative outside the catalogue")
    lowest, highest = channel_range(channel)
    if lowest < (ARM_CHANNELS if mixes else 0) or highest >= len(CHANNEL_NAMES):
        raise PlanError(
            "plan names an unknown channel index"
            + ("" if mixes else " (ARM_CHANNELS needs an arm with a channel order)")
        )
    if customers == kernels.PLAN_CUSTOMER_TWICE:
        raise PlanError("plan contacts a customer more than once in one wave")
    return bool(customers == kernels.PLAN_CUSTOMERS_INCREASING)


class OutboundSender:
    def __init__(
        self,
        scenario: Scenario,
        population: Population,
        contactable: np.ndarray,
        catalogue: Catalogue,
        state: CustomerState,
        shards: Sequence[ShardSink],
        recorder: Recorder,
        draws: ChunkDraws,
        *,
        fanatics: Fanatics | None = None,
        channel_order: tuple[int, ...] = (),
    ) -> None:
        self.scenario = scenario
        self.population = population
        self.contactable = contactable
        self.catalogue = catalogue
        self.state = state
        self.shards = shards
        # Called with (customer, channel, time_s) of the replies of each wave when inbound is on.
        self.reply_sink: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None
        self.recorder = recorder
        self.draws = draws
        configs = tuple(scenario.channels.by_name()[name] for name in CHANNEL_NAMES)
        self.channels = OutboundChannels(
            configs=configs,
            free_at_s=[0.0] * len(configs),
            budget_left=scenario.budget_total,
            creatives_used=np.zeros(catalogue.count, bool),
        )
        ref = scenario.reference_utc_offset_hours
        # Offset of each region's clock from the reference clock, seconds.
        self.region_rel_s = (population.region_utc_offset_hours - ref) * HOUR_S
        self.horizon_s = scenario.horizon_days * DAY_S
        self.index_dtype = np.int32 if population.n < 2**31 else np.int64
        self.report_deliveries = True  # queue a "delivered" event per delivery for the policy
        # Keep the creative of each read and recorded open in flight: only a policy that learns from opens
        # needs it (the state takes a read's customer, time and channel), and without it an event in flight
        # is 4 bytes smaller (reads and pre-fetch opens are most of them).
        self.report_open_creatives = True
        # Keep the customer of each pre-fetch open in flight: only when each customer's count of recorded
        # opens is kept (a policy that reads the history column); otherwise a count per bucket is all it needs.
        self.keep_open_customers = True
        # Set by a shard whose waves are planned on the shards: deliveries are kept only for their count per
        # cell (engine/delivery_cells.py), not queued as events.
        self.delivery_cells: DeliveryCells | None = None
        response = scenario.response
        # Per channel: float32 [logit(click-to-open), beta, delta, gamma] of the click log-odds.
        self.click_coefficients = [
            np.array(
                [
                    logit(cfg.click_to_open),
                    response.affinity_click_beta,
                    response.warmth_click_delta,
                    response.fatigue_click_gamma,
                ],
                np.float32,
            )
            for cfg in configs
        ]
        self.channel_order = channel_order
        # Per-channel metric names, looked up once (the recorder is keyed by name).
        self.channel_metrics = [
            {figure: channel_metric(figure, name) for figure in ("sends", "delivered", "cost")}
            for name in CHANNEL_NAMES
        ]
        self.fanatics = fanatics
        if fanatics is not None:
            recorder.add("fanatics", fanatics.ids.shape[0])

    # ----------------------------------------------------------------------------------------------
    def send(self, plan: Plan, t_event_s: float, day_start_s: float) -> None:
        # Customers in increasing order (the policies here list them so) stay so in every subset taken below
        # (a channel's rows, a block, a shard's part), which lets the draws find each chunk's rows by binary
        # search (ChunkDraws.segments).
        increasing = check_plan(plan, self.population.n, self.catalogue.count, mixes=bool(self.channel_order))
        if len(plan) == 0:
            return
        channel = np.asarray(plan.channel)
        # Most plans use one channel: min and max tell so in a fast pass (or none), where np.unique would sort
        # the plan.
        lowest, highest = channel_range(channel)
        used = [lowest] if lowest == highest else np.unique(channel).tolist()
        for c in used:  # ascending: rows left to the arm's order (-1) go first
            rows = slice(None) if lowest == highest else channel == c
            audience = None if plan.audience is None else np.asarray(plan.audience)[rows]
            # Indices fit in 32 bits below 2^31 customers: half the memory for every per-send array.
            customer = np.asarray(plan.customer)[rows].astype(self.index_dtype, copy=False)
            creative = np.asarray(plan.creative)[rows].astype(np.int32, copy=False)
            if c == ARM_CHANNELS:
                self._send_in_order(customer, creative, audience, t_event_s, day_start_s, increasing)
            else:
                self._send_channel(int(c), customer, creative, audience, t_event_s, day_start_s, increasing=increasing)

    def _send_in_order(
        self,
        customer: np.ndarray,
        creative: np.ndarray,
        audience: np.ndarray | None,
        t_event_s: float,
        day_start_s: float,
        increasing: bool = False,
    ) -> None:
        """Channel mixes: the first channel of the order takes, in plan order, every contact it can (opted in,
        under its weekly cap, within the paid minimum audience, its capacity for this wave and the budget);
        the contacts it cannot take pass, in plan order, to the next channel, and so on. The last channel
        applies its rules as a lone channel does (dropped contacts are counted under its reason; a backlog
        queues rather than passes on)."""
        order = self.channel_order
        for position, c in enumerate(order):
            passing = position < len(order) - 1
            rest = self._send_channel(
                c, customer, creative, audience, t_event_s, day_start_s, passing=passing, increasing=increasing
            )
            if rest is None or rest[0].shape[0] == 0:
                return
            customer, creative, audience = rest
            self.recorder.add("channel_fallbacks", customer.shape[0])

    def _wave_room(self, c: int, cfg: ChannelConfig, t_event_s: float) -> int:
        """Sends channel ``c`` can take this wave when it can pass the rest on: what it can push between the
        wave and the next one, less the backlog still queued from earlier waves."""
        window_s = self.scenario.schedule.wave_every_days * DAY_S
        backlog_s = max(0.0, self.channels.free_at_s[c] - t_event_s)
        return max(0, math.floor(cfg.capacity_per_hour * (window_s - backlog_s) / HOUR_S))

    def _send_channel(
        self,
        c: int,
        customer: np.ndarray,
        creative: np.ndarray,
        audience: np.ndarray | None,
        t_event_s: float,
        day_start_s: float,
        *,
        passing: bool = False,
        increasing: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """Send one channel's rows. With ``passing`` (a channel of an order with channels after it) the rows
        it does not take are returned, in plan order, rather than counted as blocked (none are queued past
        the wave's capacity). ``increasing``: the customers strictly increase."""
        cfg = self.channels.configs[c]
        rec = self.recorder
        planned = (customer, creative, audience)
        # Positions in the planned rows of the rows still taken (only tracked when the rest passes on).
        taken = np.arange(customer.shape[0]) if passing else None

        # 1. Holdout and opt-outs.
        # 2. Weekly frequency cap.
        ok, unreachable, capped = self._sendable(c, customer, cfg.frequency_cap_per_week)
        if not passing:
            rec.add("blocked_not_reachable", unreachable)
            rec.add("blocked_frequency_cap", capped)
        if not ok.all():
            customer, creative = customer[ok], creative[ok]
            audience = None if audience is None else audience[ok]
            taken = None if taken is None else taken[ok]

        # 3. Price per contact; paid platforms refuse small audiences and charge more for narrow ones.
        if cfg.paid:
            ad_set = creative.astype(np.int64) if audience is None else audience
            _, inverse, sizes = np.unique(ad_set, return_inverse=True, return_counts=True)
            size = sizes[inverse]
            big_enough = size >= cfg.min_audience
            if not passing:
                rec.add("refused_small_audience", int((~big_enough).sum()))
            customer, creative, size = customer[big_enough], creative[big_enough], size[big_enough]
            taken = None if taken is None else taken[big_enough]
            price = cpm_per_impression(cfg, size.astype(np.float64))
        else:
            price = None

        # In an order, a channel takes only what it can push before the next wave; the rest passes on.
        if passing:
            room = self._wave_room(c, cfg, t_event_s)
            if customer.shape[0] > room:
                customer, creative = customer[:room], creative[:room]
                price = None if price is None else price[:room]
                taken = None if taken is None else taken[:room]

        # 4. Budget: contacts are funded in plan order until the money runs out.
        if self.channels.budget_left is not None and customer.shape[0]:
            new_creatives = self._new_creatives(creative)
            creative_cost = new_creatives.shape[0] * self.catalogue.production_cost
            cost = np.cumsum(price) if price is not None else cfg.cost_per_send * np.arange(1, customer.shape[0] + 1)
            affordable = int(np.searchsorted(cost, self.channels.budget_left - creative_cost, side="right"))
            if affordable < customer.shape[0]:
                if not passing:
                    rec.add("blocked_budget", customer.shape[0] - affordable)
                customer, creative = customer[:affordable], creative[:affordable]
                price = None if price is None else price[:affordable]
                taken = None if taken is None else taken[:affordable]

        rest = None
        if taken is not None:
            not_taken = np.ones(planned[0].shape[0], bool)
            not_taken[taken] = False
            rest = (
                planned[0][not_taken],
                planned[1][not_taken],
                None if planned[2] is None else planned[2][not_taken],
            )
        if customer.shape[0] == 0:
            return rest

        # 5. When each send can leave: local send hour, quiet hours, then the channel's capacity.
        schedule = self._send_schedule(cfg, customer, t_event_s, day_start_s, c)

        # 6. Creatives put into use pay their production cost once.
        new_creatives = self._new_creatives(creative)
        if new_creatives.shape[0]:
            self.channels.creatives_used[new_creatives] = True
            production = new_creatives.shape[0] * self.catalogue.production_cost
            rec.add("creatives_used", new_creatives.shape[0])
            rec.add_at("cost_creatives", max(t_event_s, float(schedule.starts.min())), production)
            self._spend(production)

        # 7. Send and draw responses block by block: temporaries stay small whatever the wave's size. A block's
        # rows stay in plan order (for the policies here, ascending customers): each gets its departure, and
        # every later pass reads the customers' state in one sweep (§15.9).
        for lo in range(0, customer.shape[0], RESPONSE_CHUNK):
            hi = lo + RESPONSE_CHUNK
            planned_departure, bounds = schedule.departures(lo, hi)
            departure, block_customer, block_creative, block_price, span = self.block_rules(
                cfg,
                planned_departure,
                customer[lo:hi],
                creative[lo:hi],
                None if price is None else price[lo:hi],
                bounds,
            )
            if block_customer.shape[0] == 0:
                continue
            names = self.channel_metrics[c]
            sent = rec.day_counts(departure, span=span)
            if block_price is not None:
                rec.add_day_sums(("cost_media", names["cost"]), departure, block_price)
                self._spend(float(block_price.sum()))
            else:
                rec.add_day_counts("cost_sends", sent, each=cfg.cost_per_send)
                rec.add_day_counts(names["cost"], sent, each=cfg.cost_per_send)
                self._spend(cfg.cost_per_send * departure.shape[0])
            rec.add_day_counts("sends", sent, each=1.0)
            rec.add_day_counts(names["sends"], sent, each=1.0)
            self._dispatch(c, cfg, block_customer, block_creative, departure, span, increasing)
        return rest

    def _sendable(self, c: int, customer: np.ndarray, cap: int) -> tuple[np.ndarray, int, int]:
        """Rows that may be sent on channel ``c`` (holdout, opt-in, weekly ``cap``), and the counts refused
        as unreachable and as capped. A sharded coordinator asks the shards instead."""
        week = self.state.week_counter(c, self.population.n)
        return kernels.sendable(customer, self.contactable, self.state.optin, week, c, cap)  # type: ignore[no-any-return]

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
        """Hand a block of sends (in plan order) to the shards that hold their customers. A sharded
        coordinator sends them to its workers instead. ``span``: bounds of the departures (block_rules');
        ``increasing``: the customers strictly increase (so do a shard's, a subsequence)."""
        week = self.state.week_counter(c, self.population.n)
        for shard, rows in self._split_by_shard(customer):
            if isinstance(rows, slice):
                self._respond(c, cfg, customer, creative, departure, week, shard.pending, span, increasing)
            else:
                self._respond(
                    c, cfg, customer[rows], creative[rows], departure[rows], week, shard.pending, span, increasing
                )

    def _split_by_shard(self, customer: np.ndarray) -> Iterator[tuple[ShardSink, np.ndarray | slice]]:
        """Each shard with the rows of ``customer`` it holds, in their order (a subsequence of the block)."""
        if len(self.shards) == 1:
            yield self.shards[0], slice(None)
            return
        for shard in self.shards:
            rows = np.flatnonzero((customer >= shard.lo) & (customer < shard.hi))
            if rows.shape[0]:
                yield shard, rows

    def _fanatic_diagnostics(self, customer: np.ndarray, creative: np.ndarray, clicked: np.ndarray) -> None:
        """Count sends to fanatics, those of a creative at least as fitting as the catalogue's best for
        them, and their clicks (counted when drawn, with the send: a diagnostic, not a timed event)."""
        fanatics = self.fanatics
        assert fanatics is not None
        rows, pos = fanatics.locate(customer)
        if rows.shape[0]:
            sent = np.einsum(
                "ij,ij->i",
                self.population.taste[customer[rows]].astype(np.float32),
                self.catalogue.directions[creative[rows]],
            )
            self.recorder.add("fanatic_sends", rows.shape[0])
            self.recorder.add("fanatic_sends_matched", int((sent >= fanatics.best_affinity[pos] - 1e-5).sum()))
        hit, _ = fanatics.locate(clicked)
        self.recorder.add("fanatic_clicks", hit.shape[0])

    def _spend(self, amount: float) -> None:
        self.channels.spent += amount
        if self.channels.budget_left is not None:
            self.channels.budget_left -= amount

    def _new_creatives(self, creative: np.ndarray) -> np.ndarray:
        count = self.catalogue.count
        used = self.channels.creatives_used
        if used.shape[0] < count:  # the policy generated creatives since the last wave
            self.channels.creatives_used = np.concatenate([used, np.zeros(count - used.shape[0], bool)])
        if self.channels.creatives_used.all():  # every creative is in use already (a pass saved per wave)
            return np.empty(0, np.int64)
        used_now = kernels.creatives_used(creative, count)
        return np.flatnonzero(used_now & ~self.channels.creatives_used)

    def _send_schedule(
        self, cfg: ChannelConfig, customer: np.ndarray, t_event_s: float, day_start_s: float, c: int
    ) -> _Schedule:
        """When each send of the wave can leave.

        All customers of a region share a release time (their local send hour, pushed past quiet hours),
        so the channel's capacity queue works on a handful of groups: regions go in order of release, and
        within a region sends keep the plan's order.
        """
        rank_of_region, release, deferred = self.release_groups(cfg, t_event_s, day_start_s)
        group, counts = kernels.release_groups(customer, self.population.region, rank_of_region)
        starts = self.queue_groups(cfg, c, rank_of_region, release, deferred, counts)
        return _Schedule(group=group, starts=starts, spacing_s=HOUR_S / cfg.capacity_per_hour)

    def release_groups(
        self, cfg: ChannelConfig, t_event_s: float, day_start_s: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The wave's groups: (uint8 rank of each region's group, release time of each group in rank order,
        bool per region: its release was deferred past quiet hours)."""
        schedule = self.scenario.schedule
        send_s = day_start_s + schedule.send_hour * HOUR_S
        rel = self.region_rel_s
        release = send_s - rel if schedule.send_in_local_time else np.full(rel.shape[0], send_s)
        release = np.maximum(release, t_event_s)
        release, deferred = defer_past_quiet_hours(release, rel, cfg)
        group_order = np.argsort(release, kind="stable")  # groups = regions, by release time
        rank_of_region = np.empty(group_order.shape[0], np.uint8)
        rank_of_region[group_order] = np.arange(group_order.shape[0])
        return rank_of_region, release[group_order], deferred

    def queue_groups(
        self,
        cfg: ChannelConfig,
        c: int,
        rank_of_region: np.ndarray,
        release: np.ndarray,
        deferred: np.ndarray,
        counts: np.ndarray,
    ) -> np.ndarray:
        """First departure of each group of ``counts`` sends (by rank) through channel ``c``'s capacity queue,
        which it advances; counts the sends whose release was deferred past quiet hours."""
        if deferred.any():
            self.recorder.add("deferred_quiet_hours", int(counts[rank_of_region[np.flatnonzero(deferred)]].sum()))
        starts, free = capacity_departures(release, counts, cfg.capacity_per_hour, self.channels.free_at_s[c])
        self.channels.free_at_s[c] = free
        return starts  # type: ignore[no-any-return]

    def block_rules(
        self,
        cfg: ChannelConfig,
        departure: np.ndarray,
        customer: np.ndarray,
        creative: np.ndarray,
        price: np.ndarray | None,
        bounds: tuple[float, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, tuple[float, float] | None]:
        """The per-row rules on a block of sends (in plan order), after the capacity queue: quiet hours (a send
        pushed into them waits) and the horizon (a send that would leave after the run's end is not sent);
        both are counted. One process and the shards (which plan their rows themselves,
        engine/shard_planning.py) call this same step, so they cannot drift apart.

        Returns the sends left and the least and greatest departure before the horizon's cut (bounds, what
        Recorder.day_counts' ``span`` takes; None for no sends): found once here, where the block's later
        steps each took their own passes, or given (``bounds``, send_kernels.departure_bounds) and kept
        unless quiet hours move departures."""
        rec = self.recorder
        if cfg.quiet_hours_start is not None:
            # A backlog can push sends into the next quiet hours: compliance wins over the capacity
            # schedule, so those wait for the quiet hours to end (the channel may briefly exceed its
            # hourly capacity then).
            rel = self.region_rel_s[self.population.region[customer]]
            departure, deferred = defer_past_quiet_hours(departure, rel, cfg)
            if deferred.any():
                rec.add("deferred_quiet_hours", int(deferred.sum()))
                bounds = None
        # A send that would leave at or after the run's end is not sent. The last rows of each group are the
        # late ones, so a block has some only near the end of a run: a max says whether to look.
        span = bounds
        if span is None and departure.shape[0]:
            span = (float(departure.min()), float(departure.max()))
        if span is not None and span[1] >= self.horizon_s:
            within = departure < self.horizon_s
            rec.add("blocked_horizon_end", departure.shape[0] - int(within.sum()))
            departure, customer, creative = departure[within], customer[within], creative[within]
            price = None if price is None else price[within]
        return departure, customer, creative, price, span

    def _respond(
        self,
        c: int,
        cfg: ChannelConfig,
        customer: np.ndarray,
        creative: np.ndarray,
        departure: np.ndarray,
        week: np.ndarray,
        pending: PendingEvents,
        span: tuple[float, float] | None = None,
        increasing: bool = False,
    ) -> None:
        """Draw delivery, reading, pre-fetch, clicks, unsubscribes and replies for one block of sends
        (``span``: bounds of the departures, found here when not given; ``increasing``: the customers strictly
        increase, and so do the readers' and the unread rows', which are subsequences).

        The arithmetic is float32 (probabilities and uniforms need no more; it runs several times faster),
        and the costly exact probabilities are computed only for rows that an upper bound cannot rule
        out, which gives exactly the same outcomes as computing them for every row.
        """
        response = self.scenario.response
        state = self.state
        pop = self.population
        draws = self.draws
        n = customer.shape[0]
        segments = draws.segments(customer, increasing)
        # One float64 draw per send carries its two float32 uniforms, the send's and the unsubscribe's
        # (kernels.send_uniform_numpy, kernels.unsubscribe_uniform_numpy): one generator call per chunk.
        draw = draws.random(customer, Draw.SEND, np.float64, segments)

        # Fatigue as of this send (earlier contacts only), then this send adds one unit. Customers are
        # unique within a wave, so a plain gather/scatter is exact here. The send is also counted (weekly
        # cap, engagement history).
        stock = state.fatigue
        grow = np.exp(kernels.growth_exponents(departure, stock.epoch_s, 1.0 / stock.tau_s))
        fatigue, top = kernels.touch(stock.stored, grow, week, state.sends, customer)

        # One pass sorts the rows by their uniforms (kernels.split_sends). Reads: P = delivery x open rate x
        # exp(-kappa f) <= delivery x open rate, so only rows under that bound need the exact probability.
        # Unsubscribes are bounded the same way by the probability at the block's top fatigue.
        bound = np.float32(cfg.delivery_rate * cfg.open_rate)
        prefetch_top = bound
        if cfg.recorded_open_inflation > 0:
            prefetch_top = np.float32(bound + cfg.recorded_open_inflation * (cfg.delivery_rate - bound))
        unsub_bound = np.float32(0.0)
        if cfg.unsubscribe_rate > 0:
            unsub_bound = np.float32(expit(logit(cfg.unsubscribe_rate) + response.fatigue_unsubscribe_zeta * top))
        d_idx, cand, above, unsub_cand = kernels.split_sends(
            draw, np.float32(cfg.delivery_rate), bound, prefetch_top, unsub_bound
        )

        # Deliveries are counted as they happen (latency is minutes, the series is daily) at departure +
        # latency, per day in one compiled pass without an array of every delivery time; the policy gets a
        # "delivered" event per message only if it asked for them.
        latency_s = cfg.delivery_latency_minutes * 60.0
        if span is None and n:
            span = (float(departure.min()), float(departure.max()))
        delivered = self.recorder.day_counts(departure, d_idx, latency_s, self.horizon_s, span=span)
        self.recorder.add_day_counts("delivered", delivered, each=1.0)
        self.recorder.add_day_counts(self.channel_metrics[c]["delivered"], delivered, each=1.0)
        if self.report_deliveries and self.delivery_cells is not None:  # a shard's waves planned on the shards
            self.delivery_cells.add(d_idx, customer, creative, departure, latency_s, span)
        elif self.report_deliveries:
            d_at = departure + latency_s if d_idx is None else departure[d_idx] + latency_s
            d_customer = customer if d_idx is None else customer[d_idx]
            d_creative = creative if d_idx is None else creative[d_idx]
            d_bucket, d_at, d_customer, d_creative = send_kernels.order_events(
                d_at, pending.bucket_s, d_customer, d_creative
            )
            pending.add("delivered", d_customer, d_creative, c, d_at, sorted_buckets=d_bucket)

        # Reads: the candidates' exact probabilities (exp stays in numpy), then one pass picks the reads and
        # gathers what the read pipeline needs of each (send_kernels.pick_reads).
        decay = np.exp(send_kernels.read_exponents(fatigue, cand, np.float32(-cfg.fatigue_open_kappa)))
        r_cust, r_creative, r_delivered_at, r_fatigue, v, unread = send_kernels.pick_reads(
            cand, decay, bound, draw, customer, creative, departure, latency_s, fatigue
        )
        n_read = r_cust.shape[0]
        reader_segments = draws.segments(r_cust, increasing)
        delay_s = (
            cfg.open_delay_median_minutes
            * 60.0
            * np.exp(cfg.open_delay_sigma * draws.standard_normal(r_cust, Draw.READ_DELAY, np.float32, reader_segments))
        )
        # Each read's time (moved into the reader's active window) and click log-odds, gathered while reads
        # are still in plan order (customers ascending for the policies here, so the gathers stream through memory).
        jitter = (
            draws.random(r_cust, Draw.ACTIVE_WINDOW, np.float32, reader_segments)
            if cfg.opens_wait_for_active_window
            else None
        )
        read_at, logit_click = kernels.read_outcomes(
            r_delivered_at + delay_s,
            r_cust,
            r_creative,
            r_fatigue,
            jitter,
            pop.region,
            self.region_rel_s,
            pop.active_start_hour,
            pop.active_hours,
            pop.taste,
            self.catalogue.directions,
            self.catalogue.engine_quality(),
            pop.warmth,
            self.click_coefficients[c],
        )
        # Ordered by release bucket in one pass that moves every attribute (send_kernels.order_reads).
        read_bucket, read_at, r_cust, r_creative, logit_click, v = send_kernels.order_reads(
            read_at, pending.bucket_s, r_cust, r_creative, logit_click, v
        )
        open_creative = r_creative if self.report_open_creatives else None
        pending.add(("read", "open"), r_cust, open_creative, c, read_at, sorted_buckets=read_bucket)

        # Clicks among reads: the read's uniform, rescaled (v), is a fresh uniform for the click decision.
        p_click = expit(logit_click)
        click_cust, click_creative, click_read_at, ratio = send_kernels.pick_clicks(
            v, p_click, r_cust, r_creative, read_at
        )
        click_at = click_read_at - CLICK_DELAY_MEAN_S * np.log(ratio)
        pending.add("click", click_cust, click_creative, c, click_at)
        if self.fanatics is not None:
            self._fanatic_diagnostics(customer, creative, click_cust)

        # Recorded opens also include pre-fetch of delivered-but-unread messages (mail privacy features).
        # Rows with bound <= u < delivery_rate are unread and delivered, and (u - bound)/(rate - bound) is a
        # fresh uniform for them; the few rows under the bound that fatigue kept unread draw a new one.
        if cfg.recorded_open_inflation > 0:
            unread_customer = customer[unread]
            coin = draws.random(unread_customer, Draw.PREFETCH, np.float32, draws.segments(unread_customer, increasing))
            inflation = np.float32(cfg.recorded_open_inflation)
            if self.report_open_creatives:  # the policy learns from opens: each keeps its creative and time
                prefetch_cust, prefetch_creative, prefetch_at = send_kernels.pick_prefetch(
                    unread, coin, inflation, above, customer, creative, departure, latency_s, PREFETCH_DELAY_S
                )
                # Put in bucket order here, in one compiled pass (the rows are in plan order, not in time order).
                prefetch_bucket, prefetch_at, prefetch_cust, prefetch_creative = send_kernels.order_events(
                    prefetch_at, pending.bucket_s, prefetch_cust, prefetch_creative
                )
                pending.add("open", prefetch_cust, prefetch_creative, c, prefetch_at, sorted_buckets=prefetch_bucket)
            elif self.keep_open_customers:
                # Counted per customer at release: the same rows in the same buckets, keeping their customers and
                # buckets alone (8 bytes a row, where a row with its creative and time took 20), in one compiled pass.
                prefetch_bucket, prefetch_cust = send_kernels.prefetch_customers(
                    unread, coin, inflation, above, customer, departure, latency_s, PREFETCH_DELAY_S, pending.bucket_s
                )
                pending.add("open", prefetch_cust, None, c, None, sorted_buckets=prefetch_bucket)
            elif n:
                # Only counted per day at release: how many in each bucket, and no row kept.
                assert span is not None
                low, high = send_kernels.prefetch_bucket_span(span, latency_s, PREFETCH_DELAY_S, pending.bucket_s)
                counts = send_kernels.prefetch_bucket_counts(
                    unread, coin, inflation, above, departure, latency_s, PREFETCH_DELAY_S, pending.bucket_s, low, high
                )
                pending.add_counts("open", low, counts)

        # Unsubscribes, more likely when fatigued; bounded by the probability at the wave's top fatigue.
        if cfg.unsubscribe_rate > 0:
            base = logit(cfg.unsubscribe_rate)
            zeta = response.fatigue_unsubscribe_zeta
            cand = unsub_cand
            exact = expit(base + zeta * fatigue[cand].astype(np.float64))
            unsub = cand[kernels.unsubscribe_uniform_numpy(draw[cand]) < exact]
            unsub_at = (departure[unsub] + latency_s) + cfg.open_delay_median_minutes * 60.0  # delivered, then read
            pending.add("unsubscribe", customer[unsub], creative[unsub], c, unsub_at)

        # Replies on conversational channels.
        if cfg.reply_rate > 0 and n_read:
            # The reads are in bucket order by now (order_reads), not in the readers' order: segments of their own.
            reply = draws.random(r_cust, Draw.REPLY, np.float32) < np.float32(cfg.reply_rate)
            pending.add(
                "reply",
                r_cust[reply],
                r_creative[reply],
                c,
                read_at[reply] + REPLY_DELAY_S,
            )
            if self.reply_sink is not None:  # the inbound desk: each reply starts a conversation
                self.reply_sink(r_cust[reply], _channel_column(c, int(reply.sum())), read_at[reply] + REPLY_DELAY_S)


def _channel_column(c: int, n: int) -> np.ndarray:
    return np.full(n, c, np.int8)
