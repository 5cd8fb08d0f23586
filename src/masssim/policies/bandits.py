"""Bandit policies over creatives (DESIGN §1.4): ``epsilon_greedy`` and ``thompson``, optionally per observable
segment, and ``linucb``, a contextual bandit. Formulas: docs/model.md §6.
"""

from __future__ import annotations

import functools

import numpy as np
from pydantic import Field
from scipy import sparse

from masssim.policies import linucb_scores
from masssim.policies.base import Feedback, Plan, PolicyBase, PolicyParams, PolicyWorld, WaveContext, uniform_below
from masssim.policies.beta_argmax import thompson_argmax
from masssim.policies.cell_counting import count_pairs, unique_inverse
from masssim.policies.cells import CellCounts
from masssim.policies.clustering import CHUNK_ELEMENTS
from masssim.policies.learning_features import (
    HISTORY_BITS,
    _full,
    _Profiles,
    _segments_of,
    engagement_features,
    history_keys,
    split_history,
)
from masssim.policies.registry import register_targeting
from masssim.policies.targeting import (
    MAX_PERSONAS,
    ChannelName,
    _channel_index,
)

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

    @classmethod
    def view_columns(cls, params: PolicyParams) -> frozenset[str]:
        return frozenset({"observables"} if getattr(params, "segments", 1) > 1 else ())  # one segment: none

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
        explore = uniform_below(self.rng, n, self.params.epsilon)
        creative[explore] = self.rng.integers(0, k, size=int(np.count_nonzero(explore)), dtype=np.int32)
        return creative.astype(np.int32, copy=False)


class ThompsonParams(_SegmentBanditParams):
    posterior_samples: int = Field(
        4000, ge=1, le=1_000_000, description="posterior draws per segment and wave that estimate P(creative is best)"
    )


SPARSE_THOMPSON_CREATIVES = 256  # above this many creatives, draw only the posterior values that can win


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
    draw is K Beta variates; beyond, only the argmax of each draw is drawn, every segment at once
    (``beta_argmax.thompson_argmax``): O(non-empty cells + draws) per wave, not T·K per segment.
    ``prob_best`` keeps the last estimate of P(best) per segment (sparse: creatives that won no draw are absent).
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
        elif k > SPARSE_THOMPSON_CREATIVES:  # every segment at once, from the non-empty cells
            cell_segment, cell_creative, delivered, clicked = self.counts.cells()
            cell_alpha = 1.0 + clicked
            cell_beta = 1.0 + np.maximum(delivered - clicked, 0.0)
            winner = thompson_argmax(self.rng, k, cell_segment, cell_creative, cell_alpha, cell_beta, draws)
        else:  # one segment at a time: its posterior row is dense in K, the table is not
            for s in np.flatnonzero(draws).tolist():
                delivered, clicked = self.counts.row(s)
                alpha = 1.0 + clicked
                beta = 1.0 + np.maximum(delivered - clicked, 0.0)
                lo, hi = int(offset[s]), int(offset[s] + draws[s])
                for start in range(lo, hi, rows):
                    stop = min(hi, start + rows)
                    draw = self.rng.beta(alpha, beta, size=(stop - start, k))
                    winner[start:stop] = np.argmax(draw, axis=1)
        self.prob_best = win_shares(row_segment, winner, draws, k)
        pick = (self.rng.random(segment.shape[0]) * draws[segment]).astype(np.int64)
        return winner[offset[segment] + pick]


def win_shares(row_segment: np.ndarray, winner: np.ndarray, draws: np.ndarray, n_creatives: int) -> sparse.csr_matrix:
    """P(best) estimate [segments, creatives]: the share of each segment's ``draws`` won by each creative
    (draw t belongs to segment ``row_segment[t]`` and was won by ``winner[t]``); creatives that won no draw are
    absent. Wins are counted row by row in linear time (``cell_counting``), the same counts as a sort."""
    k = n_creatives
    won, wins = count_pairs(row_segment, winner, draws.shape[0], k)
    won_segment = won // k
    indptr = np.concatenate(([0], np.cumsum(np.bincount(won_segment, minlength=draws.shape[0]))))
    share = wins.astype(np.float64) / draws[won_segment]
    return sparse.csr_matrix((share, won - won_segment * k, indptr), shape=(draws.shape[0], k))


