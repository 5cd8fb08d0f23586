"""Learning policies that target segments or single customers (DESIGN §1.4): ``micro`` (segments on
observables plus behaviour) and ``individual`` (1:1 from declared taste and history). Formulas: docs/model.md §6.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pydantic import Field
from scipy import sparse

from masssim.policies.base import Feedback, Plan, PolicyBase, PolicyParams, PolicyWorld, WaveContext, uniform_below
from masssim.policies.cells import CellCounts
from masssim.policies.clustering import CHUNK_ELEMENTS
from masssim.policies.learning_features import Behaviour, _full, _Profiles, cluster_customers, update_last_clicked
from masssim.policies.registry import register_targeting
from masssim.policies.targeting import (
    MAX_PERSONAS,
    ChannelName,
    SegmentsParams,
    SegmentsPolicy,
    _channel_index,
)

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
    # Its segments move with behaviour (re-clustering): it plans on the coordinator of a sharded run, not with
    # the shard rules it inherits from ``segments``.
    plans_on_shards = False

    @classmethod
    def view_columns(cls, params: PolicyParams) -> frozenset[str]:
        return super().view_columns(params) | {"history"}

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

    @classmethod
    def view_columns(cls, params: PolicyParams) -> frozenset[str]:
        return frozenset({"declared_taste"} if getattr(params, "use_declared", True) else ())

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
        explore = uniform_below(self.rng, n, self.params.explore_share)
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
