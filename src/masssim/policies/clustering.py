"""Clustering customers into personas: k-means (k-means++ start, Lloyd) and nearest-centroid assignment.

Shared by ``segments`` (personas on observables) and the learning policies (``micro``, the bandits'
personas). Nothing here is dense in customers x personas: distances are computed in chunks of bounded size,
and with many personas a two-level tree keeps assignment at about N x 2 sqrt(k) distances instead of N x k.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.cluster.vq import kmeans2

from masssim.policies import compiled as switch
from masssim.policies.base import CustomerView, PolicyWorld
from masssim.policies.compiled import compiled

CHUNK_ELEMENTS = 1 << 22  # bound on the entries of a temporary [rows, k] matrix (32 MB in float64)
PROFILE_CHUNK = 1 << 22  # customers coded at a time when profiles are counted
# The fixed profile code of a sharded run's rule (profile_code): region (< 64) x 65,536 + age band x 256 +
# income band, the same on every shard whatever levels occur there.
REGION_STRIDE = 65_536
AGE_STRIDE = 256
PROFILE_CODES = 64 * REGION_STRIDE


def nearest_centroid(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """int64 index of the nearest centroid (squared Euclidean; ties: lowest index) of each row.

    ``argmin |x − c|² = argmax (x·c − |c|²/2)``: with the points augmented by a constant 1 and the
    centroids by ``−|c|²/2`` that is one float32 matrix product per chunk and an argmax, and chunks hold
    at most ``CHUNK_ELEMENTS`` scores whatever k is.
    """
    n, p = points.shape
    k = centroids.shape[0]
    half_sq = -0.5 * np.einsum("ij,ij->i", centroids, centroids)
    right = np.ascontiguousarray(np.hstack([centroids, half_sq[:, None]]).T, dtype=np.float32)  # [p+1, k]
    rows = max(1, min(n, CHUNK_ELEMENTS // max(k, 1)))
    left = np.ones((rows, p + 1), np.float32)
    score = np.empty((rows, k), np.float32)
    out = np.empty(n, np.int64)
    for lo in range(0, n, rows):
        m = min(rows, n - lo)
        left[:m, :p] = points[lo : lo + m]
        np.matmul(left[:m], right, out=score[:m])
        out[lo : lo + m] = np.argmax(score[:m], axis=1)
    return out


def kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each new centre is a point drawn with probability
    proportional to its squared distance to the nearest centre so far.

    O(n·k·p): the running minimum distance is updated with one centre per step (``scipy``'s own
    ``minit="++"`` recomputes the distances to every centre at every step, O(n·k²·p): minutes at k = 1,000,
    hours at k = 10,000). Returns fewer than k centres when the points have fewer distinct values.
    """
    n = points.shape[0]
    sq = np.einsum("ij,ij->i", points, points)
    centres = np.empty((k, points.shape[1]))

    def distance(c: np.ndarray) -> np.ndarray:
        d = sq - 2.0 * (points @ c) + float(c @ c)
        d[d < 1e-9] = 0.0  # the centre itself and its duplicates (rounding would leave crumbs)
        return d

    centres[0] = points[int(rng.integers(n))]
    d2 = distance(centres[0])
    for i in range(1, k):
        cumulative = np.cumsum(d2)
        total = float(cumulative[-1])
        if total <= 0.0:
            return centres[:i]
        pick = min(int(np.searchsorted(cumulative, rng.random() * total, side="right")), n - 1)
        centres[i] = points[pick]
        np.minimum(d2, distance(centres[i]), out=d2)
    return centres


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> np.ndarray:
    """Centroids of ``points`` by Lloyd's algorithm (``scipy.cluster.vq.kmeans2``) from a k-means++ start.

    Empty clusters keep their previous centroid (kmeans2's ``missing="warn"``, warning silenced: an empty
    cluster is harmless here, it just ends up with no customers).
    """
    init = kmeans_plus_plus(points, k, rng)
    if init.shape[0] == 1:
        return init
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        centroids, _ = kmeans2(points, init, iter=iterations, minit="matrix", missing="warn")
    return np.asarray(centroids, dtype=np.float64)


