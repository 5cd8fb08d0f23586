"""Built-in targeting policies: ``random``, ``broadcast``, ``segments`` and ``oracle`` (DESIGN §1.4).

Each is registered by name. They see only what :class:`~masssim.policies.base.CustomerView` exposes;
the ``oracle`` alone reads latent taste, as the upper bound a teacher compares against.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
from pydantic import Field
from scipy.cluster.vq import kmeans2

from masssim.policies.base import Feedback, Plan, PolicyBase, PolicyParams, PolicyWorld, WaveContext
from masssim.policies.cells import CellCounts
from masssim.policies.registry import register_targeting
from masssim.scenario import CHANNEL_NAMES

ChannelName = Literal["email", "sms", "messaging", "paid_social"]


def _channel_index(world: PolicyWorld, name: str | None) -> int:
    return world.default_channel if name is None else CHANNEL_NAMES.index(name)


class RandomParams(PolicyParams):
    audience_share: float = Field(1.0, gt=0.0, le=1.0, description="share of reachable customers contacted per wave")
    channel: ChannelName | None = Field(None, description="channel to use (default: schedule.channel)")


@register_targeting("random")
class RandomPolicy(PolicyBase):
    """The floor: a random share of reachable customers, each with a creative drawn at random."""

    Params = RandomParams
    params: RandomParams
    feedback_kinds = frozenset()

    def plan(self, wave: WaveContext) -> Plan:
        channel = _channel_index(self.world, self.params.channel)
        who = np.flatnonzero(self.world.customers.reachable(channel))
        if self.params.audience_share < 1.0:
            keep = self.rng.random(who.shape[0]) < self.params.audience_share
            who = who[keep]
        creative = self.rng.integers(0, self.world.catalogue.count, size=who.shape[0], dtype=np.int32)
        return Plan(customer=who, creative=creative, channel=np.full(who.shape[0], channel, np.int8))


class SegmentsParams(PolicyParams):
    segments: int = Field(8, ge=1, le=1_000_000, description="number of personas k")
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

    def __init__(self, params: SegmentsParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = _channel_index(world, params.channel)
        self.segment_of, self.n_segments = _cluster_observables(world, params.segments, params.clustering_sample)
        self.base_count = world.catalogue.count  # tests compare catalogue creatives only
        self.cells = CellCounts(self.n_segments, self.base_count)
        self.choice = np.zeros(self.n_segments, np.int32)  # the house creative until a test says otherwise
        self.rolled_out = False

    def plan(self, wave: WaveContext) -> Plan:
        who = np.flatnonzero(self.world.customers.reachable(self.channel))
        segment = self.segment_of[who]
        if wave.wave_index < self.params.test_waves:
            creative = self.choice[segment].copy()
            in_test = self.rng.random(who.shape[0]) < self.params.test_share
            creative[in_test] = self.rng.integers(0, self.base_count, size=int(in_test.sum()), dtype=np.int32)
        else:
            if not self.params.bespoke:
                self._pick_winners()  # re-judged every wave as deliveries and clicks accumulate
            elif not self.rolled_out:
                self._pick_winners()  # the fallback for personas whose taste cannot be estimated
                self._generate_bespoke()  # generated once: each costs its production
                self.rolled_out = True
            if self.params.audience_share < 1.0:
                keep = self._focus(segment)
                who, segment = who[keep], segment[keep]
            creative = self.choice[segment]
        audience = segment.astype(np.int64) * self.world.catalogue.count + creative
        return Plan(
            customer=who,
            creative=creative.astype(np.int32, copy=False),
            channel=np.full(who.shape[0], self.channel, np.int8),
            audience=audience,
        )

    def _pick_winners(self) -> None:
        self.choice = self.cells.greedy(self.choice)

    def _focus(self, segment: np.ndarray) -> np.ndarray:
        """Mask of the customers to contact when the budget covers only ``audience_share`` of them: personas
        in order of estimated click rate (shrunk toward the overall rate), the last one partly, at random.
        With one persona that is a random share each wave; with many it is the same best responders every
        wave, which concentrates contacts and leaves out whoever responds least (often light buyers)."""
        delivered, clicks = self.cells.segment_totals()
        overall = (clicks.sum() + 1.0) / (delivered.sum() + 2.0)
        prior = self.params.bespoke_prior_clicks
        estimate = (clicks + prior) / (delivered + prior / overall)
        order = np.argsort(-estimate, kind="stable")
        counts = np.bincount(segment, minlength=self.n_segments)
        cumulative = np.cumsum(counts[order])
        target = self.params.audience_share * segment.shape[0]
        full = order[cumulative <= target]
        chosen = np.zeros(self.n_segments, bool)
        chosen[full] = True
        keep = chosen[segment]
        if full.shape[0] < order.shape[0]:
            boundary = order[full.shape[0]]
            room = target - (cumulative[full.shape[0] - 1] if full.shape[0] else 0.0)
            in_boundary = segment == boundary
            fraction = room / max(1, counts[boundary])
            keep |= in_boundary & (self.rng.random(segment.shape[0]) < fraction)
        return keep

    def _generate_bespoke(self) -> None:
        """One generated creative per segment, aimed at the segment's estimated taste."""
        catalogue = self.world.catalogue
        directions = catalogue.directions[: self.base_count].astype(np.float64)
        total_delivered, total_clicks = self.cells.creative_totals()
        global_rate = (total_clicks + 1.0) / (total_delivered + 2.0)
        prior = self.params.bespoke_prior_clicks
        # A cell never tested has rate = global rate and so no lift: only tested cells enter the sum.
        segment, creative, delivered, clicks = self.cells.cells()
        rate = (clicks + prior) / (delivered + prior / global_rate[creative])
        lift = np.log(rate) - np.log(global_rate[creative])  # segment-specific: creative quality cancels out
        d = directions.shape[1]
        gram = directions.T @ directions + self.params.bespoke_ridge * np.eye(d)
        weighted = lift[:, None] * directions[creative]
        estimate = np.empty((self.n_segments, d))  # [segments, d]: sum over cells of lift x direction
        for j in range(d):
            estimate[:, j] = np.bincount(segment, weights=weighted[:, j], minlength=self.n_segments)
        del weighted
        estimate = estimate @ np.linalg.inv(gram)
        view = self.world.customers
        if view.declared_row is not None and view.declared_taste is not None:
            declared = np.flatnonzero(view.declared_row >= 0)
            seg = self.segment_of[declared]
            sums = np.zeros((self.n_segments, d))
            np.add.at(sums, seg, view.declared_taste[view.declared_row[declared]])
            counts = np.bincount(seg, minlength=self.n_segments)
            has = counts > 0
            estimate[has] = sums[has] / counts[has, None]
        usable = np.linalg.norm(estimate, axis=1) > 1e-9
        if usable.any():
            ids = catalogue.generate(estimate[usable])
            self.choice[np.flatnonzero(usable)] = ids

    def observe(self, feedback: Feedback) -> None:
        self.cells.observe(feedback, self.segment_of)  # generated creatives are not part of the test


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
        step = 1 << 18
        for start in range(0, world.customers.n, step):
            score = beta * (taste[start : start + step] @ directions.T) + quality
            self.best[start : start + step] = np.argmax(score, axis=1)

    def plan(self, wave: WaveContext) -> Plan:
        who = np.flatnonzero(self.world.customers.reachable(self.channel))
        return Plan(customer=who, creative=self.best[who], channel=np.full(who.shape[0], self.channel, np.int8))


