"""Learning targeting policies (DESIGN §1.4): ``micro``, ``individual``, ``epsilon_greedy``, ``thompson``,
``linucb``, ``uplift`` and its foil ``response``.

Every policy here learns only from what a marketer could know: the delayed, bucketed
:class:`~masssim.policies.base.Feedback` it declares in ``feedback_kinds``, and the
:class:`~masssim.policies.base.CustomerView` (observables, engagement history, declared taste where a
customer gave it). None of them reads latent taste or creative quality, and the only randomness they use
is ``world.rng`` (the arm's POLICY stream), so a run is reproducible from its seed.

Work is vectorised over customers. Where a policy needs per-customer features, it notes that they are a
function of a customer's observable *profile* (region x age band x income band) and history counts
(sends, recorded opens, clicks), so it computes them once per distinct combination (``_Profiles``): at
a few million customers there are usually far fewer distinct combinations than customers.

The formulas are documented in ``docs/model.md`` section 6.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from pydantic import Field
from scipy import sparse, special

from masssim.policies.base import Feedback, Plan, PolicyBase, PolicyParams, PolicyWorld, WaveContext
from masssim.policies.cells import CellCounts
from masssim.policies.clustering import CHUNK_ELEMENTS, kmeans, nearest_centroid
from masssim.policies.registry import register_targeting
from masssim.policies.targeting import (
    MAX_PERSONAS,
    ChannelName,
    SegmentsParams,
    SegmentsPolicy,
    _channel_index,
)

# ------------------------------------------------------------------------------------------------------
# Shared pieces: engagement features, profile keys, k-means, per-cell counts
# ------------------------------------------------------------------------------------------------------


def engagement_features(
    sends: np.ndarray,
    opens: np.ndarray,
    clicks: np.ndarray,
    shrinkage: float,
    prior_open: float = 0.0,
    prior_click: float = 0.0,
) -> np.ndarray:
    """float64 [n, 3]: ``log1p(sends)`` and the recorded-open and click rates per send, shrunk toward
    ``prior_*`` with ``shrinkage`` pseudo-sends: ``(opens + a·prior)/(sends + a)``.

    A customer with one send and one open is not a 100% opener: with a = 5 and a prior of 0.4 their
    rate is (1 + 2)/(1 + 5) = 0.5, and it approaches the raw rate as sends accumulate.
    """
    s = sends.astype(np.float64)
    denominator = s + shrinkage
    out = np.empty((s.shape[0], 3))
    out[:, 0] = np.log1p(s)
    out[:, 1] = (opens.astype(np.float64) + shrinkage * prior_open) / denominator
    out[:, 2] = (clicks.astype(np.float64) + shrinkage * prior_click) / denominator
    return out


HISTORY_BITS = 48  # a history key packs sends, recorded opens and clicks (uint16 each)


def history_keys(world: PolicyWorld, idx: np.ndarray | slice) -> np.ndarray:
    """int64 ``sends << 32 | opens << 16 | clicks`` of customers ``idx`` (the engagement history)."""
    view = world.customers
    return (
        (view.sends[idx].astype(np.int64) << 32)
        | (view.opens[idx].astype(np.int64) << 16)
        | view.clicks[idx].astype(np.int64)
    )


def split_history(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sends, opens, clicks) of history keys (any higher bits are ignored)."""
    mask = np.int64(0xFFFF)
    return (keys >> 32) & mask, (keys >> 16) & mask, keys & mask


class _Profiles:
    """Customers' observable profiles: distinct (region, age band, income band).

    When the encoding ``e_i`` is a function of the profile alone (``exact``: no continuous CRM scores),
    features built from ``e_i`` and the history counts take one value per (profile, history) pair, packed
    in 63 bits: the schema allows at most 64 x 16 x 16 = 16,384 profiles (15 bits) and the history takes
    48. Policies then compute features once per distinct pair. Otherwise (checked on a fixed spread of
    customers too) they compute features customer by customer, in chunks.
    """

    def __init__(self, world: PolicyWorld) -> None:
        view = world.customers
        code = view.region.astype(np.int64) * 65_536 + view.age_band.astype(np.int64) * 256 + view.income_band
        _, first, inverse = np.unique(code, return_index=True, return_inverse=True)
        self.of = inverse.astype(np.int64).reshape(-1)
        self.count = int(first.shape[0])
        self.observables = np.asarray(view.observables(first), dtype=np.float64)  # [P, q]
        probe = np.unique(np.linspace(0, view.n - 1, min(view.n, 1024)).astype(np.int64))
        self.exact = view.continuous_observables == 0 and bool(
            np.array_equal(np.asarray(view.observables(probe), np.float64), self.observables[self.of[probe]])
        )

    def observables_of(self, world: PolicyWorld, idx: np.ndarray | slice) -> np.ndarray:
        """float64 [n, q] encodings of customers ``idx``."""
        if self.exact:
            return self.observables[self.of[idx]]
        return np.asarray(world.customers.observables(idx), dtype=np.float64)

    def keys(self, world: PolicyWorld, idx: np.ndarray | slice) -> np.ndarray:
        """int64 (profile, history) keys of customers ``idx`` (meaningful when ``exact``)."""
        return (self.of[idx] << HISTORY_BITS) | history_keys(world, idx)