def profile_codes(world: PolicyWorld) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int32 profile of each customer, one customer of each profile, number of customers per profile).

    A profile is a distinct (region, age band, income band); profiles are numbered in code order. Codes are
    numbered densely over the levels that occur (``(region x ages + age) x incomes + income``, which keeps
    that order), so the histogram and the renumbering table stay small (a few hundred entries, in cache)
    and no temporary the size of the population is built: each chunk's codes go straight into the result,
    which is then renumbered in place, chunk by chunk."""
    view = world.customers
    n = view.n
    ages = int(view.age_band.max()) + 1
    incomes = int(view.income_band.max()) + 1
    width = (int(view.region.max()) + 1) * ages * incomes
    if switch.NUMBA is not None:
        # One compiled pass to code and count, one to renumber: at 95 million customers the numpy passes below
        # took 1.7 s of the coordinator's time while the shards waited, these 1.2 s (mostly the first touch of
        # the labels).
        profile = np.empty(n, np.int32)
        counts, member = _profile_codes_compiled(
            view.region, view.age_band, view.income_band, ages, incomes, width, profile
        )
        present = np.flatnonzero(counts)
        return profile, member[present], counts[present]
    # uint16 arithmetic while every code fits (the usual case): a third of the memory traffic of int64
    kind = np.uint16 if width <= 1 << 16 else np.int32
    step = PROFILE_CHUNK
    counts = np.zeros(width, np.int64)
    member = np.zeros(width, np.int64)
    profile = np.empty(n, np.int32)
    for lo in range(0, n, step):
        rows = slice(lo, lo + step)
        code = view.region[rows].astype(kind)
        np.multiply(code, ages, out=code)
        np.add(code, view.age_band[rows], out=code)
        np.multiply(code, incomes, out=code)
        np.add(code, view.income_band[rows], out=code)
        counts += np.bincount(code, minlength=width)
        member[code] = np.arange(lo, lo + code.shape[0])  # any member will do: e_i is a function of the profile
        profile[rows] = code
    present = np.flatnonzero(counts)
    number = np.full(width, -1, np.int32)
    number[present] = np.arange(present.shape[0], dtype=np.int32)
    relabel_in_place(profile, number)
    return profile, member[present], counts[present]


def _profile_codes_loop(region, age, income, ages, incomes, width, profile):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """profile_codes' numpy passes in two loops: each customer's code ``(region x ages + age) x incomes +
    income`` into ``profile``, counted, with the last customer of each code as its member; then the codes
    present renumbered 0, 1, ... in code order. Returns (counts, member) over every code."""
    counts = np.zeros(width, np.int64)
    member = np.zeros(width, np.int64)
    for i in range(profile.shape[0]):
        code = (np.int64(region[i]) * ages + age[i]) * incomes + income[i]
        counts[code] += 1
        member[code] = i
        profile[i] = code
    number = np.full(width, -1, np.int32)
    used = 0
    for code in range(width):
        if counts[code] > 0:
            number[code] = used
            used += 1
    for i in range(profile.shape[0]):
        profile[i] = number[profile[i]]
    return counts, member


_profile_codes_compiled = compiled(_profile_codes_loop)


def relabel_in_place(labels: np.ndarray, table: np.ndarray) -> None:
    """``labels[i] = table[labels[i]]``, in place a chunk at a time: a gather into a new array would hold a
    second label per customer at once (380 MB of int32 at 95 million customers)."""
    for lo in range(0, labels.shape[0], PROFILE_CHUNK):
        part = labels[lo : lo + PROFILE_CHUNK]
        part[:] = table[part]


def _code(view: CustomerView, rows: slice) -> np.ndarray:
    return profile_code(view.region[rows], view.age_band[rows], view.income_band[rows])


def profile_code(region: np.ndarray, age_band: np.ndarray, income_band: np.ndarray) -> np.ndarray:
    """int32 code of each customer's observable profile: region x 65,536 + age band x 256 + income band."""
    return region.astype(np.int32) * REGION_STRIDE + age_band.astype(np.int32) * AGE_STRIDE + income_band