def _cluster_observables(world: PolicyWorld, k: int, sample: int) -> tuple[np.ndarray, int]:
    """Assign every customer to one of at most k personas by k-means on the observables.

    Returns the segment of each customer (int32) and the number of non-empty segments.

    With only categorical observables customers share a finite set of profiles: k-means (k-means++ start)
    runs on a random sample and each profile goes to its nearest centroid; when k is at least the number
    of profiles, each profile is its own persona. With continuous CRM scores every customer is distinct, so
    personas can be as many as asked (up to 1:1): a two-level k-means tree (sqrt(k) coarse clusters, each
    split in proportion to its size) keeps assigning N customers to 10^4 personas at N x 2 sqrt(k)
    distance computations instead of N x k.
    """
    view = world.customers
    if view.continuous_observables > 0:
        return _cluster_customers(world, k, sample)
    profile = view.region.astype(np.int64) * 65_536 + view.age_band.astype(np.int64) * 256 + view.income_band
    profiles, first_index, inverse = np.unique(profile, return_index=True, return_inverse=True)
    if k >= profiles.shape[0]:
        return inverse.astype(np.int32), int(profiles.shape[0])
    pick = world.rng.choice(view.n, size=min(sample, view.n), replace=False)
    points = np.asarray(view.observables(np.sort(pick)), dtype=np.float64)
    # scipy's k-means++ seeding costs O(points x k^2): random starting points beyond 20 clusters.
    centroids, _ = _kmeans(points, k, minit="++" if k <= 20 else "points", seed=_kmeans_seed(world))
    nearest = _nearest(np.asarray(view.observables(first_index), dtype=np.float64), centroids)
    used, relabel = np.unique(nearest, return_inverse=True)
    return relabel[inverse].astype(np.int32), int(used.shape[0])


