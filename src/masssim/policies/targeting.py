"""Built-in targeting policies: ``none``, ``random``, ``broadcast``, ``segments`` and ``oracle`` (DESIGN §1.4).

Each is registered by name. They see only what :class:`~masssim.policies.base.CustomerView` exposes;
the ``oracle`` alone reads latent taste, as the upper bound a teacher compares against.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
from pydantic import Field

from masssim.config.schema import CHANNEL_NAMES
from masssim.policies.base import (
    Feedback,
    Plan,
    PolicyBase,
    PolicyParams,
    PolicyWorld,
    ShardRule,
    WaveContext,
    one_channel,
    uniform_below,
)
from masssim.policies.bounded_integers import draw_int32
from masssim.policies.cells import CellCounts
from masssim.policies.clustering import cluster_observables, profile_segments
from masssim.policies.registry import register_targeting

ChannelName = Literal["email", "sms", "messaging", "paid_social"]


def _channel_index(world: PolicyWorld, name: str | None) -> int:
    return world.default_channel if name is None else CHANNEL_NAMES.index(name)


class NoneParams(PolicyParams):
    pass


@register_targeting("none")
class NoContactPolicy(PolicyBase):
    """Contacts nobody: an arm that shows what the market does without this brand's marketing, on the same
    customers and occasions as the other arms (its incremental figures are zero up to the holdout's noise)."""

    Params = NoneParams
    params: NoneParams
    feedback_kinds = frozenset()
    cell_creatives = 0

    @classmethod
    def view_columns(cls, params: PolicyParams) -> frozenset[str]:
        return frozenset()

    def __init__(self, params: NoneParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = world.default_channel

    def plan(self, wave: WaveContext) -> Plan:
        empty = np.empty(0, np.int64)
        return Plan(customer=empty, creative=empty.astype(np.int32), channel=empty.astype(np.int8))

    # Planning on shards (docs/model.md §16.2): nobody, every wave.
    def shard_segments(self) -> None:
        return None

    def shard_rule(self, wave: WaveContext, reachable: np.ndarray) -> None:
        return None

    def observe_cells(self, time_s: float, cells: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        return None


class RandomParams(PolicyParams):
    audience_share: float = Field(1.0, gt=0.0, le=1.0, description="share of reachable customers contacted per wave")
    channel: ChannelName | None = Field(None, description="channel to use (default: schedule.channel)")


@register_targeting("random")
class RandomPolicy(PolicyBase):
    """The floor: a random share of reachable customers, each with a creative drawn at random."""

    Params = RandomParams
    params: RandomParams
    feedback_kinds = frozenset()
    cell_creatives = 0

    @classmethod
    def view_columns(cls, params: PolicyParams) -> frozenset[str]:
        return frozenset()

    def __init__(self, params: RandomParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = _channel_index(world, params.channel)

    def plan(self, wave: WaveContext) -> Plan:
        channel = self.channel
        who = self.world.customers.reachable_customers(channel)  # int32 below 2^31 customers
        if self.params.audience_share < 1.0:
            keep = uniform_below(self.rng, who.shape[0], self.params.audience_share)
            who = who[keep]
        creative = draw_int32(self.rng, self.world.catalogue.count, who.shape[0])  # numpy's integers, compiled
        return Plan(customer=who, creative=creative, channel=one_channel(who.shape[0], channel))

    # Planning on shards (docs/model.md §16.2): the same draws as ``plan``, made per shard.
    def shard_segments(self) -> None:
        return None

    def shard_rule(self, wave: WaveContext, reachable: np.ndarray) -> ShardRule:
        share = self.params.audience_share
        return ShardRule(
            channel=self.channel,
            choice=np.zeros(1, np.int32),
            keep=np.zeros(1, bool) if share < 1.0 else None,
            keep_probability=np.array([share]) if share < 1.0 else None,
            draw_creatives=True,
            creatives=self.world.catalogue.count,
        )

    def observe_cells(self, time_s: float, cells: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        return None


# As many personas as the largest population (1:1 at the seed's 95 million customers). A k above the
# number of distinct customers (N with CRM scores, the number of observable profiles without) is taken as
# that number: a persona per distinct customer is the finest split there is.
MAX_PERSONAS = 200_000_000

# Personas whose bespoke creatives are estimated and generated at a time (SegmentsPolicy._generate_bespoke).
_BESPOKE_BLOCK = 1 << 16


class SegmentsParams(PolicyParams):
    segments: int = Field(
        8,
        ge=1,
        le=MAX_PERSONAS,
        description="number of personas k (at most one per distinct customer: a larger k is taken as N)",
    )
    test_share: float = Field(0.2, gt=0.0, le=1.0, description="share of each segment in the test cell")
    test_waves: int = Field(1, ge=1, le=1000, description="waves of testing before rolling out the winner")
    clustering_sample: int = Field(20_000, ge=100, le=10_000_000, description="customers sampled for k-means")
    channel: ChannelName | None = Field(None, description="channel to use (default: schedule.channel)")
    bespoke: bool = Field(
        False, description="after testing, generate one creative per segment aimed at its estimated taste"
    )
    bespoke_prior_clicks: float = Field(
        2.0, gt=0.0, le=1e6, description="pseudo-clicks shrinking a segment's rates toward the global ones"
    )
    bespoke_ridge: float = Field(1.0, gt=0.0, le=1e6, description="ridge penalty of the taste regression")
    audience_share: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="after testing, contact only this share of reachable customers: the best-responding personas",
    )


@register_targeting("segments")
class SegmentsPolicy(PolicyBase):
    """k personas by clustering observables, then test-and-learn over creatives within each persona.

    For the first ``test_waves`` waves a random ``test_share`` of each segment receives creatives drawn
    uniformly; the rest receive the house creative (index 0). From then on each segment receives the
    creative with the highest observed clicks per delivered message in that segment. With few customers
    per cell the observed winner is often not the true best (the winner's curse): nothing here penalises
    large k, the noise does.

    With ``bespoke``, each segment instead gets a creative generated for it after the test, aimed at its
    estimated taste (paying the production cost once per segment). The estimate uses only what a marketer
    has: the mean declared taste of the segment's members who declared one, otherwise the test results —
    each catalogue creative's click-rate lift in the segment over its rate everywhere, regressed on the
    creatives' directions (ridge). Small segments give noisy estimates, and cost as much as big ones.
    """

    Params = SegmentsParams
    params: SegmentsParams
    feedback_kinds = frozenset({"delivered", "click"})

    @classmethod
    def view_columns(cls, params: PolicyParams) -> frozenset[str]:
        # personas from the observables; bespoke creatives aim at the members' declared taste
        return frozenset({"observables", "declared_taste"} if getattr(params, "bespoke", False) else {"observables"})

    def __init__(self, params: SegmentsParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = _channel_index(world, params.channel)
        self.segment_of, self.n_segments = cluster_observables(world, params.segments, params.clustering_sample)
        self.base_count = world.catalogue.count  # tests compare catalogue creatives only
        self.cells = CellCounts(self.n_segments, self.base_count)
        self.choice = np.zeros(self.n_segments, np.int32)  # the house creative until a test says otherwise
        self.rolled_out = False

    def plan(self, wave: WaveContext) -> Plan:
        who = self.world.customers.reachable_customers(self.channel)  # int32 below 2^31 customers
        one = self.n_segments == 1
        # With one persona every segment is 0 (a zero-filled array, which _focus reads), and every customer gets
        # the one persona's creative without a gather.
        segment = np.zeros(who.shape[0], np.int32) if one else self.segment_of[who]
        if wave.wave_index < self.params.test_waves:
            creative = self._creatives_of(segment)
            in_test = uniform_below(self.rng, who.shape[0], self.params.test_share)
            creative[in_test] = self.rng.integers(0, self.base_count, size=int(in_test.sum()), dtype=np.int32)
        else:
            self._roll_out()
            if self.params.audience_share < 1.0:
                keep = self._focus(segment)
                who, segment = who[keep], segment[keep]
            creative = self._creatives_of(segment)
        # One persona: the ad set is the creative, the engine's default (no int64 per contact to build).
        audience = None if one else segment.astype(np.int64) * self.world.catalogue.count + creative
        return Plan(
            customer=who,
            creative=creative.astype(np.int32, copy=False),
            channel=one_channel(who.shape[0], self.channel),
            audience=audience,
        )

    def _creatives_of(self, segment: np.ndarray) -> np.ndarray:
        """A new array of each persona's chosen creative, one per row of ``segment``."""
        if self.n_segments == 1:
            return np.full(segment.shape[0], self.choice[0], np.int32)
        return self.choice[segment]

    def _pick_winners(self) -> None:
        self.choice = self.cells.greedy(self.choice)

    def _roll_out(self) -> None:
        """After the test: each segment's creative for this wave."""
        if not self.params.bespoke:
            self._pick_winners()  # re-judged every wave as deliveries and clicks accumulate
        elif not self.rolled_out:
            self._pick_winners()  # the fallback for personas whose taste cannot be estimated
            self._generate_bespoke()  # generated once: each costs its production
            self.rolled_out = True

    def _focus(self, segment: np.ndarray) -> np.ndarray:
        """Mask of the customers to contact when the budget covers only ``audience_share`` of them: personas
        in order of estimated click rate (shrunk toward the overall rate), the last one partly, at random.
        With one persona that is a random share each wave; with many it is the same best responders every
        wave, which concentrates contacts and leaves out whoever responds least (often light buyers)."""
        chosen, probability = self._focus_rule(np.bincount(segment, minlength=self.n_segments))
        keep = chosen[segment]
        if probability is not None:  # a uniform per reachable customer; only the boundary persona's can pass
            keep |= uniform_below(self.rng, segment.shape[0], lambda rows: probability[segment[rows]])
        return keep

    def _focus_rule(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """From the reachable customers per persona: the personas contacted whole, and (when one is contacted
        partly) the probability of each persona's customers to be kept (0 but for that boundary persona)."""
        delivered, clicks = self.cells.segment_totals()
        overall = (clicks.sum() + 1.0) / (delivered.sum() + 2.0)
        prior = self.params.bespoke_prior_clicks
        estimate = (clicks + prior) / (delivered + prior / overall)
        order = np.argsort(-estimate, kind="stable")
        cumulative = np.cumsum(counts[order])
        target = self.params.audience_share * int(counts.sum())
        full = order[cumulative <= target]
        chosen = np.zeros(self.n_segments, bool)
        chosen[full] = True
        if full.shape[0] == order.shape[0]:
            return chosen, None
        boundary = order[full.shape[0]]
        room = target - (cumulative[full.shape[0] - 1] if full.shape[0] else 0.0)
        probability = np.zeros(self.n_segments)
        probability[boundary] = room / max(1, int(counts[boundary]))
        return chosen, probability

    def _generate_bespoke(self) -> None:
        """One generated creative per segment, aimed at the segment's estimated taste.

        Personas can number N (1:1), so the estimates are made and turned into creatives a block of
        ``_BESPOKE_BLOCK`` personas at a time: no array of every persona's taste exists (at k = N it was 64
        bytes per customer). Each block's sums take its cells in the same order as sums over every persona
        would (the cells, and the declarations once sorted stably, are in persona order), so the creatives
        are the same to the bit."""
        catalogue = self.world.catalogue
        directions = catalogue.directions[: self.base_count].astype(np.float64)
        total_delivered, total_clicks = self.cells.creative_totals()
        global_rate = (total_clicks + 1.0) / (total_delivered + 2.0)
        prior = self.params.bespoke_prior_clicks
        # A cell never tested has rate = global rate and so no lift: only tested cells enter the sum.
        segment, creative, delivered, clicks = self.cells.cells()  # in persona order
        rate = (clicks + prior) / (delivered + prior / global_rate[creative])
        lift = np.log(rate) - np.log(global_rate[creative])  # segment-specific: creative quality cancels out
        del delivered, clicks, rate
        d = directions.shape[1]
        inverse = np.linalg.inv(directions.T @ directions + self.params.bespoke_ridge * np.eye(d))
        declared = self._declarations_by_persona()
        chosen: list[np.ndarray] = []  # per block, the personas that get a creative

        def estimates() -> Iterator[np.ndarray]:
            for lo in range(0, self.n_segments, _BESPOKE_BLOCK):
                hi = min(lo + _BESPOKE_BLOCK, self.n_segments)
                a, b = np.searchsorted(segment, (lo, hi))
                cell_segment, cell_creative, cell_lift = segment[a:b] - lo, creative[a:b], lift[a:b]
                # The lifts regressed on the creatives' directions (ridge).
                estimate = np.empty((hi - lo, d))
                for j in range(d):
                    weights = cell_lift * directions[cell_creative, j]
                    estimate[:, j] = np.bincount(cell_segment, weights=weights, minlength=hi - lo)
                estimate = estimate @ inverse
                if declared is not None:  # the mean declared taste of the persona's members, where it has one
                    persona, taste_rows, declared_taste = declared
                    a, b = np.searchsorted(persona, (lo, hi))
                    members, taste = persona[a:b] - lo, declared_taste[taste_rows[a:b]]
                    counts = np.bincount(members, minlength=hi - lo)
                    has = counts > 0
                    for j in range(d):
                        total = np.bincount(members, weights=taste[:, j], minlength=hi - lo)
                        estimate[has, j] = total[has] / counts[has]
                usable = np.sqrt(np.einsum("ij,ij->i", estimate, estimate)) > 1e-9  # no [block, d] temporary
                chosen.append(lo + np.flatnonzero(usable))
                yield estimate[usable]

        ids = catalogue.generate_blocks(estimates())
        self.choice[np.concatenate(chosen)] = ids

    def _declarations_by_persona(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(persona, row in the declared taste) of each customer who declared, in persona order and, within a
        persona, in customer order (a stable sort), and the view's declared taste; None without one."""
        view = self.world.customers
        if view.declared_row is None or view.declared_taste is None:
            return None
        declared = np.flatnonzero(view.declared_row >= 0)
        persona = self.segment_of[declared]
        order = np.argsort(persona, kind="stable")
        return persona[order], view.declared_row[declared[order]], view.declared_taste

    def observe(self, feedback: Feedback) -> None:
        # generated creatives are not part of the test; one persona needs no look-up of each customer's
        self.cells.observe(feedback, None if self.n_segments == 1 else self.segment_of)

    # Planning on shards (docs/model.md §16.2): the same decisions and draws as ``plan``; bespoke creatives
    # are generated here, on the coordinator, which sends their directions to the shards.
    @property
    def cell_creatives(self) -> int:
        return self.base_count

    def shard_segments(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.n_segments == 1 else profile_segments(self.world.customers, self.segment_of)

    def shard_rule(self, wave: WaveContext, reachable: np.ndarray) -> ShardRule:
        if wave.wave_index < self.params.test_waves:
            return ShardRule(
                self.channel, self.choice.copy(), test_share=self.params.test_share, creatives=self.base_count
            )
        self._roll_out()
        keep = probability = None
        if self.params.audience_share < 1.0:
            counts = np.zeros(self.n_segments, np.int64)  # personas past the last reachable one count 0
            counts[: reachable.shape[0]] = reachable
            keep, probability = self._focus_rule(counts)
        return ShardRule(self.channel, self.choice.copy(), keep=keep, keep_probability=probability)

    def observe_cells(self, time_s: float, cells: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        for kind, (keys, counts) in cells.items():
            self.cells.add_counts(kind, keys, counts)


class BroadcastParams(PolicyParams):
    test_share: float = Field(0.2, gt=0.0, le=1.0, description="share of customers in the creative test")
    test_waves: int = Field(1, ge=1, le=1000, description="waves of testing before rolling out the winner")
    channel: ChannelName | None = Field(None, description="channel to use (default: schedule.channel)")


@register_targeting("broadcast")
class BroadcastPolicy(SegmentsPolicy):
    """One creative for everyone: a test-and-learn over the whole base, then the winner for all (k = 1)."""

    Params = BroadcastParams  # type: ignore[assignment]

    def __init__(self, params: BroadcastParams, world: PolicyWorld) -> None:  # type: ignore[override]
        as_segments = SegmentsParams(
            segments=1, test_share=params.test_share, test_waves=params.test_waves, channel=params.channel
        )
        super().__init__(as_segments, world)


ORACLE_BLOCK_BYTES = 1 << 26  # 64 MB of scores at a time


class OracleParams(PolicyParams):
    channel: ChannelName | None = Field(None, description="channel to use (default: schedule.channel)")


@register_targeting("oracle")
class OraclePolicy(PolicyBase):
    """Reads each customer's latent taste (and each creative's true quality) and sends the creative with
    the highest click log-odds, beta * affinity + quality.

    Not a real strategy: an upper bound on what creative fit alone can achieve, for teaching.
    """

    Params = OracleParams
    params: OracleParams
    reads_latent_taste = True
    feedback_kinds = frozenset()

    @classmethod
    def view_columns(cls, params: PolicyParams) -> frozenset[str]:
        return frozenset()  # the latent taste only (``reads_latent_taste``)

    def __init__(self, params: OracleParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = _channel_index(world, params.channel)
        taste = world.customers.latent_taste
        if taste is None:
            raise RuntimeError("the oracle policy needs latent taste; the engine did not provide it")
        directions = world.catalogue.directions
        beta = world.affinity_click_beta if world.affinity_click_beta is not None else 1.0
        quality = world.catalogue.quality if world.catalogue.quality is not None else np.zeros(world.catalogue.count)
        self.best = np.empty(world.customers.n, np.int32)
        # a block of [rows, creatives] float32 scores of about ORACLE_BLOCK_BYTES, whatever the catalogue
        step = max(1, ORACLE_BLOCK_BYTES // (4 * max(1, world.catalogue.count)))
        for start in range(0, world.customers.n, step):
            score = taste[start : start + step].astype(np.float32) @ directions.T  # stored at half precision
            score *= beta  # in place: the blocks are the whole cost of the oracle
            score += quality
            self.best[start : start + step] = np.argmax(score, axis=1)

    def plan(self, wave: WaveContext) -> Plan:
        who = np.flatnonzero(self.world.customers.reachable(self.channel))
        return Plan(customer=who, creative=self.best[who], channel=one_channel(who.shape[0], self.channel))
