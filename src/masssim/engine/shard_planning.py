"""Waves planned on the shards: the policy decides a rule from merged statistics, each shard applies it to
its own customers, and only counts, offsets and the budget's running total travel (docs/model.md §16.2).

One process plans a wave as one array of rows in customer order and runs the wave's rules on it in that
order (:class:`masssim.engine.outbound.OutboundSender`). A shard holds a run of consecutive customers, so its
rows are a contiguous piece of that array, and every rule that depends on the plan's global order depends on
it only through counts of the rows before a shard's piece:

* the policy's draws (its own stream, one value per row in row order): a shard starts from the stream's
  state after the draws of the shards before it (:func:`uniform_states`, :func:`integer_states`);
* the budget funds the first rows of the plan: one cut-off row index, from the shards' row counts;
* the capacity queue gives the j-th send of a region group ``start + j * spacing``: a shard's first slot in
  each group is the number of that group's rows in the shards before it;
* response blocks are runs of ``RESPONSE_CHUNK`` rows of the plan: a shard knows its first row's index;
* quiet-hour deferral and the horizon cut are per row; money is summed on the coordinator from the shards'
  sends per (block, day), integers, with the same float operations in the same order as one process.

So each send leaves at the same time, draws the same numbers and costs the same to the bit as in one process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from masssim.engine import kernels, outbound, send_kernels
from masssim.engine.delivery_cells import DeliveryCells, count_cells
from masssim.model.channels import HOUR_S
from masssim.policies.base import (
    ShardRule,
    channel_bits,
    reachable_rows,
    reachable_rows_and_segments,
    uniform_below,
)
from masssim.policies.bounded_integers import draw_int32
from masssim.policies.cell_counting import sum_by_key
from masssim.policies.clustering import PROFILE_CHUNK, profile_code

if TYPE_CHECKING:
    from masssim.engine.outbound import OutboundSender
    from masssim.engine.sim import ArmSimulation
    from masssim.engine.state import Recorder

DRAW_PIECE = 1 << 22  # the coordinator skips a shard's integer draws in pieces of this many (bounded memory)


# --------------------------------------------------------------------------------------------------
# The policy's stream, cut at the shards' boundaries
# --------------------------------------------------------------------------------------------------


def _advanced(state: Any, steps: int) -> Any:
    """A PCG64 state moved on by ``steps`` 64-bit outputs (a float64 uniform is one). ``advance`` drops the
    half-used 32-bit output an int32 draw may have left; uniforms do not touch it, so it is put back."""
    bits = np.random.PCG64()
    bits.state = state
    bits.advance(steps)
    out: Any = bits.state
    out["has_uint32"], out["uinteger"] = state["has_uint32"], state["uinteger"]
    return out


def _check_pcg64(rng: np.random.Generator) -> None:
    if not isinstance(rng.bit_generator, np.random.PCG64):
        raise TypeError("planning on shards needs the policy's stream to be a PCG64 generator")


def uniform_states(rng: np.random.Generator, counts: list[int]) -> list[Any]:
    """Where each shard's uniforms start when shard s draws ``counts[s]`` of them after the shards before it;
    ``rng`` is left after all of them, as one ``rng.random(sum(counts))`` would leave it. O(shards)."""
    _check_pcg64(rng)
    start: Any = rng.bit_generator.state
    states, done = [], 0
    for count in counts:
        states.append(_advanced(start, done))
        done += count
    rng.bit_generator.state = _advanced(start, done)
    return states


def integer_states(rng: np.random.Generator, counts: list[int], high: int) -> list[Any]:
    """Where each shard's ``rng.integers(0, high, dtype=int32)`` draws start (``counts[s]`` of them, after the
    shards before it). Bounded integers reject some outputs, so the coordinator looks at every output to find
    the boundaries (:func:`skip_integers`): O(rows), about a nanosecond each. ``rng`` is left after all."""
    _check_pcg64(rng)
    states: list[Any] = []
    for count in counts:
        states.append(rng.bit_generator.state)
        skip_integers(rng, count, high)
    return states


def skip_integers(rng: np.random.Generator, count: int, high: int) -> None:
    """Move ``rng`` (PCG64) on exactly as ``rng.integers(0, high, size=count, dtype=np.int32)`` would.

    numpy draws a bounded int32 from one 32-bit output x (the low half of a 64-bit output, then its high
    half, kept in the state in between) by Lemire's method: ``x * high`` modulo 2^32 below
    ``threshold = 2^32 mod high`` rejects x and takes the next output. So when no output of a run of whole
    64-bit outputs falls below the threshold, each draw takes one 32-bit output and the run is skipped by
    reading the raw outputs and checking them (two array passes, several times cheaper than drawing). A run
    with a rejection (chance ``threshold / 2^32`` per draw: about one in 10^8 for a few dozen creatives),
    a half-used output and a last odd draw are drawn with ``integers`` itself."""
    bits = rng.bit_generator
    threshold = (1 << 32) % high if high > 1 else 0
    checkable = sys.byteorder == "little" and 1 < high <= 1 << 31  # the uint32 view below is (low, high)
    left = count
    while left > 0:
        if not checkable or left == 1 or bits.state["has_uint32"]:
            take = left if not checkable else 1
            for lo in range(0, take, DRAW_PIECE):
                rng.integers(0, high, size=min(DRAW_PIECE, take - lo), dtype=np.int32)
            left -= take
            continue
        pairs = min(left, DRAW_PIECE) // 2
        before = bits.state
        raw = bits.random_raw(pairs)
        last_high = int(raw[-1] >> np.uint64(32))
        leftover = raw.view(np.uint32)
        leftover *= np.uint32(high)  # wraps modulo 2^32: the low word of x * high
        if int(leftover.min()) < threshold:  # a rejection in this run: draw it as numpy does
            bits.state = before
            rng.integers(0, high, size=2 * pairs, dtype=np.int32)
        else:  # numpy leaves the last high half in the state (unused once taken): the same state to the bit
            state: Any = bits.state
            state["uinteger"] = last_high
            bits.state = state
        left -= 2 * pairs


def _generator(state: Any) -> np.random.Generator:
    bits = np.random.PCG64()
    bits.state = state
    return np.random.Generator(bits)


def affordable_sends(each: float, n: int, limit: float) -> int:
    """``searchsorted(each * arange(1, n + 1), limit, side="right")`` without the array: the number of the
    first sends, at ``each`` apiece, the money ``limit`` funds (``each * i`` is non-decreasing in i)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if each * mid <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


