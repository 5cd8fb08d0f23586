"""Whom to contact (DESIGN §1.4): ``uplift`` targets the customers the message changes, and its foil ``response``
targets those likely to buy anyway. Formulas: docs/model.md §6.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from masssim.policies.base import Feedback, Plan, PolicyBase, PolicyParams, PolicyWorld, WaveContext, uniform_below
from masssim.policies.cells import CellCounts
from masssim.policies.learning_features import _full, _segments_of
from masssim.policies.registry import register_targeting
from masssim.policies.targeting import (
    MAX_PERSONAS,
    ChannelName,
    _channel_index,
)

# ------------------------------------------------------------------------------------------------------
# uplift and response: whom to contact
# ------------------------------------------------------------------------------------------------------


class _WhomParams(PolicyParams):
    segments: int = Field(4, ge=1, le=MAX_PERSONAS, description="observable personas k (before the history split)")
    history_levels: int = Field(
        3,
        ge=1,
        le=16,
        description="split personas by purchases of ours seen before the first wave: 0, 1, ..., levels-1 or more",
    )
    learn_waves: int = Field(3, ge=0, le=1000, description="waves during which uncertain segments are contacted")
    test_share: float = Field(0.2, gt=0.0, le=1.0, description="share of contacts in the creative test")
    test_waves: int = Field(1, ge=1, le=1000, description="waves of creative testing before rolling out the winner")
    clustering_sample: int = Field(20_000, ge=100, le=10_000_000, description="customers sampled for k-means")
    channel: ChannelName | None = Field(None, description="channel to use (default: schedule.channel)")


_NONE, _CONTACTED, _CONTROL = 0, 1, 2


class _WhomPolicy(PolicyBase):
    """Shared machinery of ``uplift`` and ``response``: segments, a persistent randomised control cell,
    purchase rates per (segment, contacted / control), and a broadcast-style creative.

    Segments are the observable personas, each split by the customer's purchases of our brand seen in
    ``purchase`` feedback *before the first wave* (0, 1, ..., ``history_levels``−1 or more): the history is
    taken before any contact, so the split is not itself an effect of the policy. With the first wave on
    day 0 nobody has a history yet and the segments are the personas alone.

    At arm start each customer is put in the control cell with probability ``control_share`` (for the whole
    run). At each wave every reachable customer is either *control* (in the control cell: deliberately not
    contacted), *contacted* (outside it, in a segment chosen for contact), or neither. A purchase counts for
    the status and segment its customer had at the last wave, and each wave adds one customer-wave of
    exposure per status. So ``rate = purchases / customer-waves`` is the purchase rate per contact (or per
    wave without one) over the interval to the next wave, and ``uplift = rate_contacted − rate_control``.
    """

    params: _WhomParams
    feedback_kinds = frozenset({"delivered", "click", "purchase"})
    control_share: float = 0.0

    @classmethod
    def view_columns(cls, params: PolicyParams) -> frozenset[str]:
        return frozenset({"observables"} if getattr(params, "segments", 1) > 1 else ())  # the personas

    def __init__(self, params: _WhomParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = _channel_index(world, params.channel)
        n = world.customers.n
        self.persona_of, self.n_personas = _segments_of(world, params.segments, params.clustering_sample)
        self.in_control = uniform_below(self.rng, n, self.control_share)
        self.purchases_seen = np.zeros(n, np.uint16)
        self.status = np.zeros(n, np.uint8)
        self.segment_of: np.ndarray | None = None  # fixed at the first wave
        self.n_segments = self.n_personas * params.history_levels
        self.exposure = np.zeros((3, self.n_segments))  # customer-waves by status
        self.purchases = np.zeros((3, self.n_segments))
        self.creatives = CellCounts(1, world.catalogue.count)
        self.choice = 0

    def rates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rate_contacted, rate_control, standard error of their difference) per segment; NaN where a
        group has no exposure yet. Poisson approximation with one purchase added, so that no purchases
        yet does not read as certainty: var(rate) = (purchases + 1) / exposure²."""
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = self.purchases / self.exposure
            var = (self.purchases + 1.0) / self.exposure**2
        return rate[_CONTACTED], rate[_CONTROL], np.sqrt(var[_CONTACTED] + var[_CONTROL])

    def contact(self, wave: WaveContext, size: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Per segment, the probability that an eligible (non-control) customer is contacted this wave
        (0 or 1, or in between for a segment contacted in part). ``size``: eligible customers per segment."""
        raise NotImplementedError

    def plan(self, wave: WaveContext) -> Plan:
        if self.segment_of is None:
            levels = self.params.history_levels
            level = np.minimum(self.purchases_seen, levels - 1).astype(np.int64)
            self.segment_of = self.persona_of.astype(np.int64) * levels + level
        who = np.flatnonzero(self.world.customers.reachable(self.channel))
        segment = self.segment_of[who]
        control = self.in_control[who]
        eligible = np.bincount(segment[~control], minlength=self.n_segments)
        share = self.contact(wave, eligible).astype(np.float64)[segment]
        contacted = ~control & (share >= 1.0)
        partial = ~control & (share > 0.0) & (share < 1.0)
        if partial.any():
            contacted[partial] = self.rng.random(int(partial.sum())) < share[partial]
        self.status[:] = _NONE
        self.status[who[contacted]] = _CONTACTED
        self.status[who[control]] = _CONTROL
        self.exposure[_CONTACTED] += np.bincount(segment[contacted], minlength=self.n_segments)
        self.exposure[_CONTROL] += np.bincount(segment[control], minlength=self.n_segments)
        customer, segment = who[contacted], segment[contacted]
        n, k = customer.shape[0], self.world.catalogue.count
        if wave.wave_index < self.params.test_waves:
            creative = _full(n, self.choice, np.int32)
            test = uniform_below(self.rng, n, self.params.test_share)
            creative[test] = self.rng.integers(0, k, size=int(test.sum()), dtype=np.int32)
        else:
            self.choice = int(self.creatives.greedy(self.choice)[0])
            creative = _full(n, self.choice, np.int32)
        return Plan(
            customer=customer,
            creative=creative,
            channel=_full(n, self.channel, np.int8),
            audience=segment * k + creative,
        )

    def observe(self, feedback: Feedback) -> None:
        self.creatives.observe(feedback, None)
        buyers = feedback.get("purchase")["customer"]
        if buyers.shape[0] == 0:
            return
        if self.segment_of is None:
            np.add.at(self.purchases_seen, buyers, np.uint16(1))
            return
        status = self.status[buyers]
        counted = status != _NONE
        np.add.at(self.purchases, (status[counted], self.segment_of[buyers[counted]]), 1.0)


class UpliftParams(_WhomParams):
    control_share: float = Field(0.1, gt=0.0, le=0.9, description="share of customers kept as an uncontacted control")
    value_per_purchase: float = Field(
        12.0,
        gt=0.0,
        le=1e7,
        description="margin of one incremental purchase, currency (default: price 30 x margin 0.4)",
    )
    cost_per_contact: float = Field(
        0.001, ge=0.0, le=1e4, description="cost of one contact, currency (default: email's cost_per_send)"
    )
    uncertainty_z: float = Field(1.96, ge=0.0, le=10.0, description="z of the upper bound used while learning")


@register_targeting("uplift")
class UpliftPolicy(_WhomPolicy):
    """Contact the segments where contact *causes* purchases worth more than it costs.

    Per segment, ``uplift = rate_contacted − rate_control`` (purchases per customer-wave, see
    ``_WhomPolicy``), margin per contact ``uplift·value_per_purchase − cost_per_contact``. During the first
    ``learn_waves`` a segment is contacted unless it is clearly unprofitable: its upper bound
    ``(uplift + z·se)·value − cost`` is above 0 (no data counts as uncertain). Afterwards only segments with
    a positive estimated margin are contacted (a segment without an estimate is not). The control cell is
    kept throughout, so estimates keep improving. The policy cannot read the scenario: ``value_per_purchase``
    (default 30 × 0.4 = 12, the default market's price × gross margin) and ``cost_per_contact`` (default
    0.001, email's cost per send) must be set to match it.
    """

    Params = UpliftParams
    params: UpliftParams

    def __init__(self, params: UpliftParams, world: PolicyWorld) -> None:
        self.control_share = params.control_share
        super().__init__(params, world)

    def contact(self, wave: WaveContext, size: np.ndarray) -> np.ndarray:
        treated, control, se = self.rates()
        value, cost = self.params.value_per_purchase, self.params.cost_per_contact
        margin = (treated - control) * value - cost
        if wave.wave_index < self.params.learn_waves:
            upper = margin + self.params.uncertainty_z * se * value
            return ~(upper <= 0.0)  # NaN (no data yet) counts as uncertain
        return margin > 0.0


class ResponseParams(_WhomParams):
    control_share: float = Field(0.1, ge=0.0, le=0.9, description="share of customers kept as an uncontacted control")
    audience_share: float = Field(
        0.2, gt=0.0, le=1.0, description="share of eligible customers contacted after learning (best segments first)"
    )


@register_targeting("response")
class ResponsePolicy(_WhomPolicy):
    """The naive foil of ``uplift``: "target the likeliest buyers".

    Same segments, control cell and creative as ``uplift``; during the first ``learn_waves`` every segment is
    contacted, then segments are ranked by the purchase rate of their *contacted* customers (response, not
    incremental response; segments without an estimate rank last) and the best are contacted until they hold
    ``audience_share`` of the eligible customers (the segment that crosses the line is contacted in part:
    each of its customers with the probability that fills the share).
    """

    Params = ResponseParams
    params: ResponseParams

    def __init__(self, params: ResponseParams, world: PolicyWorld) -> None:
        self.control_share = params.control_share
        super().__init__(params, world)

    def contact(self, wave: WaveContext, size: np.ndarray) -> np.ndarray:
        if wave.wave_index < self.params.learn_waves:
            return np.ones(size.shape[0])
        treated, _, _ = self.rates()
        order = np.argsort(-np.nan_to_num(treated, nan=-1.0), kind="stable")
        room = self.params.audience_share * size.sum() - (np.cumsum(size[order]) - size[order])
        share = np.zeros(size.shape[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            share[order] = np.clip(np.where(size[order] > 0, room / size[order], 0.0), 0.0, 1.0)
        return share
