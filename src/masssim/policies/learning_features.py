"""What the learning policies derive from the customer view: engagement features, profile keys,
behaviour clusters (k-means) and per-cell counts, computed once per distinct profile where they can be.

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

from dataclasses import dataclass

import numpy as np

from masssim.policies.base import Feedback, PolicyWorld
from masssim.policies.clustering import kmeans, nearest_centroid, profile_codes

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
        # Profiles numbered in code order, as the personas number them (clustering.profile_codes: no sort of the
        # population); int64 because the keys shift them past the history's 48 bits.
        profile, member, _ = profile_codes(world)
        self.of = profile.astype(np.int64)
        self.count = int(member.shape[0])
        self.observables = np.asarray(view.observables(member), dtype=np.float64)  # [P, q], a member's each
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