def profile_segments(view: CustomerView, segment_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted codes of the profiles present, int32 segment of each) when the segment is a function of the
    profile (no CRM scores): what the shards of a sharded run need to find their customers' segments."""
    table = np.full(PROFILE_CODES, -1, np.int32)
    if switch.NUMBA is not None:  # one compiled pass, no int32 codes per chunk (0.11 → 0.06 s at 20 million customers)
        _profile_table_compiled(view.region, view.age_band, view.income_band, segment_of, table)
        present = np.flatnonzero(table >= 0)
        return present, table[present]
    step = 1 << 22
    for lo in range(0, view.n, step):
        table[_code(view, slice(lo, lo + step))] = segment_of[lo : lo + step]
    present = np.flatnonzero(table >= 0)
    return present, table[present]


def _profile_table_loop(region, age, income, segment_of, table):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """``table[profile_code] = segment_of`` customer by customer (the last customer of a code sets it), with
    profile_code's strides."""
    for i in range(region.shape[0]):
        table[np.int64(region[i]) * REGION_STRIDE + np.int64(age[i]) * AGE_STRIDE + income[i]] = segment_of[i]


_profile_table_compiled = compiled(_profile_table_loop)


def _kmeans_seed(world: PolicyWorld) -> np.random.Generator:
    return np.random.default_rng(int(world.rng.integers(0, 2**31 - 1)))