ASSIGN_CHUNK = 1 << 16


def _kmeans(points: np.ndarray, k: int, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """scipy's kmeans2, without its warning about empty clusters: callers drop empty personas on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One of the clusters is empty")
        centroids, labels = kmeans2(points, k, **options)
    return centroids, labels


def _kmeans_seed(world: PolicyWorld) -> np.random.Generator:
    return np.random.default_rng(int(world.rng.integers(0, 2**31 - 1)))


def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of each point (squared Euclidean), via one matrix product."""
    cross = points @ centroids.T
    return np.argmin((centroids * centroids).sum(axis=1)[None, :] - 2.0 * cross, axis=1)


def _cluster_customers(world: PolicyWorld, k: int, sample: int) -> tuple[np.ndarray, int]:
    view = world.customers
    k = min(k, view.n)
    size = min(view.n, max(sample, 20 * k))  # about twenty sampled customers per persona
    pick = np.sort(world.rng.choice(view.n, size=size, replace=False))
    points = np.asarray(view.observables(pick), dtype=np.float64)
    k1 = max(1, min(k, int(np.ceil(np.sqrt(k)))))
    coarse, coarse_label = _kmeans(points, k1, minit="++" if k1 <= 20 else "points", seed=_kmeans_seed(world))
    # Split each coarse cluster into a number of personas proportional to its share of the sample.
    sizes = np.bincount(coarse_label, minlength=k1)
    split = np.maximum(1, np.floor(sizes / max(1, size) * k).astype(int))
    split = np.minimum(split, np.maximum(sizes, 1))
    fine: list[np.ndarray] = []
    for c in range(k1):
        members = points[coarse_label == c]
        if members.shape[0] == 0:
            fine.append(coarse[c : c + 1])
        elif split[c] == 1 or members.shape[0] <= split[c]:
            fine.append(members.mean(axis=0, keepdims=True) if split[c] == 1 else members)
        else:
            # k-means++ seeding costs O(points x k^2) in scipy; for many small personas random points are a
            # good enough start and keep 10^4 personas to seconds.
            start = "++" if split[c] <= 20 else "points"
            centres, _ = _kmeans(members, int(split[c]), minit=start, seed=_kmeans_seed(world), iter=5)
            fine.append(centres)
    offsets = np.concatenate(([0], np.cumsum([f.shape[0] for f in fine])))
    segment = np.empty(view.n, np.int64)
    for lo in range(0, view.n, ASSIGN_CHUNK):
        block = np.asarray(view.observables(slice(lo, lo + ASSIGN_CHUNK)), dtype=np.float64)
        top = _nearest(block, coarse)
        out = np.empty(block.shape[0], np.int64)
        for c in np.unique(top).tolist():
            rows = top == c
            out[rows] = offsets[c] + _nearest(block[rows], fine[c])
        segment[lo : lo + block.shape[0]] = out
    used, relabel = np.unique(segment, return_inverse=True)
    return relabel.astype(np.int32), int(used.shape[0])