@dataclass(frozen=True)
class Behaviour:
    """What of a customer's behaviour enters micro-segmentation, and with which weights."""

    shrinkage: float  # pseudo-sends of the shrunk open and click rates
    weight: float  # of the standardised engagement features (log1p(sends), open rate, click rate)
    last_clicked: np.ndarray  # int32 per customer, -1 = never clicked
    directions: np.ndarray  # [K, d] creative directions
    clicked_weight: float  # of the direction of the creative last clicked (zeros if none)


def cluster_customers(
    world: PolicyWorld,
    profiles: _Profiles,
    k: int,
    sample: int,
    *,
    iterations: int = 10,
    behaviour: Behaviour | None = None,
) -> tuple[np.ndarray, int]:
    """Assign every customer to one of at most k segments by k-means; returns (int32 segment per customer,
    number of non-empty segments).

    Points are the encodings ``e_i``, and with ``behaviour`` two more blocks: the engagement features of
    the history so far, standardised over the base, times ``weight``; the direction ``φ`` of the creative
    the customer last clicked (zeros if none) times ``clicked_weight``. k-means runs on the points of
    ``sample`` customers drawn at random (holdout included), then every customer goes to the nearest
    centroid. Points are computed once per distinct unit, (profile, history, last click), when the
    encoding allows it; if k is at least the number of units, each unit is its own segment (with
    observables alone: each profile is a persona, as in ``segments``).
    """
    n = world.customers.n
    history = history_keys(world, slice(None)) if behaviour is not None else np.zeros(n, np.int64)
    last = behaviour.last_clicked if behaviour is not None else np.full(n, -1, np.int32)
    unit_of: np.ndarray | None = None
    if profiles.exact:
        keys, inverse, counts = np.unique(
            (profiles.of << HISTORY_BITS) | history, return_inverse=True, return_counts=True
        )
        unit_of = inverse.reshape(-1)
        if behaviour is not None and (last >= 0).any():
            stride = np.int64(int(last.max()) + 2)
            pairs, unit_of, counts = np.unique(unit_of * stride + (last + 1), return_inverse=True, return_counts=True)
            unit_of = unit_of.reshape(-1)
            keys, unit_last = keys[pairs // stride], (pairs % stride - 1).astype(np.int64)
        else:
            unit_last = np.full(keys.shape[0], -1, np.int64)
        unit_profile, unit_history, weight = keys >> HISTORY_BITS, keys, counts.astype(np.float64)
    else:
        unit_profile, unit_history, weight = np.empty(0, np.int64), history, np.ones(n)
        unit_last = last.astype(np.int64)
    n_units = unit_history.shape[0]
    if k >= n_units:
        return (np.arange(n) if unit_of is None else unit_of).astype(np.int32), int(n_units)

    sends, opens, clicks = split_history(unit_history)
    if behaviour is not None:
        total_sends = float(np.dot(sends, weight))
        prior_open = float(np.dot(opens, weight)) / total_sends if total_sends else 0.0
        prior_click = float(np.dot(clicks, weight)) / total_sends if total_sends else 0.0
        shrinkage = behaviour.shrinkage
        everyone = engagement_features(sends, opens, clicks, shrinkage, prior_open, prior_click)
        mean = np.average(everyone, axis=0, weights=weight)
        sd = np.sqrt(np.average((everyone - mean) ** 2, axis=0, weights=weight))
        scale = np.where(sd > 1e-12, behaviour.weight / np.where(sd > 1e-12, sd, 1.0), 0.0)
        del everyone
        clicked_directions = np.vstack(
            [
                behaviour.clicked_weight * behaviour.directions.astype(np.float64),
                np.zeros(behaviour.directions.shape[1]),
            ]
        )  # row -1 (never clicked) is zeros

    def points(rows: slice | np.ndarray) -> np.ndarray:
        if unit_of is not None:
            observed = profiles.observables[unit_profile[rows]]
        else:
            observed = profiles.observables_of(world, rows)
        if behaviour is None:
            return observed
        engagement = engagement_features(sends[rows], opens[rows], clicks[rows], shrinkage, prior_open, prior_click)
        return np.hstack([observed, (engagement - mean) * scale, clicked_directions[unit_last[rows]]])

    rng = world.rng
    pick = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    centroids = kmeans(points(pick if unit_of is None else unit_of[pick]), k, rng, iterations)
    nearest = np.empty(n_units, np.int64)
    step = 1 << 18
    for lo in range(0, n_units, step):
        nearest[lo : lo + step] = nearest_centroid(points(slice(lo, lo + step)), centroids)
    used, relabel = np.unique(nearest, return_inverse=True)
    segment = relabel.reshape(-1)
    return (segment if unit_of is None else segment[unit_of]).astype(np.int32), int(used.shape[0])


def update_last_clicked(last_clicked: np.ndarray, feedback: Feedback) -> None:
    """Record each clicking customer's latest clicked creative (events in a bucket are not in time order)."""
    clicks = feedback.get("click")
    if clicks["customer"].shape[0]:
        order = np.argsort(clicks["time_s"], kind="stable")[::-1]
        customer, first = np.unique(clicks["customer"][order], return_index=True)
        last_clicked[customer] = clicks["creative"][order][first]


def _segments_of(world: PolicyWorld, k: int, sample: int) -> tuple[np.ndarray, int]:
    """Observable personas, the method of ``segments``; k = 1 is everyone (no clustering, no draws)."""
    if k == 1:
        return np.zeros(world.customers.n, np.int32), 1
    return cluster_customers(world, _Profiles(world), k, sample)


def _full(n: int, value: int, dtype: type) -> np.ndarray:
    return np.full(n, value, dtype)


# ------------------------------------------------------------------------------------------------------
# micro: segments on observables plus behaviour
# ------------------------------------------------------------------------------------------------------


class MicroParams(SegmentsParams):
    segments: int = Field(64, ge=1, le=MAX_PERSONAS, description="number of micro-segments k")
    recluster_every_waves: int = Field(
        7,
        ge=0,
        le=1000,
        description="re-cluster on observables + behaviour every this many waves after the test waves (0 = never)",
    )
    history_shrinkage: float = Field(
        5.0, gt=0.0, le=10_000.0, description="pseudo-sends pulling each customer's open and click rates to the mean"
    )
    behaviour_weight: float = Field(
        1.0, ge=0.0, le=100.0, description="weight of the standardised engagement features against the observables"
    )
    clicked_weight: float = Field(
        2.0, ge=0.0, le=100.0, description="weight of the direction of the creative a customer last clicked"
    )
    evidence_carryover: float = Field(
        0.5, ge=0.0, le=1.0, description="share of the old segments' evidence the new ones inherit at a re-clustering"
    )
    kmeans_iterations: int = Field(10, ge=1, le=1000, description="Lloyd iterations of k-means")


@register_targeting("micro")
class MicroPolicy(SegmentsPolicy):
    """Micro-segments: k-means on observables *and* behaviour, test-and-learn within each segment.

    A customer's point is the standardised observables ``e_i``, then the standardised engagement features
    (log1p(sends), recorded-open rate and click rate, the rates shrunk toward the base's average with
    ``history_shrinkage`` pseudo-sends) times ``behaviour_weight``, then the direction ``φ`` of the creative
    they last clicked (zeros if none) times ``clicked_weight``. k-means++ then Lloyd (``kmeans2``) run on a
    sample of ``clustering_sample`` customers; every customer goes to the nearest centroid (if k is at
    least the number of distinct points, each distinct point is its own segment).

    At the start nobody has a history, so the segments are observable personas and the first
    ``test_waves`` waves are ``segments``' test-and-learn. From wave ``test_waves`` on, every
    ``recluster_every_waves`` waves, the base is clustered again with the behaviour seen so far and the
    new segments are tested for ``test_waves`` waves before their winners are rolled out (``segments``'
    own logic, including the ``bespoke`` option: this class extends it). A new segment inherits
    ``evidence_carryover`` times the deliveries and clicks of the old segments it overlaps, in proportion
    to the share of each old segment's (non-holdout) customers it receives, i.e. outcomes are taken as
    spread evenly within an old segment; until its winner is picked it keeps the choice of the old
    segment most of its customers came from.

    In this model the engagement level (warmth, fatigue) shifts every creative's click odds alike, so it
    does not say *which* creative suits a customer; the last click does.
    """

    Params = MicroParams
    params: MicroParams

    def __init__(self, params: MicroParams, world: PolicyWorld) -> None:  # type: ignore[override]
        # segments' own state for one segment (no clustering to speak of), then our segmentation.
        super().__init__(params.model_copy(update={"segments": 1}), world)
        self.params = params
        self.profiles = _Profiles(world)
        self.last_clicked = _full(world.customers.n, -1, np.int32)
        self.segment_of, self.n_segments = self._cluster()
        self._reset_cells(self.n_segments)
        self.test_from = 0  # wave index at which the current segments' test began
        self.reclusterings = 0

    def _reset_cells(self, n_segments: int) -> None:
        self.cells = CellCounts(n_segments, self.base_count)
        self.choice = np.zeros(n_segments, np.int32)

    def plan(self, wave: WaveContext) -> Plan:
        every, first = self.params.recluster_every_waves, self.params.test_waves
        due = every > 0 and wave.wave_index >= first and (wave.wave_index - first) % every == 0
        if due and int(self.world.customers.sends.max(initial=0)) > 0:
            self._recluster()
            self.test_from, self.rolled_out = wave.wave_index, False
        # segments' plan counts waves from the start of the current segments' test
        return super().plan(dataclasses.replace(wave, wave_index=wave.wave_index - self.test_from))

    def observe(self, feedback: Feedback) -> None:
        super().observe(feedback)
        update_last_clicked(self.last_clicked, feedback)

    def _cluster(self) -> tuple[np.ndarray, int]:
        """(segment of each customer, number of segments) from the observables and behaviour of now."""
        p = self.params
        behaviour = Behaviour(
            shrinkage=p.history_shrinkage,
            weight=p.behaviour_weight,
            last_clicked=self.last_clicked,
            directions=self.world.catalogue.directions[: self.base_count],
            clicked_weight=p.clicked_weight,
        )
        return cluster_customers(
            self.world,
            self.profiles,
            p.segments,
            p.clustering_sample,
            iterations=p.kmeans_iterations,
            behaviour=behaviour,
        )

    def _recluster(self) -> None:
        old_segment, old_n = self.segment_of, self.n_segments
        old_cells, old_choice = self.cells, self.choice
        new_segment, new_n = self._cluster()
        # Overlap of old and new segments among the customers whose outcomes were counted (non-holdout).
        who = self.world.customers.contactable
        pair = old_segment[who].astype(np.int64) * new_n + new_segment[who]
        cells, size = np.unique(pair, return_counts=True)
        old_of, new_of = cells // new_n, cells % new_n
        old_size = np.bincount(old_segment[who], minlength=old_n).astype(np.float64)
        share = self.params.evidence_carryover * size / old_size[old_of]
        transfer = sparse.csr_matrix((share, (new_of, old_of)), shape=(new_n, old_n))
        self._reset_cells(new_n)
        # Old evidence as sparse [old segments, creatives] matrices, so that nothing is dense in k x C.
        seg, creative, delivered, clicked = old_cells.cells()
        shape = (old_n, self.base_count)
        moved_delivered = (transfer @ sparse.csr_matrix((delivered, (seg, creative)), shape=shape)).tocoo()
        moved_clicked = (transfer @ sparse.csr_matrix((clicked, (seg, creative)), shape=shape)).tocoo()
        c = np.int64(self.base_count)
        keys_d = moved_delivered.row.astype(np.int64) * c + moved_delivered.col
        keys_c = moved_clicked.row.astype(np.int64) * c + moved_clicked.col
        keys, inverse = np.unique(np.concatenate([keys_d, keys_c]), return_inverse=True)
        inverse = inverse.reshape(-1)
        nd = keys_d.shape[0]
        self.cells = CellCounts.from_cells(
            new_n,
            self.base_count,
            keys,
            np.bincount(inverse[:nd], weights=moved_delivered.data, minlength=keys.shape[0]),
            np.bincount(inverse[nd:], weights=moved_clicked.data, minlength=keys.shape[0]),
        )
        order = np.lexsort((size, new_of))  # by new segment, then overlap size
        last = np.flatnonzero(np.diff(np.append(new_of[order], new_n)))
        biggest = np.zeros(new_n, np.int64)
        biggest[new_of[order][last]] = old_of[order][last]
        self.choice = old_choice[biggest].astype(np.int32)
        self.segment_of, self.n_segments = new_segment, new_n
        self.reclusterings += 1


# ------------------------------------------------------------------------------------------------------
# individual: 1:1 from declared taste and history
# ------------------------------------------------------------------------------------------------------


class IndividualParams(PolicyParams):
    explore_share: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="share of customers with no declared taste and no click who get a uniformly random creative",
    )
    use_declared: bool = Field(True, description="send customers who declared their taste the creative closest to it")
    use_history: bool = Field(True, description="send customers who clicked the creative they last clicked")
    channel: ChannelName | None = Field(None, description="channel to use (default: schedule.channel)")