# ------------------------------------------------------------------------------------------------------
# linucb: contextual bandit
# ------------------------------------------------------------------------------------------------------


GROUP_CONTEXTS = 64  # at most this many contexts share one bound box (consecutive keys: close histories)
SEED_CREATIVES = 4  # creatives scored exactly first in each group to set its pruning threshold
# Relative slack on the bounds and the threshold, far above float64 rounding (about 1e-16 per operation, a few
# hundred operations), so that rounding can never discard the creative the exact scores would pick.
ROUNDING_SLACK = 1e-9
CUSTOMERS_PER_CALL = 1 << 16  # customers whose contexts are scored together without distinct contexts
MODEL_BLOCK = 2048  # creatives whose A_k is inverted together (bounds the [block, D, D] temporaries)


def context_groups(profile: np.ndarray) -> np.ndarray:
    """int64 start of each group of sorted contexts: runs of one profile, cut every GROUP_CONTEXTS contexts
    (contexts are sorted by (profile, sends, opens, clicks), so a group's histories are close); the last entry
    is the number of contexts."""
    n = profile.shape[0]
    index = np.arange(n)
    new_run = np.ones(n, bool)
    new_run[1:] = profile[1:] != profile[:-1]
    run_start = np.maximum.accumulate(np.where(new_run, index, 0))
    starts = np.flatnonzero(new_run | ((index - run_start) % GROUP_CONTEXTS == 0))
    return np.append(starts, n)


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

    @classmethod
    def view_columns(cls, params: PolicyParams) -> frozenset[str]:
        return frozenset({"observables", "history"})  # the context x_i

    def __init__(self, params: LinUCBParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = _channel_index(world, params.channel)
        self.profiles = _Profiles(world)
        n, k = world.customers.n, world.catalogue.count
        self.dim = 1 + self.profiles.observables.shape[1] + 3
        upper, lower = self._triangle
        # A_k's upper triangle [K, D(D+1)/2] (A_k is symmetric; updates add the same sums to both halves)
        self._a_start = params.ridge * (upper == lower)
        self.a_upper = np.broadcast_to(self._a_start, (k, upper.shape[0])).copy()
        self.b_vector = np.zeros((k, self.dim))
        self.snapshot = np.zeros(n, np.int64)  # history key of each customer when last planned
        self._stale = np.ones(k, bool)  # creatives whose θ_k and A_k⁻¹ must be recomputed
        self._theta = np.zeros((k, self.dim))
        self._widths = np.zeros((self.dim * (self.dim + 1) // 2, k))
        # ρ_k with xᵀA_k⁻¹x <= ρ_k²·|x|² (as computed, rounding included); fresh: A_k = λI and b_k = 0 (never
        # delivered), creatives whose scores are all equal
        self._radius = np.zeros(k)
        self._fresh = np.ones(k, bool)
        # Continuous CRM scores: contexts differ only in the score columns (linucb_scores); None otherwise
        self._score_columns = self._continuous_score_columns()
        self._inverse = None if self._score_columns is None else np.zeros((k, self.dim, self.dim))
        self._customer_scores: np.ndarray | None = None  # float32 [N, m], filled at the first scored plan
        self._score_order: np.ndarray | None = None  # customers in Morton order of their scores
        # delivered messages (customer, creative, unit key at delivery) not yet added to A_k: with CRM scores they
        # are added together at the next plan, one grouping per wave rather than per feedback bucket
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _continuous_score_columns(self) -> np.ndarray | None:
        """Context columns of the CRM scores when every other observable column is a function of the profile
        (checked on a fixed spread of customers) and the compiled scorer is available; else None."""
        view, profiles = self.world.customers, self.profiles
        m = int(view.continuous_observables)
        if profiles.exact or m <= 0 or not linucb_scores.available():
            return None
        q = profiles.observables.shape[1]
        probe = np.unique(np.linspace(0, view.n - 1, min(view.n, 1024)).astype(np.int64))
        categorical = np.asarray(view.observables(probe), np.float64)[:, : q - m]
        if not np.array_equal(categorical, profiles.observables[profiles.of[probe], : q - m]):
            return None
        return np.arange(1 + q - m, 1 + q, dtype=np.int64)

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

    @functools.cached_property
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
        self._model()  # θ_k, A_k⁻¹ and the bounds of creatives whose statistics changed
        profiles = self.profiles
        if profiles.exact:  # score each distinct (profile, history) once, pruning creatives that cannot win
            distinct, inverse = unique_inverse((profiles.of[who] << HISTORY_BITS) | history)
            x = self.contexts(profiles.observables[distinct >> HISTORY_BITS], distinct)
            best = self.best_creatives(x, context_groups(distinct >> HISTORY_BITS))
            creative = best[inverse.reshape(-1)]
        elif self._score_columns is not None:  # by unit (profile, history), the scores' terms apart
            creative = self._choose_continuous(who, history)
        else:  # customer by customer, in (profile, history) order so that a group's contexts are close
            creative = np.empty(n, np.int32)
            order = np.argsort((profiles.of[who] << HISTORY_BITS) | history, kind="stable")
            for lo in range(0, n, CUSTOMERS_PER_CALL):
                part = order[lo : lo + CUSTOMERS_PER_CALL]
                x = self.contexts(profiles.observables_of(self.world, who[part]), history[part])
                creative[part] = self.best_creatives(x, context_groups(profiles.of[who[part]]))
        return Plan(customer=who, creative=creative, channel=_full(n, self.channel, np.int8))

    def _choose_continuous(self, who: np.ndarray, history: np.ndarray) -> np.ndarray:
        """int32 creative of each customer ``who`` (history keys ``history``) when contexts carry continuous CRM
        scores: customers grouped by unit (profile, history), in Morton order of their scores within a unit,
        and scored by ``linucb_scores.choose_creatives`` (the same argmax, computed by unit)."""
        view, profiles, columns = self.world.customers, self.profiles, self._score_columns
        assert columns is not None and self._inverse is not None
        if who.shape[0] == 0:
            return np.empty(0, np.int32)
        m = columns.shape[0]
        customer_scores = self._held_scores()
        assert self._score_order is not None
        planned = np.zeros(view.n, bool)
        planned[who] = True
        order, unit_rows = linucb_scores.planned_by_unit(self._score_order, planned, self.snapshot, profiles.of)
        first = unit_rows[:-1]
        profile = profiles.of[order[first]]
        unit_observed = profiles.observables[profile].copy()
        unit_observed[:, -m:] = 0.0
        unit_x = self.contexts(unit_observed, self.snapshot[order[first]])
        eligible = ~self._fresh
        if self._fresh.any():
            eligible[np.argmax(self._fresh)] = True
        best = linucb_scores.choose_creatives(
            unit_x,
            unit_rows,
            profile,
            np.take(customer_scores, order, axis=0).astype(np.float64),
            columns,
            self._theta,
            self._inverse,
            self._widths,
            self._radius,
            eligible,
            self.params.alpha,
            CHUNK_ELEMENTS,
        )
        by_customer = np.empty(view.n, np.int32)
        by_customer[order] = best
        return by_customer[who]

    @staticmethod
    def _unit_code(profile: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """int64 dense code of (profile, sends, opens, clicks), in the order of the (profile, history) keys: mixed
        radix with this batch's maxima, renumbered by rank when that range is much larger than the batch."""
        code = profile.astype(np.int64)
        for part in split_history(keys):
            code = code * (int(part.max()) + 1) + part
        if code.shape[0] and int(code.max()) > 4 * code.shape[0] + (1 << 16):
            code = np.unique(code, return_inverse=True)[1].reshape(-1).astype(np.int64)
        return code

    def _held_scores(self) -> np.ndarray:
        """float32 [N, m] CRM scores of every customer (static: read once, in chunks, since the full encoding
        is [N, q]), and the customers' Morton order of them."""
        if self._customer_scores is None:
            view = self.world.customers
            assert self._score_columns is not None
            m = self._score_columns.shape[0]
            held = np.empty((view.n, m), np.float32)
            for lo in range(0, view.n, 1 << 20):
                held[lo : lo + (1 << 20)] = view.observables(slice(lo, lo + (1 << 20)))[:, -m:]
            self._customer_scores = held
            self._score_order = linucb_scores.stable_order(linucb_scores.morton_codes(held.astype(np.float64)))
        return self._customer_scores

    def best_creatives(self, x: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """int32 argmax of the scores of every context ``x`` [U, D] over creatives (ties: lowest index), the
        same creative as scoring every (context, creative) pair, but scoring few pairs.

        Contexts come in groups (``starts``, from ``context_groups``); a group's contexts lie in a box
        ``[lo, hi]``, centre ``c``, half-width ``r``. For every x in it, ``θ_k·x <= θ_k·c + |θ_k|·r`` and
        ``xᵀA_k⁻¹x <= λ_max(A_k⁻¹)·|x|²`` (``λ_max(A_k⁻¹) <= 1/λ`` since ``A_k = λI + Σ x xᵀ``), so
        ``UB_k = θ_k·c + |θ_k|·r + α·ρ_k·max|x|`` bounds creative k's score over the group, one [G, K] pass
        of D-long products instead of D(D+1)/2. In each group the ``SEED_CREATIVES`` creatives with the
        highest bounds are scored exactly; the lowest over the group's contexts of their best score is a
        threshold that every context's winner reaches, so only creatives with ``UB_k`` at or above it are
        scored exactly (all creatives if that is over half of them). Creatives never delivered (A = λI,
        b = 0) all score alike: only the lowest-indexed one is a candidate, which is the one the argmax
        picks among equals. Bounds and threshold carry a slack far above float64 rounding.
        """
        theta, widths = self._theta, self._widths
        k = theta.shape[0]
        eligible = ~self._fresh
        if self._fresh.any():
            eligible[np.argmax(self._fresh)] = True
        all_eligible = bool(eligible.all())
        lo = np.minimum.reduceat(x, starts[:-1], axis=0)
        hi = np.maximum.reduceat(x, starts[:-1], axis=0)
        centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        longest = np.maximum.reduceat(np.sqrt(np.einsum("ij,ij->i", x, x)), starts[:-1])
        width_bound = (1.0 + ROUNDING_SLACK) * self.params.alpha * self._radius  # slack: rounding of sqrt, products
        magnitude = np.abs(theta)
        best = np.empty(x.shape[0], np.int32)
        n_seeds = min(SEED_CREATIVES, k)
        step = max(1, CHUNK_ELEMENTS // k)
        for g0 in range(0, starts.shape[0] - 1, step):
            part = slice(g0, min(starts.shape[0] - 1, g0 + step))
            bound = centre[part] @ theta.T
            bound += half[part] @ magnitude.T
            bound += ROUNDING_SLACK * ((np.abs(centre[part]) + half[part]) @ magnitude.T)
            bound += longest[part, None] * width_bound
            if not all_eligible:
                bound[:, ~eligible] = -np.inf
            for row, g in enumerate(range(part.start, part.stop)):
                lo_row, hi_row = int(starts[g]), int(starts[g + 1])
                group_x = x[lo_row:hi_row]
                seeds = np.sort(np.argpartition(bound[row], k - n_seeds)[k - n_seeds :])
                seeds = seeds[eligible[seeds]]
                seed_best = self.scores(group_x, widths[:, seeds], theta[seeds]).max(axis=1)
                threshold = float(seed_best.min())
                threshold -= ROUNDING_SLACK * (1.0 + abs(threshold))
                candidates = np.flatnonzero(bound[row] >= threshold)
                if 2 * candidates.shape[0] > k:
                    best[lo_row:hi_row] = np.argmax(self.scores(group_x, widths, theta), axis=1)
                else:
                    exact = self.scores(group_x, widths[:, candidates], theta[candidates])
                    best[lo_row:hi_row] = candidates[np.argmax(exact, axis=1)]
        return best

    def _model(self) -> tuple[np.ndarray, np.ndarray]:
        """(θ [K, D], packed A⁻¹ [D(D+1)/2, K]), recomputed only for creatives whose A_k or b_k changed
        since the last plan: after the warm-up most creatives get no more messages."""
        upper, lower = self._triangle
        if self._pending:
            customer, creative, keys = (np.concatenate(part) for part in zip(*self._pending, strict=True))
            self._pending = []
            self._add_by_unit(customer, creative, keys)
        all_stale = np.flatnonzero(self._stale)
        # in blocks of creatives: each matrix is inverted alone, the blocks only bound the temporaries
        for lo in range(0, all_stale.shape[0], MODEL_BLOCK):
            stale = all_stale[lo : lo + MODEL_BLOCK]
            a_matrix = np.empty((stale.shape[0], self.dim, self.dim))
            a_matrix[:, upper, lower] = self.a_upper[stale]
            a_matrix[:, lower, upper] = self.a_upper[stale]
            a_inv = np.linalg.inv(a_matrix)
            self._theta[stale] = np.einsum("kij,kj->ki", a_inv, self.b_vector[stale])
            packed = self.packed(a_inv)
            if self._inverse is not None:  # the matrix whose quadratic form ``packed`` evaluates
                self._inverse[stale] = 0.5 * (a_inv + np.swapaxes(a_inv, 1, 2))
            self._widths[:, stale] = packed
            self._radius[stale] = np.sqrt(self._top_eigenvalue(a_inv) + ROUNDING_SLACK * np.abs(packed).sum(axis=0))
            untouched = np.all(self.a_upper[stale] == self._a_start, axis=1)
            self._fresh[stale] = untouched & ~self.b_vector[stale].any(axis=1)
        self._stale[:] = False
        return self._theta, self._widths

    def _top_eigenvalue(self, a_inv: np.ndarray) -> np.ndarray:
        """An upper bound on the largest eigenvalue of each symmetrised ``A_k⁻¹`` as computed (the matrix
        whose quadratic form ``packed`` evaluates). In exact arithmetic it is at most 1/λ; the computed
        inverse of an ill-conditioned A_k can exceed that by rounding (1.5e-10 relative seen at 1M
        customers), so (1 + 1e-6)/λ is certified by a Cholesky factorisation of ``(1 + 1e-6)/λ·I − A_k⁻¹``
        (it succeeds only for a positive definite matrix), and the eigenvalues are computed if it fails."""
        symmetric = 0.5 * (a_inv + np.swapaxes(a_inv, 1, 2))
        bound = (1.0 + 1e-6) / self.params.ridge
        try:
            np.linalg.cholesky(bound * np.eye(self.dim) - symmetric)
        except np.linalg.LinAlgError:
            return np.maximum(np.linalg.eigvalsh(symmetric)[:, -1], 0.0) * (1.0 + ROUNDING_SLACK)
        return np.full(a_inv.shape[0], bound)

    def _context_of(self, customer: np.ndarray) -> np.ndarray:
        return self.contexts(self.profiles.observables_of(self.world, customer), self.snapshot[customer])

    def observe(self, feedback: Feedback) -> None:
        delivered = feedback.get("delivered")
        customer, creative = delivered["customer"], delivered["creative"]
        if customer.shape[0] and self.profiles.exact:
            # Messages with the same context add the same x xᵀ: a sparse [creatives, contexts] count matrix
            # times the contexts' packed products x_i x_j gives every creative's sum at once.
            units, unit_of = unique_inverse((self.profiles.of[customer] << HISTORY_BITS) | self.snapshot[customer])
            k = self.world.catalogue.count
            counts = sparse.csr_matrix(
                (np.ones(customer.shape[0]), (creative, unit_of.reshape(-1))), shape=(k, units.shape[0])
            )
            upper, lower = self._triangle
            x = self.contexts(self.profiles.observables[units >> HISTORY_BITS], units)
            touched = np.flatnonzero(np.diff(counts.indptr))
            self.a_upper[touched] += counts[touched] @ (x[:, upper] * x[:, lower])
            self._stale[touched] = True
        elif customer.shape[0] and self._score_columns is not None:
            keys = (self.profiles.of[customer] << HISTORY_BITS) | self.snapshot[customer]
            self._pending.append((customer.astype(np.int64), creative.astype(np.int64), keys))
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

    def _add_by_unit(self, customer: np.ndarray, creative: np.ndarray, keys: np.ndarray) -> None:
        """``A_k += Σ x xᵀ`` over delivered messages when contexts carry CRM scores, by unit (profile, history):
        ``keys`` the messages' (profile, history) keys when they were planned.

        With ``x_i = x_u + P s_i`` (``x_u`` zero on the score columns S), the sum over the messages of creative
        k is ``Σ_u n_ku x_u x_uᵀ`` (entries outside S), ``Σ_u (Σ s_b) x_u`` (one index in S) and ``Σ s_b s_c``
        (both in S): sparse [creatives, units] matrices of counts and of summed scores times the units'
        products, so nothing of size D(D+1)/2 is formed per message. The same sums, grouped differently.
        """
        profiles, columns = self.profiles, self._score_columns
        assert columns is not None
        m = columns.shape[0]
        code = self._unit_code(keys >> HISTORY_BITS, keys)
        pair_creative, pair_code, pair_message, count, summed, products = linucb_scores.pair_sums(
            creative, code, self.world.catalogue.count, customer, self._held_scores()
        )
        in_batch = np.bincount(pair_code, minlength=int(code.max()) + 1) > 0  # units, in code order
        pair_unit = (np.cumsum(in_batch) - 1)[pair_code]
        n_units = int(in_batch.sum())
        unit_keys = np.empty(n_units, np.int64)
        unit_keys[pair_unit] = keys[pair_message]  # every pair of a unit has its key
        observed = profiles.observables[unit_keys >> HISTORY_BITS].copy()
        observed[:, -m:] = 0.0
        unit_x = self.contexts(observed, unit_keys)
        new_row = np.ones(pair_creative.shape[0], bool)  # pairs are sorted by creative
        new_row[1:] = pair_creative[1:] != pair_creative[:-1]
        first_pair = np.flatnonzero(new_row)
        touched = pair_creative[first_pair]
        indptr = np.append(first_pair, pair_creative.shape[0])

        def by_pair(data: np.ndarray) -> sparse.csr_matrix:  # [touched creatives, units], rows sorted
            return sparse.csr_matrix((data, pair_unit, indptr), shape=(touched.shape[0], n_units))

        upper, lower = self._triangle
        total = by_pair(count) @ (unit_x[:, upper] * unit_x[:, lower])
        in_scores = np.zeros(self.dim, bool)
        in_scores[columns] = True
        position = np.full(self.dim, -1)
        position[columns] = np.arange(m)
        for b, column in enumerate(columns.tolist()):
            summed_x = by_pair(summed[:, b]) @ unit_x
            one = (upper == column) & ~in_scores[lower]
            total[:, one] += summed_x[:, lower[one]]
            one = (lower == column) & ~in_scores[upper]
            total[:, one] += summed_x[:, upper[one]]
        pair_row = np.repeat(np.arange(touched.shape[0]), np.diff(indptr))
        for p in np.flatnonzero(in_scores[upper] & in_scores[lower]).tolist():
            per_pair = products[:, position[upper[p]], position[lower[p]]]
            total[:, p] += np.bincount(pair_row, weights=per_pair, minlength=touched.shape[0])
        self.a_upper[touched] += total
        self._stale[touched] = True

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
            self.a_upper[kinds] += np.add.reduceat(products, start, axis=0)
            self._stale[kinds] = True