# --------------------------------------------------------------------------------------------------
# A shard's side
# --------------------------------------------------------------------------------------------------


class ShardWave:
    """A shard's part of waves planned on shards: its customers' segments, and the wave's rows between the
    coordinator's calls. Customer indices here are the shard's own (0 = its first customer)."""

    def __init__(self, sim: ArmSimulation, segments: tuple[np.ndarray, np.ndarray] | None) -> None:
        self.sim = sim
        self.segment: np.ndarray | None = None
        self.n_segments = 1
        if segments is not None:
            codes, segment_of_code = segments
            self.n_segments = int(segment_of_code.max()) + 1 if segment_of_code.shape[0] else 1
            pop = sim.world.population
            # A table over the codes up to the largest (at most 64 regions x 65,536: 16 MB, of which the few
            # hundred profiles present are read): a lookup per customer, about 4 ns, where a binary search among
            # the codes took about 50 ns (4.5 s of the two shards' time at 95 million customers). -1 marks a
            # code the coordinator did not see, which would be a bug.
            table = np.full(int(codes[-1]) + 1 if codes.shape[0] else 1, -1, np.int32)
            table[codes] = segment_of_code
            # Chunk by chunk: the profile codes (int32) for the whole shard at once would add 4 bytes per
            # customer to the run's peak.
            self.segment = np.empty(pop.n, np.int32)
            for lo in range(0, pop.n, PROFILE_CHUNK):
                rows = slice(lo, lo + PROFILE_CHUNK)
                code = profile_code(pop.region[rows], pop.age_band[rows], pop.income_band[rows])
                found = self.segment[rows]
                np.take(table, code, out=found)  # a code past the table raises
                if found.shape[0] and int(found.min()) < 0:
                    raise RuntimeError("a shard's customer has a profile the policy did not segment")
        # The policy learns a delivery's cell only: deliveries are counted, not queued as events.
        self.deliveries: DeliveryCells | None = None
        if sim.sender.report_deliveries:
            if len(sim.shards) != 1:
                raise RuntimeError("waves planned on the shards need one shard per engine")
            self.deliveries = DeliveryCells(sim.shards[0].pending.bucket_s, self.segment, self.n_segments)
            sim.sender.delivery_cells = self.deliveries
        self.rule: ShardRule | None = None
        self._clear()

    def _clear(self) -> None:
        self.customer = np.empty(0, self.sim.sender.index_dtype)
        self.segment_rows = np.empty(0, np.int32)
        self.creative = np.empty(0, np.int32)
        self.choice_due = False  # the rows' creatives are their segments' choice, not yet looked up
        self.redraw: np.ndarray | None = None

    def reachable(self, week_index: int, channel: int) -> np.ndarray:
        """Start the calendar week; the reachable customers (in order) and their count per segment."""
        sim = self.sim
        sim.state.start_week(week_index)
        bits = channel_bits(channel, sim.channel_order)
        if self.segment is None:  # one segment: its count is the customers' (a bincount would hold the GIL)
            who = reachable_rows(sim.world.contactable, sim.state.optin, bits, sim.sender.index_dtype)
            # Every row's segment is 0: a view that repeats one zero, not an array as long as the rows.
            self.customer, self.segment_rows = who, np.broadcast_to(np.zeros(1, np.int32), who.shape)
            return np.array([who.shape[0]], np.int64)
        # The rows, their segments and the count per segment in one compiled pass (numpy's bincount widens the
        # segments to int64 and holds the interpreter's lock).
        who, self.segment_rows, per_segment = reachable_rows_and_segments(
            sim.world.contactable, sim.state.optin, bits, sim.sender.index_dtype, self.segment, self.n_segments
        )
        self.customer = who
        # Cut after the last segment reached, as np.bincount(minlength=1) gives it.
        reached = np.flatnonzero(per_segment)
        return per_segment[: int(reached[-1]) + 1 if reached.shape[0] else 1]

    def draw(self, rule: ShardRule, state: dict[str, Any] | None) -> int:
        """Apply the rule's selection and its uniform step (from ``state``); the number of integer draws due."""
        self.rule = rule
        who, segment = self.customer, self.segment_rows
        if rule.keep is not None:
            kept = rule.keep[segment]
            if rule.keep_probability is not None:
                assert state is not None
                probability = rule.keep_probability
                kept |= uniform_below(_generator(state), who.shape[0], lambda rows: probability[segment[rows]])
            who, segment = who[kept], segment[kept]
        self.customer, self.segment_rows = who, segment
        # Each row's creative is its segment's choice, looked up by rows() in the pass that checks the rows (or
        # drawn there instead); only a test cell, redrawn over the choice, needs the choice here.
        self.creative, self.choice_due = np.empty(0, np.int32), True
        self.redraw = None
        if rule.test_share is not None:
            assert state is not None
            self.creative, self.choice_due = self._chosen(), False
            self.redraw = uniform_below(_generator(state), who.shape[0], rule.test_share)
            return int(self.redraw.sum())
        return who.shape[0] if rule.draw_creatives else 0

    def _chosen(self) -> np.ndarray:
        """Each row's segment's choice (int32)."""
        rule = self.rule
        assert rule is not None
        if self.segment is None:  # one segment: every row gets its choice (no gather by a column of zeros)
            return np.full(self.customer.shape[0], rule.choice[0], np.int32)
        return rule.choice[self.segment_rows].astype(np.int32, copy=False)  # the gather is a new array already

    def rows(self, state: dict[str, Any] | None, cap: int) -> tuple[int, np.ndarray, np.ndarray]:
        """Draw the rule's creatives (from ``state``), drop the rows the channel refuses (holdout, opt-out,
        weekly cap; counted here), and return the rows' count, count per region and creatives used."""
        rule = self.rule
        assert rule is not None
        sim = self.sim
        sender = sim.sender
        if self.choice_due and not (rule.draw_creatives and state is not None):
            # The usual rule (each row its segment's choice): the choice, the checks of outbound's steps 1-2 and
            # the counts in one compiled pass (kernels.rule_rows), the same rows and counts as the steps apart.
            week = sender.state.week_counter(rule.channel, sender.population.n)
            self.customer, self.creative, unreachable, capped, by_region, used = kernels.rule_rows(
                self.customer,
                self.segment_rows,
                rule.choice,
                sender.contactable,
                sender.state.optin,
                week,
                rule.channel,
                cap,
                sim.world.population.region,
                sender.region_rel_s.shape[0],
                sim.catalogue.count,
            )
            self.choice_due = False
            sim.recorder.add("blocked_not_reachable", unreachable)
            sim.recorder.add("blocked_frequency_cap", capped)
            return self.customer.shape[0], by_region, used
        self._draw_creatives(state)
        ok, unreachable, capped = sender._sendable(rule.channel, self.customer, cap)
        sim.recorder.add("blocked_not_reachable", unreachable)
        sim.recorder.add("blocked_frequency_cap", capped)
        if not ok.all():
            self.customer, self.creative = self.customer[ok], self.creative[ok]
        return self._counts()

    def _draw_creatives(self, state: dict[str, Any] | None) -> None:
        """The rule's integer creative draws for this shard's rows (all, or the test cell's), from the policy
        stream's ``state`` at this shard's first row; nothing when the rule draws none."""
        rule = self.rule
        assert rule is not None
        if rule.draws_integers and state is not None:
            count = self.customer.shape[0] if self.redraw is None else int(self.redraw.sum())
            drawn = draw_int32(_generator(state), rule.creatives, count)  # numpy's integers, compiled
            if self.redraw is None:
                self.creative = drawn
            else:
                self.creative[self.redraw] = drawn
        elif self.choice_due:  # no draws: the choice (a wave through a channel order or on a paid channel)
            self.creative = self._chosen()
        self.choice_due = False

    def cut(self, keep: int) -> tuple[int, np.ndarray, np.ndarray]:
        """Keep the first ``keep`` rows (the budget's cut-off falls in this shard)."""
        self.customer, self.creative = self.customer[:keep], self.creative[:keep]
        return self._counts()

    def _counts(self) -> tuple[int, np.ndarray, np.ndarray]:
        pop = self.sim.world.population
        regions = self.sim.sender.region_rel_s.shape[0]
        # Compiled (nogil): numpy's bincount holds the interpreter's lock, so the shards' threads took turns here.
        by_region = kernels.counts(pop.region, regions, self.customer)
        used = kernels.creatives_used(self.creative, self.sim.catalogue.count)
        return self.customer.shape[0], by_region, used

    def send(
        self,
        keep: int,
        rank_of_region: np.ndarray,
        starts: np.ndarray,
        spacing_s: float,
        before: np.ndarray,
        offset: int,
        block: int,
    ) -> list[tuple[int, np.ndarray]]:
        """Send the first ``keep`` rows: departures from the group ``starts`` and the rows of each group in
        the shards ``before`` this one, quiet hours, the horizon, then the responses, block by block of the
        plan (``offset``: this shard's first row in the plan). Returns each block's sends per day."""
        rule = self.rule
        assert rule is not None
        sim, c = self.sim, rule.channel
        sender: OutboundSender = sim.sender
        cfg = sender.channels.configs[c]
        customer, creative = self.customer[:keep], self.creative[:keep]
        self._clear()
        increasing = kernels.increasing(customer)  # kept by every block's subset (ChunkDraws.segments)
        out: list[tuple[int, np.ndarray]] = []
        for b, departure, block_customer, block_creative, sent, span in self._send_blocks(
            c, customer, creative, rank_of_region, starts, spacing_s, before, offset, block
        ):
            out.append((b, sent))
            sender._dispatch(c, cfg, block_customer, block_creative, departure, span, increasing)
        return out

    def _send_blocks(
        self,
        c: int,
        customer: np.ndarray,
        creative: np.ndarray,
        rank_of_region: np.ndarray,
        starts: np.ndarray,
        spacing_s: float,
        before: np.ndarray,
        offset: int,
        block: int,
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[float, float] | None]]:
        """The shard's rows cut at the plan's response blocks (``offset``: its first row in the plan), each
        given its departure (its group's slot after the rows ``before`` it), then quiet hours and the horizon;
        the sends are recorded. Yields each block's index, departures, customers, creatives (in plan order),
        sends per day and the departures' bounds (shared by the plain waves and those on a paid channel or
        through a channel order)."""
        sender: OutboundSender = self.sim.sender
        cfg = sender.channels.configs[c]
        rec: Recorder = self.sim.recorder
        # Compiled, one pass (two numpy gathers would widen the uint8 regions to int64 indices first).
        group, _ = kernels.release_groups(customer, self.sim.world.population.region, rank_of_region)
        filled = np.array(before, np.int64)
        names = sender.channel_metrics[c]
        for b in range(offset // block, (offset + customer.shape[0] - 1) // block + 1):
            lo, hi = max(b * block - offset, 0), min((b + 1) * block - offset, customer.shape[0])
            # As outbound's step 7 on the whole block: each row's departure, then the rules, which are per row
            # (the shard's rows of a block are a run of the one process's block, in the same order).
            planned, bounds = send_kernels.departures_and_bounds(group[lo:hi], starts, spacing_s, filled)
            departure, block_customer, block_creative, _, span = sender.block_rules(
                cfg, planned, customer[lo:hi], creative[lo:hi], None, bounds
            )
            if block_customer.shape[0] == 0:
                continue
            sent = rec.day_counts(departure, span=span)
            rec.add_day_counts("sends", sent, each=1.0)
            rec.add_day_counts(names["sends"], sent, each=1.0)
            yield b, departure, block_customer, block_creative, sent, span

    def bucket_cells(self, t0: float, t1: float, cell_creatives: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Release the bucket (occasions, outcomes) and count the feedback per (segment, creative) cell."""
        sim = self.sim
        sim.state.rebase(t0)
        events = sim._shard_bucket(sim.shards[0], t0, t1)
        cells: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # Deliveries never reach the events here: the sender gives them to self.deliveries when the policy
        # learns from them, and drops them otherwise.
        if self.deliveries is not None:
            delivered = self.deliveries.release(t1, cell_creatives)
            if delivered is not None:
                cells["delivered"] = delivered
        clicks = events.get("click")
        if clicks is not None and clicks["customer"].shape[0]:
            segment = None if self.segment is None else self.segment[clicks["customer"]]
            cells["click"] = count_cells(segment, clicks["creative"], self.n_segments, cell_creatives)
        return cells

    def buckets_cells(self, bounds: np.ndarray, cell_creatives: int) -> dict[str, tuple[np.ndarray, ...]]:
        """:meth:`bucket_cells` for each bucket ``(t0, t1)`` of ``bounds`` in turn (one call of the coordinator
        for every bucket up to its next wave), packed: per kind the cells of every bucket one after another
        and each bucket's number of cells (-1: the kind is absent from that bucket), unpacked by
        :func:`unpack_bucket_cells`."""
        packed: dict[str, tuple[list[np.ndarray], list[np.ndarray], np.ndarray]] = {}
        for i, (t0, t1) in enumerate(bounds.tolist()):
            for kind, (keys, counts) in self.bucket_cells(t0, t1, cell_creatives).items():
                if kind not in packed:
                    packed[kind] = ([], [], np.full(bounds.shape[0], -1, np.int64))
                packed[kind][0].append(keys)
                packed[kind][1].append(counts)
                packed[kind][2][i] = keys.shape[0]
        return {
            kind: (np.concatenate(keys), np.concatenate(counts), lengths)
            for kind, (keys, counts, lengths) in packed.items()
        }


def unpack_bucket_cells(
    packed: dict[str, tuple[np.ndarray, ...]], buckets: int
) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Each bucket's cells, as :meth:`ShardWave.bucket_cells` returned them, from
    :meth:`ShardWave.buckets_cells`'s packing."""
    out: list[dict[str, tuple[np.ndarray, np.ndarray]]] = [{} for _ in range(buckets)]
    for kind, (keys, counts, lengths) in packed.items():
        ends = np.cumsum(np.maximum(lengths, 0)).tolist()
        start = 0
        for i, (length, end) in enumerate(zip(lengths.tolist(), ends, strict=True)):
            if length >= 0:
                out[i][kind] = (keys[start:end], counts[start:end])
            start = end
    return out


# --------------------------------------------------------------------------------------------------
# The coordinator's side
# --------------------------------------------------------------------------------------------------


def merge_cells(parts: list[dict[str, tuple[np.ndarray, np.ndarray]]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The shards' cell counts added up (integers: the order does not matter)."""
    merged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for kind in sorted({kind for part in parts for kind in part}):
        pieces = [part[kind] for part in parts if kind in part]
        if len(pieces) == 1:
            merged[kind] = pieces[0]
            continue
        merged[kind] = sum_by_key(np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]))
    return merged


def padded_sum(parts: list[np.ndarray], size: int) -> np.ndarray:
    out = np.zeros(size, np.int64)
    for part in parts:
        out[: part.shape[0]] += part
    return out


class ShardWaveCoordinator:
    """The coordinator's steps of a wave planned on the shards (docs/model.md §16.2): it sends the rule,
    the policy stream's states, the budget's cut-off and the queue's offsets, and gets back counts."""

    def __init__(self, group: Any, sender: OutboundSender, rng: np.random.Generator) -> None:
        self.group = group
        self.sender = sender
        self.rng = rng
        self.pending_buckets: list[tuple[float, float]] = []  # put off until the next wave (or the arm's end)

    def run_pending_buckets(self, cell_creatives: int) -> list[tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]]:
        """The buckets put off since the last wave, run on every shard in one call each (nothing else touches
        a shard between two waves, so each shard does exactly what a call per bucket would have done); each
        bucket's end and its cells summed over the shards, in bucket order."""
        bounds, self.pending_buckets = self.pending_buckets, []
        if not bounds:
            return []
        parts = self.group.call("rule_buckets", self._all(np.array(bounds, np.float64), cell_creatives))
        per_shard = [unpack_bucket_cells(part, len(bounds)) for part in parts]
        return [(t1, merge_cells([shard[i] for shard in per_shard])) for i, (_, t1) in enumerate(bounds)]

    def _all(self, *args: Any) -> dict[int, tuple[Any, ...]]:
        return dict.fromkeys(range(len(self.group.ranges)), args)

    def reachable(self, week_index: int, channel: int) -> list[np.ndarray]:
        return list(self.group.call("rule_reachable", self._all(week_index, channel)))

    def send(self, rule: ShardRule, reachable: list[np.ndarray], t_event_s: float, day_start_s: float) -> None:
        shards = range(len(self.group.ranges))
        segments = rule.choice.shape[0]
        per_shard = [padded_sum([r], segments) for r in reachable]
        # 1. The policy's draws: uniforms (one per reachable or per kept row), then bounded integers.
        kept = [int(r.sum()) if rule.keep is None else int(r[rule.keep].sum()) for r in per_shard]
        uniforms: list[Any] = [None] * len(shards)
        if rule.keep_probability is not None:
            uniforms = uniform_states(self.rng, [int(r.sum()) for r in per_shard])
        elif rule.test_share is not None:
            uniforms = uniform_states(self.rng, kept)
        due = self.group.call("rule_draw", {s: (rule, uniforms[s]) for s in shards})
        integers: list[Any] = [None] * len(shards)
        if rule.draws_integers:
            integers = integer_states(self.rng, [int(d) for d in due], rule.creatives)
        c = rule.channel
        cfg = self.sender.channels.configs[c]
        parts = self.group.call("rule_rows", {s: (integers[s], cfg.frequency_cap_per_week) for s in shards})
        self._send_rows(c, cfg, [list(p) for p in parts], t_event_s, day_start_s)

    def _send_rows(self, c: int, cfg: Any, parts: list[list[Any]], t_event_s: float, day_start_s: float) -> None:
        sender, channels, rec = self.sender, self.sender.channels, self.sender.recorder
        rows = [int(p[0]) for p in parts]
        n = sum(rows)
        if n == 0:
            return
        # 2. Budget: the plan's first rows are funded until the money runs out (one cut-off row).
        funded = n
        if channels.budget_left is not None:
            creative_cost = self._new_creatives(parts).shape[0] * sender.catalogue.production_cost
            funded = affordable_sends(cfg.cost_per_send, n, channels.budget_left - creative_cost)
            if funded < n:
                rec.add("blocked_budget", n - funded)
        first = np.concatenate(([0], np.cumsum(rows)[:-1])).tolist()
        keep = [int(min(max(funded - f, 0), r)) for f, r in zip(first, rows, strict=True)]
        for s, (k, r) in enumerate(zip(keep, rows, strict=True)):
            if 0 < k < r:
                (parts[s],) = self.group.call("rule_cut", {s: (k,)})
            elif k == 0:
                parts[s] = [0, np.zeros_like(parts[s][1]), np.zeros_like(parts[s][2])]
        if funded == 0:
            return
        # 3. Departures: each region's group through the channel's capacity queue; 4. creatives put into use
        # pay their production cost once.
        rank_of_region, starts, by_group = self._departures(cfg, c, parts, t_event_s, day_start_s)
        # 5. The shards send their rows; the money is summed here, block by block as one process does.
        block = outbound.RESPONSE_CHUNK
        before = np.concatenate(([np.zeros_like(by_group[0])], np.cumsum(by_group, axis=0)[:-1]))
        placed = np.concatenate(([0], np.cumsum(keep)[:-1])).tolist()
        spacing_s = HOUR_S / cfg.capacity_per_hour
        args = {
            s: (keep[s], rank_of_region, starts, spacing_s, before[s], placed[s], block)
            for s in range(len(parts))
            if keep[s] > 0
        }
        days: dict[int, np.ndarray] = {}
        for answer in self.group.call("rule_send", args):
            for b, counts in answer:
                days[b] = counts if b not in days else days[b] + counts
        names = sender.channel_metrics[c]
        for b in sorted(days):
            counts = days[b]
            sent = int(counts.sum())
            rec.add_day_counts("cost_sends", counts, each=cfg.cost_per_send)
            rec.add_day_counts(names["cost"], counts, each=cfg.cost_per_send)
            sender._spend(cfg.cost_per_send * sent)

    def _departures(
        self, cfg: Any, c: int, parts: list[list[Any]], t_event_s: float, day_start_s: float
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Each region group's first departure through the channel's capacity queue, from the shards' rows per
        region, and the production cost of the creatives the wave puts into use (charged once, as one process
        does). Returns the region → group rank, the groups' starts and each shard's rows per group."""
        sender, rec, channels = self.sender, self.sender.recorder, self.sender.channels
        rank_of_region, release, deferred = sender.release_groups(cfg, t_event_s, day_start_s)
        by_group = []
        for p in parts:
            counts = np.zeros(rank_of_region.shape[0], np.int64)
            counts[rank_of_region] = p[1]
            by_group.append(counts)
        starts = sender.queue_groups(cfg, c, rank_of_region, release, deferred, np.sum(by_group, axis=0))
        new = self._new_creatives(parts)
        if new.shape[0]:
            channels.creatives_used[new] = True
            production = new.shape[0] * sender.catalogue.production_cost
            rec.add("creatives_used", new.shape[0])
            rec.add_at("cost_creatives", max(t_event_s, float(starts.min())), production)
            sender._spend(production)
        return rank_of_region, starts, by_group

    def _new_creatives(self, parts: list[list[Any]]) -> np.ndarray:
        used_now = np.logical_or.reduce([p[2] for p in parts])
        channels = self.sender.channels
        if channels.creatives_used.shape[0] < used_now.shape[0]:  # the policy generated creatives (bespoke)
            grown = np.zeros(used_now.shape[0], bool)
            grown[: channels.creatives_used.shape[0]] = channels.creatives_used
            channels.creatives_used = grown
        used = channels.creatives_used
        return np.flatnonzero(used_now[: used.shape[0]] & ~used)