_FALLBACK, _HISTORY, _DECLARED = 0, 1, 2


@register_targeting("individual")
class IndividualPolicy(PolicyBase):
    """1:1 targeting from what each customer has told us, by word or by click.

    Every reachable customer is contacted each wave with, in order of precedence:

    1. **declared taste** ``θ̂_i`` known: the creative maximising ``θ̂_i·φ_k``;
    2. otherwise a **click** seen: the creative they last clicked (tracked from click feedback);
    3. otherwise the **fallback**, learned broadcast-style: the creative with the most clicks per
       delivered message among fallback customers so far (creative 0 before any data), except for a random
       ``explore_share`` of them who get a uniformly random creative.

    Real 1:1 needs declared data: with nobody declared, rules 2 and 3 are little more than a broadcast
    (a last click is a weak, one-off signal of taste). Declared taste comes from a preference centre today
    (``population.declared_taste_share``); the inbound pipeline (conversations, DESIGN §1.5) will add
    more as it captures what customers say.
    """

    Params = IndividualParams
    params: IndividualParams
    feedback_kinds = frozenset({"delivered", "click"})

    def __init__(self, params: IndividualParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = _channel_index(world, params.channel)
        n = world.customers.n
        self.last_clicked = _full(n, -1, np.int32)
        self.mode = np.zeros(n, np.uint8)  # the rule that chose the customer's last creative
        self.fallback = CellCounts(1, world.catalogue.count)
        self._declared_for: np.ndarray | None = None
        self._declared_best = np.empty(0, np.int32)

    def declared_best(self) -> np.ndarray:
        """Best creative of each declared-taste row, recomputed when the engine gives a new table."""
        taste = self.world.customers.declared_taste
        if taste is None:
            return self._declared_best
        if taste is not self._declared_for or taste.shape[0] != self._declared_best.shape[0]:
            directions = self.world.catalogue.directions
            best = np.empty(taste.shape[0], np.int32)
            rows = max(1, CHUNK_ELEMENTS // directions.shape[0])
            for lo in range(0, taste.shape[0], rows):
                best[lo : lo + rows] = np.argmax(taste[lo : lo + rows] @ directions.T, axis=1)
            self._declared_for, self._declared_best = taste, best
        return self._declared_best

    def plan(self, wave: WaveContext) -> Plan:
        view, k = self.world.customers, self.world.catalogue.count
        who = np.flatnonzero(view.reachable(self.channel))
        n = who.shape[0]
        creative = _full(n, int(self.fallback.greedy()[0]), np.int32)
        explore = self.rng.random(n) < self.params.explore_share
        creative[explore] = self.rng.integers(0, k, size=int(explore.sum()), dtype=np.int32)
        mode = np.zeros(n, np.uint8)
        if self.params.use_history:
            last = self.last_clicked[who]
            has = last >= 0
            creative[has], mode[has] = last[has], _HISTORY
        if self.params.use_declared and view.declared_row is not None:
            row = view.declared_row[who]
            has = row >= 0
            creative[has], mode[has] = self.declared_best()[row[has]], _DECLARED
        self.mode[who] = mode
        return Plan(customer=who, creative=creative, channel=_full(n, self.channel, np.int8))

    def observe(self, feedback: Feedback) -> None:
        self.fallback.observe(feedback, None, keep=self.mode == _FALLBACK)
        update_last_clicked(self.last_clicked, feedback)


# ------------------------------------------------------------------------------------------------------
# Bandits over creatives, optionally per observable segment
# ------------------------------------------------------------------------------------------------------


class _SegmentBanditParams(PolicyParams):
    segments: int = Field(1, ge=1, le=MAX_PERSONAS, description="observable personas with a bandit each (1 = one)")
    clustering_sample: int = Field(20_000, ge=100, le=10_000_000, description="customers sampled for k-means")
    channel: ChannelName | None = Field(None, description="channel to use (default: schedule.channel)")


class _SegmentBandit(PolicyBase):
    """A bandit over creatives in each observable segment (``segments``' clustering); counts per cell."""

    params: _SegmentBanditParams
    feedback_kinds = frozenset({"delivered", "click"})

    def __init__(self, params: _SegmentBanditParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = _channel_index(world, params.channel)
        self.segment_of, self.n_segments = _segments_of(world, params.segments, params.clustering_sample)
        self.counts = CellCounts(self.n_segments, world.catalogue.count)

    def plan(self, wave: WaveContext) -> Plan:
        who = np.flatnonzero(self.world.customers.reachable(self.channel))
        segment = self.segment_of[who]
        creative = self.choose(segment)
        return Plan(
            customer=who,
            creative=creative,
            channel=_full(who.shape[0], self.channel, np.int8),
            audience=segment.astype(np.int64) * self.world.catalogue.count + creative,
        )

    def choose(self, segment: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self, feedback: Feedback) -> None:
        self.counts.observe(feedback, self.segment_of)


class EpsilonGreedyParams(_SegmentBanditParams):
    epsilon: float = Field(0.1, ge=0.0, le=1.0, description="probability a customer gets a uniformly random creative")


@register_targeting("epsilon_greedy")
class EpsilonGreedyPolicy(_SegmentBandit):
    """ε-greedy over creatives, per observable segment.

    Each customer independently: with probability ε a uniformly random creative; otherwise the segment's
    best estimate of clicks per delivered (ties: lowest index). While a segment has creatives never
    delivered, its greedy customers are spread uniformly over those (unseen creatives are explored first:
    in a wave-batched setting one wave explores them all at once).
    """

    Params = EpsilonGreedyParams
    params: EpsilonGreedyParams

    def choose(self, segment: np.ndarray) -> np.ndarray:
        n, k = segment.shape[0], self.world.catalogue.count
        creative = self.counts.greedy()[segment]
        n_unseen, start, composite = self.counts.unseen()
        need = n_unseen[segment] > 0
        if need.any():
            seg = segment[need]
            pick = (self.rng.random(seg.shape[0]) * n_unseen[seg]).astype(np.int64)
            creative[need] = self.counts.nth_unseen(seg, pick, start, composite)
        explore = self.rng.random(size=n) < self.params.epsilon
        creative[explore] = self.rng.integers(0, k, size=int(np.count_nonzero(explore)), dtype=np.int32)
        return creative.astype(np.int32, copy=False)


class ThompsonParams(_SegmentBanditParams):
    posterior_samples: int = Field(
        4000, ge=1, le=1_000_000, description="posterior draws per segment and wave that estimate P(creative is best)"
    )


SPARSE_THOMPSON_CREATIVES = 256  # above this many creatives, draw only the posterior values that can win
EXCEEDANCE_TARGET = 16  # creatives expected above the threshold per draw (none above it: about e^-16)


def bernoulli_successes(rng: np.random.Generator, p: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the successes of independent Bernoulli(``p[j]``) trials in every cell of a
    ``rows`` x len(p) table, without drawing the table: down each column the gaps between successes are
    geometric. Costs O(len(p) + successes) draws."""
    column = np.flatnonzero(p > 0)
    prob = p[column]
    position = np.zeros(column.shape[0], np.int64)  # first row of each column not yet decided
    out_row: list[np.ndarray] = []
    out_column: list[np.ndarray] = []
    active = np.arange(column.shape[0])
    while active.shape[0]:
        remaining = rows - position[active]
        mean = remaining * prob[active]
        # enough gaps to pass the last row almost always; a column that falls short goes round again
        budget = np.minimum(np.ceil(mean + 6.0 * np.sqrt(mean) + 4.0), remaining + 1).astype(np.int64)
        gaps = rng.geometric(np.repeat(prob[active], budget))
        # A gap past the last row ends the column; for tiny p numpy's draw can overflow int64 (negative).
        limit = np.repeat(remaining + 1, budget)
        gaps = np.where((gaps < 1) | (gaps > limit), limit, gaps)
        total = np.cumsum(gaps)
        ends = np.cumsum(budget)
        before = np.repeat(np.concatenate(([0], total[ends[:-1] - 1])), budget)
        local = total - before  # 1-based offset of each success from the column's position
        row = np.repeat(position[active], budget) + local - 1
        keep = row < rows
        out_row.append(row[keep])
        out_column.append(np.repeat(column[active], budget)[keep])
        position[active] += local[ends - 1]
        active = active[position[active] < rows]
    if not out_row:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_row), np.concatenate(out_column)


def posterior_argmax(rng: np.random.Generator, alpha: np.ndarray, beta: np.ndarray, rows: int) -> np.ndarray:
    """int32 [rows]: for each row, the argmax over creatives k of an independent draw X_k ~ Beta(alpha_k,
    beta_k) — exactly in distribution, without drawing every X_k.

    Only the largest value matters, so: pick a threshold t (the EXCEEDANCE_TARGET-th largest of one
    separate posterior draw per creative, so t does not depend on the rows' draws); whether X_k > t is
    Bernoulli(P(X_k > t)), drawn sparsely (``bernoulli_successes``); each X_k above t is drawn from its
    posterior truncated to (t, 1) by the inverse survival function; a row's winner is its largest value
    above t. A row with no value above t (probability about e^-16 per row) draws all its values from the
    posteriors truncated to (0, t]. Cost per call: O(K + rows·EXCEEDANCE_TARGET) instead of rows·K.
    """
    k = alpha.shape[0]
    probe = rng.beta(alpha, beta)
    target = min(EXCEEDANCE_TARGET, k)
    threshold = float(np.partition(probe, k - target)[k - target])
    above = special.betaincc(alpha, beta, threshold)
    row, creative = bernoulli_successes(rng, above, rows)
    value = special.betainccinv(alpha[creative], beta[creative], rng.random(row.shape[0]) * above[creative])
    order = np.lexsort((creative, -value, row))  # by row, largest value first (ties: lowest index)
    first = order[np.flatnonzero(np.diff(row[order], prepend=-1))]
    winner = np.full(rows, -1, np.int32)
    winner[row[first]] = creative[first]
    empty = np.flatnonzero(winner < 0)
    if empty.shape[0]:
        below = special.betainc(alpha, beta, threshold)
        step = max(1, CHUNK_ELEMENTS // k)
        for lo in range(0, empty.shape[0], step):
            part = empty[lo : lo + step]
            values = special.betaincinv(alpha, beta, rng.random((part.shape[0], k)) * below)
            winner[part] = np.argmax(values, axis=1)
    return winner


@register_targeting("thompson")
class ThompsonPolicy(_SegmentBandit):
    """Thompson sampling over creatives with a Beta(1 + clicks, 1 + delivered − clicks) posterior per
    (segment, creative) cell.

    Per-customer Thompson sampling, exactly in distribution and vectorised: a customer's draw is an iid
    sample of the posterior and they get its argmax. So each wave, for each segment, we draw the posterior
    T = min(``posterior_samples``, customers planned in the segment) times, which estimates
    P(creative k is best | data), and give each customer the argmax of one of those T draws picked
    uniformly at random, i.e. a creative drawn from that estimated probability vector. Each customer's
    creative then has exactly the Thompson distribution (the T draws are posterior draws); customers of
    a segment share draws, which only correlates them. Up to ``SPARSE_THOMPSON_CREATIVES`` creatives a
    draw is K Beta variates; beyond, only the argmax of each draw is drawn (``posterior_argmax``), at
    O(K + T) per segment and wave instead of T·K. ``prob_best`` keeps the last estimate of P(best) per
    segment (sparse: creatives that won no draw are absent).
    """

    Params = ThompsonParams
    params: ThompsonParams

    def __init__(self, params: ThompsonParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.prob_best = sparse.csr_matrix((self.n_segments, world.catalogue.count))

    def choose(self, segment: np.ndarray) -> np.ndarray:
        s_count, k = self.counts.shape
        draws = np.minimum(np.bincount(segment, minlength=s_count), self.params.posterior_samples)
        offset = np.concatenate(([0], np.cumsum(draws)[:-1]))
        row_segment = np.repeat(np.arange(s_count), draws)
        winner = np.empty(row_segment.shape[0], np.int32)
        rows = max(1, CHUNK_ELEMENTS // k)
        if self.counts.dense and k <= SPARSE_THOMPSON_CREATIVES:
            delivered, clicked = self.counts.table()
            alpha = 1.0 + clicked
            beta = 1.0 + np.maximum(delivered - clicked, 0.0)
            for lo in range(0, row_segment.shape[0], rows):
                seg = row_segment[lo : lo + rows]
                winner[lo : lo + rows] = np.argmax(self.rng.beta(alpha[seg], beta[seg]), axis=1)
        else:  # one segment at a time: its posterior row is dense in K, the table is not
            for s in np.flatnonzero(draws).tolist():
                delivered, clicked = self.counts.row(s)
                alpha = 1.0 + clicked
                beta = 1.0 + np.maximum(delivered - clicked, 0.0)
                lo, hi = int(offset[s]), int(offset[s] + draws[s])
                if k > SPARSE_THOMPSON_CREATIVES:
                    winner[lo:hi] = posterior_argmax(self.rng, alpha, beta, hi - lo)
                    continue
                for start in range(lo, hi, rows):
                    stop = min(hi, start + rows)
                    draw = self.rng.beta(alpha, beta, size=(stop - start, k))
                    winner[start:stop] = np.argmax(draw, axis=1)
        cells, hits = np.unique(row_segment * k + winner, return_counts=True)
        self.prob_best = sparse.csr_matrix((hits / draws[cells // k], (cells // k, cells % k)), shape=(s_count, k))
        pick = (self.rng.random(segment.shape[0]) * draws[segment]).astype(np.int64)
        return winner[offset[segment] + pick]


# ------------------------------------------------------------------------------------------------------
# linucb: contextual bandit
# ------------------------------------------------------------------------------------------------------


class LinUCBParams(PolicyParams):
    alpha: float = Field(0.1, ge=0.0, le=100.0, description="width of the upper confidence bound")
    ridge: float = Field(1.0, gt=0.0, le=1e6, description="lambda: A_k starts as lambda times the identity")
    warmup_waves: int = Field(1, ge=0, le=1000, description="first waves with uniformly random creatives")
    history_shrinkage: float = Field(
        5.0, gt=0.0, le=10_000.0, description="pseudo-sends in the open and click rates of the context"
    )
    channel: ChannelName | None = Field(None, description="channel to use (default: schedule.channel)")


@register_targeting("linucb")
class LinUCBPolicy(PolicyBase):
    """Disjoint LinUCB (Li, Chu, Langford & Schapire 2010), one linear model per creative.

    Context ``x_i = [1, e_i, log1p(sends), opens/(sends + a), clicks/(sends + a)]`` (a =
    ``history_shrinkage``; the rates shrink toward 0, and the intercept and log1p(sends) absorb the
    level). Reward: a click per delivered message. Score of creative k:
    ``θ_k·x + α·sqrt(xᵀ A_k⁻¹ x)`` with ``θ_k = A_k⁻¹ b_k``; each customer gets the argmax.
    Updates are batched per feedback bucket: ``A_k += Σ x xᵀ`` over delivered messages of creative k,
    ``b_k += Σ x`` over its clicks, with the context the customer had when the message was planned (the
    counters are snapshotted at plan time; a click released after the customer's next plan uses the
    newer snapshot). The first ``warmup_waves`` send uniformly random creatives, since a batched UCB with
    no data would send every customer the same creative. Scoring is computed once per distinct context
    and in chunks.
    """

    Params = LinUCBParams
    params: LinUCBParams
    feedback_kinds = frozenset({"delivered", "click"})

    def __init__(self, params: LinUCBParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = _channel_index(world, params.channel)
        self.profiles = _Profiles(world)
        n, k = world.customers.n, world.catalogue.count
        self.dim = 1 + self.profiles.observables.shape[1] + 3
        self.a_matrix = np.broadcast_to(params.ridge * np.eye(self.dim), (k, self.dim, self.dim)).copy()
        self.b_vector = np.zeros((k, self.dim))
        self.snapshot = np.zeros(n, np.int64)  # history key of each customer when last planned
        self._stale = np.ones(k, bool)  # creatives whose θ_k and A_k⁻¹ must be recomputed
        self._theta = np.zeros((k, self.dim))
        self._widths = np.zeros((self.dim * (self.dim + 1) // 2, k))

    def contexts(self, observed: np.ndarray, history: np.ndarray) -> np.ndarray:
        """float64 [n, D] contexts from encodings [n, q] and history keys [n]."""
        out = np.empty((history.shape[0], self.dim))
        out[:, 0] = 1.0
        q = observed.shape[1]
        out[:, 1 : 1 + q] = observed
        out[:, 1 + q :] = engagement_features(*split_history(history), self.params.history_shrinkage)
        return out

    def scores(self, x: np.ndarray, widths: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """[n, K] upper confidence bounds of every creative for contexts ``x``; ``widths`` from ``packed``.

        ``xᵀ A_k⁻¹ x = Σ_{i≤j} x_i x_j w_kij`` with ``w_kij`` the upper triangle of ``A_k⁻¹``, off-diagonal
        entries doubled: one matrix product of the packed products ``x_i x_j`` [n, D(D+1)/2] with
        ``widths`` [D(D+1)/2, K] gives every creative's quadratic form at once (no loop over creatives).
        """
        upper, lower = self._triangle
        width = (x[:, upper] * x[:, lower]) @ widths
        # in place: the [n, K] blocks are the cost here, each pass over them counts
        np.maximum(width, 0.0, out=width)
        np.sqrt(width, out=width)
        width *= self.params.alpha
        width += x @ theta.T
        return width

    def packed(self, a_inv: np.ndarray) -> np.ndarray:
        """[D(D+1)/2, K]: the upper triangle of each ``A_k⁻¹`` (symmetrised), off-diagonal entries doubled."""
        upper, lower = self._triangle
        symmetric = 0.5 * (a_inv[:, upper, lower] + a_inv[:, lower, upper])
        return np.ascontiguousarray((symmetric * np.where(upper == lower, 1.0, 2.0)).T)

    @property
    def _triangle(self) -> tuple[np.ndarray, np.ndarray]:
        return np.triu_indices(self.dim)

    def plan(self, wave: WaveContext) -> Plan:
        who = np.flatnonzero(self.world.customers.reachable(self.channel))
        n, k = who.shape[0], self.world.catalogue.count
        history = history_keys(self.world, who)
        self.snapshot[who] = history
        if wave.wave_index < self.params.warmup_waves:
            creative = self.rng.integers(0, k, size=n, dtype=np.int32)
            return Plan(customer=who, creative=creative, channel=_full(n, self.channel, np.int8))
        theta, widths = self._model()
        rows = max(1, CHUNK_ELEMENTS // k)
        profiles = self.profiles
        if profiles.exact:  # score each distinct (profile, history) once
            distinct, inverse = np.unique((profiles.of[who] << HISTORY_BITS) | history, return_inverse=True)
            best = np.empty(distinct.shape[0], np.int32)
            for lo in range(0, distinct.shape[0], rows):
                part = distinct[lo : lo + rows]
                x = self.contexts(profiles.observables[part >> HISTORY_BITS], part)
                best[lo : lo + rows] = np.argmax(self.scores(x, widths, theta), axis=1)
            creative = best[inverse.reshape(-1)]
        else:
            creative = np.empty(n, np.int32)
            for lo in range(0, n, rows):
                x = self.contexts(profiles.observables_of(self.world, who[lo : lo + rows]), history[lo : lo + rows])
                creative[lo : lo + rows] = np.argmax(self.scores(x, widths, theta), axis=1)
        return Plan(customer=who, creative=creative, channel=_full(n, self.channel, np.int8))

    def _model(self) -> tuple[np.ndarray, np.ndarray]:
        """(θ [K, D], packed A⁻¹ [D(D+1)/2, K]), recomputed only for creatives whose A_k or b_k changed
        since the last plan: after the warm-up most creatives get no more messages."""
        stale = np.flatnonzero(self._stale)
        if stale.shape[0]:
            a_inv = np.linalg.inv(self.a_matrix[stale])
            self._theta[stale] = np.einsum("kij,kj->ki", a_inv, self.b_vector[stale])
            self._widths[:, stale] = self.packed(a_inv)
            self._stale[:] = False
        return self._theta, self._widths

    def _context_of(self, customer: np.ndarray) -> np.ndarray:
        return self.contexts(self.profiles.observables_of(self.world, customer), self.snapshot[customer])

    def observe(self, feedback: Feedback) -> None:
        delivered = feedback.get("delivered")
        customer, creative = delivered["customer"], delivered["creative"]
        if customer.shape[0] and self.profiles.exact:
            # Messages with the same context add the same x xᵀ: a sparse [creatives, contexts] count matrix
            # times the contexts' packed products x_i x_j gives every creative's sum at once.
            units, unit_of = np.unique(
                (self.profiles.of[customer] << HISTORY_BITS) | self.snapshot[customer], return_inverse=True
            )
            k = self.world.catalogue.count
            counts = sparse.csr_matrix(
                (np.ones(customer.shape[0]), (creative, unit_of.reshape(-1))), shape=(k, units.shape[0])
            )
            upper, lower = self._triangle
            x = self.contexts(self.profiles.observables[units >> HISTORY_BITS], units)
            touched = np.flatnonzero(np.diff(counts.indptr))
            sums = counts[touched] @ (x[:, upper] * x[:, lower])
            update = np.zeros((touched.shape[0], self.dim, self.dim))
            update[:, upper, lower] = sums
            update[:, lower, upper] = sums
            self.a_matrix[touched] += update
            self._stale[touched] = True
        else:
            step = max(1, CHUNK_ELEMENTS // self.dim**2)
            for lo in range(0, customer.shape[0], step):
                order = np.argsort(creative[lo : lo + step], kind="stable")
                rows = customer[lo : lo + step][order]
                self._add_outer(creative[lo : lo + step][order].astype(np.int64), self._context_of(rows), None)
        clicks = feedback.get("click")
        if clicks["customer"].shape[0]:
            np.add.at(self.b_vector, clicks["creative"], self._context_of(clicks["customer"]))
            self._stale[clicks["creative"]] = True

    def _add_outer(self, creative: np.ndarray, x: np.ndarray, weight: np.ndarray | None) -> None:
        """``A_k += Σ w x xᵀ`` over rows sorted by ``creative`` (weights ``w``, default 1), in chunks of
        rows so that the packed products stay of bounded size."""
        upper, lower = self._triangle
        step = max(1, CHUNK_ELEMENTS // len(upper))
        for lo in range(0, creative.shape[0], step):
            rows = x[lo : lo + step]
            kinds, start = np.unique(creative[lo : lo + step], return_index=True)
            products = rows[:, upper] * rows[:, lower]
            if weight is not None:
                products *= weight[lo : lo + step, None]
            sums = np.add.reduceat(products, start, axis=0)
            update = np.zeros((kinds.shape[0], self.dim, self.dim))
            update[:, upper, lower] = sums
            update[:, lower, upper] = sums
            self.a_matrix[kinds] += update
            self._stale[kinds] = True


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

    def __init__(self, params: _WhomParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = _channel_index(world, params.channel)
        n = world.customers.n
        self.persona_of, self.n_personas = _segments_of(world, params.segments, params.clustering_sample)
        self.in_control = self.rng.random(n) < self.control_share
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
            test = self.rng.random(n) < self.params.test_share
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
