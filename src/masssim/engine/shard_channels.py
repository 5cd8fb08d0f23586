"""Waves planned on the shards on a paid channel or through an arm's channel order (docs/model.md §16.2).

The plain waves of :mod:`masssim.engine.shard_planning` need from the whole plan only counts; two rules of one
process's wave (:meth:`masssim.engine.outbound.OutboundSender._send_channel`) need more:

* **a paid channel** prices each row by the size of its ad set (``segment * creatives + creative``: the
  policy's audience), counted over the whole plan, refuses the ad sets below the platform's minimum, funds
  the rows in plan order from the running sum of their prices (``np.cumsum``), and sums the money of each
  response block in departure order. Here each shard sends its rows' ad-set keys in plan order (8 bytes per
  planned row); the coordinator concatenates them (one process's array), and computes the sizes, the
  refusals, the prices and the budget's cut-off with the same operations as one process; the shards get
  back the refused ad sets (their keys). Per block, each shard returns its sends' rows in the plan and their
  departures (16 bytes per paid send), in plan order; the coordinator joins them in shard order, which is one
  process's block in its (plan) order (a shard's rows are a contiguous run of the plan), and sums the prices
  in that order.
* **a channel order** offers the plan to its channels one after another; each takes in plan order what it
  can (opted in, under its cap, its paid minimum, its room before the next wave, the budget) and passes
  the rest on, in plan order. A shard's rows are a contiguous piece of the plan, and so is its part of what
  a channel takes and of what it passes on; the room and the budget are one cut-off row each, found from
  counts as for the budget of a plain wave. Each shard keeps the rows it passes on for the next channel.

So every send leaves at the same time and costs the same as in one process, and the money is summed in its
order: the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from masssim.engine import kernels, outbound
from masssim.engine.shard_planning import (
    ShardWave,
    ShardWaveCoordinator,
    affordable_sends,
    integer_states,
    padded_sum,
    uniform_states,
)
from masssim.model.channels import HOUR_S, cpm_per_impression
from masssim.policies.base import ARM_CHANNELS, ShardRule

if TYPE_CHECKING:
    from masssim.engine.sim import ArmSimulation


class ChannelShardWave(ShardWave):
    """A shard's part of waves planned on the shards on a paid channel or through a channel order: the
    wave's rows (``planned``, in plan order = customer order) are offered to each channel in turn."""

    def __init__(self, sim: ArmSimulation, segments: tuple[np.ndarray, np.ndarray] | None) -> None:
        super().__init__(sim, segments)
        self._offer(self.customer, self.creative)

    def _offer(self, customer: np.ndarray, creative: np.ndarray) -> None:
        """The rows a channel is offered; ``taken``: positions in them of the rows it still takes."""
        self.planned_customer, self.planned_creative = customer, creative
        self.taken = np.arange(customer.shape[0])
        self.customer, self.creative = customer, creative

    def draw_creatives(self, state: dict[str, Any] | None) -> int:
        """Draw the rule's creatives (from ``state``); the wave's rows are then offered to its channels."""
        self._draw_creatives(state)
        self._offer(self.customer, self.creative)
        return int(self.customer.shape[0])

    def offer(self, c: int, cap: int, passing: bool, paid: bool) -> tuple[int, Any]:
        """Offer the rows to channel ``c``: drop those it refuses (holdout, opt-out, weekly cap; counted
        unless they pass on). Returns the rows offered and, on a paid channel, the ad-set key of each row
        kept (in plan order), else the counts of :meth:`_counts`."""
        sim = self.sim
        ok, unreachable, capped = sim.sender._sendable(c, self.planned_customer, cap)
        if not passing:
            sim.recorder.add("blocked_not_reachable", unreachable)
            sim.recorder.add("blocked_frequency_cap", capped)
        self.taken = np.flatnonzero(ok)
        self.customer, self.creative = self.planned_customer[self.taken], self.planned_creative[self.taken]
        offered = int(self.planned_customer.shape[0])
        if paid:
            return offered, self._audience_keys()
        return offered, self._counts()

    def _audience_keys(self) -> np.ndarray:
        """Each row's ad set as the policy names it: ``segment * creatives + creative`` (the creative alone
        when there is one segment, as a plan without ``audience``)."""
        creative = self.creative.astype(np.int64)
        if self.segment is None:
            return creative
        return self.segment[self.customer].astype(np.int64) * np.int64(self.sim.catalogue.count) + creative

    def refuse_audiences(self, small: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        """Drop the rows of the ad sets below the platform's minimum (``small``: their sorted keys)."""
        if small.shape[0]:
            big = ~np.isin(self._audience_keys(), small)
            self.taken = self.taken[big]
            self.customer, self.creative = self.customer[big], self.creative[big]
        return self._counts()

    def cut(self, keep: int) -> tuple[int, np.ndarray, np.ndarray]:
        self.taken = self.taken[:keep]
        return super().cut(keep)

    def send_channel(
        self,
        c: int,
        keep: int,
        passing: bool,
        paid: bool,
        rank_of_region: np.ndarray,
        starts: np.ndarray,
        spacing_s: float,
        before: np.ndarray,
        offset: int,
        block: int,
    ) -> list[tuple[Any, ...]]:
        """Send the first ``keep`` rows the channel takes (as :meth:`ShardWave.send`); keep what it does not
        take, in order, for the next channel. Returns per block the sends per day, or on a paid channel each
        send's row (among the ``keep``) and departure, in plan order."""
        sim = self.sim
        sender = sim.sender
        cfg = sender.channels.configs[c]
        rows = self.taken[:keep]
        customer, creative = self.planned_customer[rows], self.planned_creative[rows]
        if passing:
            rest = np.ones(self.planned_customer.shape[0], bool)
            rest[rows] = False
            self._offer(self.planned_customer[rest], self.planned_creative[rest])
        else:
            self._offer(self.planned_customer[:0], self.planned_creative[:0])
        out: list[tuple[Any, ...]] = []
        if keep == 0:
            return out
        increasing = kernels.increasing(customer)  # kept by every block's subset (ChunkDraws.segments)
        for b, departure, block_customer, block_creative, sent, span in self._send_blocks(
            c, customer, creative, rank_of_region, starts, spacing_s, before, offset, block
        ):
            if paid:  # rows are in customer order, so a send's row is found from its customer
                row = np.searchsorted(customer, block_customer).astype(np.int64)
                out.append((b, row, departure))
            else:
                out.append((b, sent))
            sender._dispatch(c, cfg, block_customer, block_creative, departure, span, increasing)
        return out


class ChannelWaveCoordinator(ShardWaveCoordinator):
    """The coordinator's steps of a wave planned on the shards on a paid channel or through a channel order."""

    def send(self, rule: ShardRule, reachable: list[np.ndarray], t_event_s: float, day_start_s: float) -> None:
        shards = range(len(self.group.ranges))
        due = self._draw_uniforms(rule, reachable)
        integers: list[Any] = [None] * len(shards)
        if rule.draws_integers:
            integers = integer_states(self.rng, [int(d) for d in due], rule.creatives)
        self.group.call("rule_creatives", {s: (integers[s],) for s in shards})
        sender = self.sender
        order = sender.channel_order if rule.channel == ARM_CHANNELS else (rule.channel,)
        for position, c in enumerate(order):
            passing = position < len(order) - 1
            rest = self._channel(c, passing, t_event_s, day_start_s)
            if not passing or rest == 0:
                return
            sender.recorder.add("channel_fallbacks", rest)

    def _draw_uniforms(self, rule: ShardRule, reachable: list[np.ndarray]) -> list[Any]:
        """The rule's selection and uniform step on the shards (as :meth:`ShardWaveCoordinator.send`)."""
        shards = range(len(self.group.ranges))
        per_shard = [padded_sum([r], rule.choice.shape[0]) for r in reachable]
        kept = [int(r.sum()) if rule.keep is None else int(r[rule.keep].sum()) for r in per_shard]
        uniforms: list[Any] = [None] * len(shards)
        if rule.keep_probability is not None:
            uniforms = uniform_states(self.rng, [int(r.sum()) for r in per_shard])
        elif rule.test_share is not None:
            uniforms = uniform_states(self.rng, kept)
        return list(self.group.call("rule_draw", {s: (rule, uniforms[s]) for s in shards}))

    def _cut(self, parts: list[list[Any]], funded: int) -> None:
        """Keep the plan's first ``funded`` rows: the shard in which the cut-off falls cuts there."""
        first = 0
        for s, p in enumerate(parts):
            rows = int(p[0])
            k = min(max(funded - first, 0), rows)
            if 0 < k < rows:
                (parts[s],) = self.group.call("rule_cut", {s: (k,)})
            elif k == 0:  # nothing taken there (its sends are cut to 0 rows by the send call)
                parts[s] = [0, np.zeros_like(p[1]), np.zeros_like(p[2])]
            first += rows

    def _channel(self, c: int, passing: bool, t_event_s: float, day_start_s: float) -> int:
        """Offer the shards' rows to channel ``c`` (one process's ``_send_channel``); the rows passed on."""
        sender, channels, rec = self.sender, self.sender.channels, self.sender.recorder
        cfg = channels.configs[c]
        shards = range(len(self.group.ranges))
        offer = (c, cfg.frequency_cap_per_week, passing, cfg.paid)
        answers = self.group.call("rule_offer", dict.fromkeys(shards, offer))
        offered = sum(int(a[0]) for a in answers)
        price = None
        if cfg.paid:
            # One process's step 3 on one process's array of ad-set keys (the shards' in plan order).
            keys = np.concatenate([a[1] for a in answers])
            unique, inverse, sizes = np.unique(keys, return_inverse=True, return_counts=True)
            size = sizes[inverse]
            big_enough = size >= cfg.min_audience
            if not passing:
                rec.add("refused_small_audience", int((~big_enough).sum()))
            price = cpm_per_impression(cfg, size[big_enough].astype(np.float64))
            small = unique[sizes < cfg.min_audience]
            parts = [list(p) for p in self.group.call("rule_audiences", dict.fromkeys(shards, (small,)))]
        else:
            parts = [list(a[1]) for a in answers]
        n = sum(int(p[0]) for p in parts)
        funded = n
        if passing:  # the channel takes only what it can push before the next wave
            funded = min(n, sender._wave_room(c, cfg, t_event_s))
            if funded < n:
                self._cut(parts, funded)
                price = None if price is None else price[:funded]
        if channels.budget_left is not None and funded:
            creative_cost = self._new_creatives(parts).shape[0] * sender.catalogue.production_cost
            limit = channels.budget_left - creative_cost
            if price is not None:
                affordable = int(np.searchsorted(np.cumsum(price), limit, side="right"))
            else:
                affordable = affordable_sends(cfg.cost_per_send, funded, limit)
            if affordable < funded:
                if not passing:
                    rec.add("blocked_budget", funded - affordable)
                self._cut(parts, affordable)
                price = None if price is None else price[:affordable]
                funded = affordable
        keep = [int(p[0]) for p in parts]
        if funded == 0:
            self.group.call("rule_channel_send", {s: (c, 0, passing, cfg.paid, *([None] * 6)) for s in shards})
            return offered
        # Departures through the capacity queue; creatives put into use (as ShardWaveCoordinator._send_rows).
        rank_of_region, starts, by_group = self._departures(cfg, c, parts, t_event_s, day_start_s)
        block = outbound.RESPONSE_CHUNK
        before = np.concatenate(([np.zeros_like(by_group[0])], np.cumsum(by_group, axis=0)[:-1]))
        placed = np.concatenate(([0], np.cumsum(keep)[:-1])).astype(np.int64)
        spacing_s = HOUR_S / cfg.capacity_per_hour
        answers = self.group.call(
            "rule_channel_send",
            {
                s: (c, keep[s], passing, cfg.paid, rank_of_region, starts, spacing_s, before[s], int(placed[s]), block)
                for s in shards
            },
        )
        names = sender.channel_metrics[c]
        if price is None:
            days: dict[int, np.ndarray] = {}
            for answer in answers:
                for b, counts in answer:
                    days[b] = counts if b not in days else days[b] + counts
            for b in sorted(days):
                counts = days[b]
                rec.add_day_counts("cost_sends", counts, each=cfg.cost_per_send)
                rec.add_day_counts(names["cost"], counts, each=cfg.cost_per_send)
                sender._spend(cfg.cost_per_send * int(counts.sum()))
        else:
            pieces: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
            for s, answer in enumerate(answers):
                for b, row, departure in answer:
                    pieces.setdefault(b, []).append((row + placed[s], departure))
            for b in sorted(pieces):
                # The shards' rows of a block, in shard order, are the one process's block in its own (plan)
                # order: the prices are summed in the same order, so to the same bytes.
                row, departure = block_rows(pieces[b])
                block_price = price[row]
                rec.add_day_sums(("cost_media", names["cost"]), departure, block_price)
                sender._spend(float(block_price.sum()))
        return offered - funded


def block_rows(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One process's block of a paid wave from the shards' parts of it, each (rows in the plan, departures) in
    shard order: a shard's rows are a run of the plan, in its order, so joining them in shard order gives the
    one process's block in its (plan) order."""
    return np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])