def _scipy_kmeans(points: np.ndarray, k: int, **options: object) -> np.ndarray:
    """scipy's kmeans2 centroids, without its warning about empty clusters (empty personas are dropped)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One of the clusters is empty")
        centroids, _ = kmeans2(points, k, **options)
    return np.asarray(centroids, dtype=np.float64)


def cluster_observables(world: PolicyWorld, k: int, sample: int) -> tuple[np.ndarray, int]:
    """Assign every customer to one of at most k personas by k-means on the observables.

    Returns the segment of each customer (int32) and the number of non-empty segments.

    With only categorical observables customers share a finite set of profiles: k-means (k-means++ start)
    runs on a random sample and each profile goes to its nearest centroid; when k is at least the number
    of profiles, each profile is its own persona. With continuous CRM scores every customer is distinct, so
    personas can be as many as asked, up to 1:1 (``cluster_distinct``).
    """
    view = world.customers
    if view.continuous_observables > 0:
        return cluster_distinct(world, k, sample)
    if k == 1:
        return _one_persona(world, sample)
    profile, member, _ = profile_codes(world)
    if k >= member.shape[0]:
        return profile, int(member.shape[0])
    pick = world.rng.choice(view.n, size=min(sample, view.n), replace=False)
    points = np.asarray(view.observables(np.sort(pick)), dtype=np.float64)
    # scipy's k-means++ seeding costs O(points x k^2): random starting points beyond 20 clusters.
    centroids = _scipy_kmeans(points, k, minit="++" if k <= 20 else "points", seed=_kmeans_seed(world))
    # a few hundred profiles at most: exact float64 distances
    encoded = np.asarray(view.observables(member), dtype=np.float64)
    nearest = np.argmin((centroids * centroids).sum(axis=1)[None, :] - 2.0 * (encoded @ centroids.T), axis=1)
    used, relabel = np.unique(nearest, return_inverse=True)
    relabel_in_place(profile, relabel.reshape(-1).astype(np.int32))  # each customer's profile becomes its persona
    return profile, int(used.shape[0])


def _one_persona(world: PolicyWorld, sample: int) -> tuple[np.ndarray, int]:
    """Everyone in persona 0, as the general path gives for k = 1, without coding every customer's profile.

    The general path fits one centroid to a sample when the customers have more than one profile, and so
    draws the sample and a k-means seed from the policy's stream: the same draws are made here, so what the
    policy draws afterwards is unchanged. The labels are a zero-filled array, whose pages the system shares
    until written: a policy only reads it, so at 95 million customers it costs no resident memory."""
    view = world.customers
    several = any(int(codes.min()) != int(codes.max()) for codes in (view.region, view.age_band, view.income_band))
    if several:
        world.rng.choice(view.n, size=min(sample, view.n), replace=False)
        _kmeans_seed(world)
    return np.zeros(view.n, np.int32), 1


POINTS_PER_PERSONA = 5  # sampled customers per persona when k is large (at least ``clustering_sample``)
COARSE_POINTS = 64  # sampled customers per coarse cluster in the coarse k-means
LLOYD_MIN_POINTS = 4  # a fine k-means with fewer points per persona keeps its random start


def cluster_distinct(world: PolicyWorld, k: int, sample: int) -> tuple[np.ndarray, int]:
    """Personas of customers who are all distinct (continuous CRM scores), for any k up to N.

    k is capped at N; at k = N each customer is its own persona (nothing to fit, no draw). Otherwise a
    two-level k-means tree: ``⌈√k⌉`` coarse clusters (k-means++ and 5 Lloyd iterations on
    ``COARSE_POINTS`` sampled customers per cluster), then each coarse cluster split into personas in
    proportion to its share of a sample of ``min(N, max(sample, POINTS_PER_PERSONA·k))`` customers (3
    Lloyd iterations from random members; kept as they are with fewer than ``LLOYD_MIN_POINTS`` members per
    persona). Every customer then goes to its nearest coarse centroid, and within it to the nearest
    persona: about N x 2√k distances, in float32 chunks of bounded size, and a loop over the ⌈√k⌉ coarse
    clusters (never over personas or customers).
    """
    view = world.customers
    n = view.n
    k = min(k, n)
    if k == n:
        return np.arange(n, dtype=np.int32), n
    rng = world.rng
    size = min(n, max(sample, POINTS_PER_PERSONA * k))
    pick = np.sort(rng.choice(n, size=size, replace=False))
    # float32, as the encoding is stored: at k near N the sample is every customer
    points = np.asarray(view.observables(pick), dtype=np.float32)
    del pick
    k1 = max(1, min(k, int(np.ceil(np.sqrt(k)))))
    coarse_fit = points[np.sort(rng.choice(size, size=min(size, COARSE_POINTS * k1), replace=False))]
    coarse = kmeans(coarse_fit, k1, rng, iterations=5)
    k1 = coarse.shape[0]
    label = nearest_centroid(points, coarse)
    sizes = np.bincount(label, minlength=k1)
    split = np.maximum(1, np.floor(sizes / size * k).astype(np.int64))
    split = np.minimum(split, np.maximum(sizes, 1))
    order = np.argsort(label, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    seed = _kmeans_seed(world)
    fine: list[np.ndarray] = []
    for c in range(k1):  # fitting: one small k-means per coarse cluster
        members = points[order[bounds[c] : bounds[c + 1]]]
        m, s = members.shape[0], int(split[c])
        if m == 0:
            fine.append(coarse[c : c + 1])
        elif s == 1:
            fine.append(members.mean(axis=0, keepdims=True))
        elif s >= m:
            fine.append(members)
        elif m < LLOYD_MIN_POINTS * s:
            fine.append(members[np.sort(seed.choice(m, size=s, replace=False))])
        else:
            fine.append(_scipy_kmeans(members, s, minit="points", seed=seed, iter=3))
    del points, order, label
    offsets = np.concatenate(([0], np.cumsum([f.shape[0] for f in fine])))

    coarse_of = np.empty(n, np.int32)
    step = max(1, CHUNK_ELEMENTS // max(1, k1))
    for lo in range(0, n, step):
        coarse_of[lo : lo + step] = nearest_centroid(np.asarray(view.observables(slice(lo, lo + step))), coarse)
    order = np.argsort(coarse_of, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(coarse_of, minlength=k1))))
    del coarse_of
    segment = np.empty(n, np.int32)
    for c in range(k1):  # assignment: the customers of each coarse cluster against its personas only
        idx = order[bounds[c] : bounds[c + 1]]
        step = max(1, CHUNK_ELEMENTS // max(1, fine[c].shape[0]))
        for lo in range(0, idx.shape[0], step):
            part = idx[lo : lo + step]
            segment[part] = offsets[c] + nearest_centroid(np.asarray(view.observables(part)), fine[c])
    del order
    # number the personas that got customers 0, 1, ... in order (a table lookup, not a sort of N labels)
    used = np.bincount(segment, minlength=int(offsets[-1])) > 0
    number = (np.cumsum(used) - 1).astype(np.int32)
    return number[segment], int(used.sum())
