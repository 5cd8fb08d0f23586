"""The customers (DESIGN §1.1): N rows of numpy arrays, generated in fixed-size chunks.

What a marketer's CRM knows about customer i (region, age band, income band, channel opt-ins, and
``crm_scores`` continuous scores such as engagement or propensity scores) is drawn from the configured
shares and from the standard normal. What the CRM does not know is drawn conditionally on it:

- latent taste ``theta_i = sqrt(rho) * L e_i / s + sqrt(1 - rho) * z_i`` over d topics, where ``e_i`` is the
  standardised one-hot encoding of the categorical observables followed by the scores, ``L`` a random d x q
  loading, ``s`` the exact per-topic standard deviation of ``L e`` (so that part has unit variance) and
  ``z_i`` multivariate Student-t with ``nu`` degrees of freedom scaled to unit variance. ``rho`` is the share
  of each topic's variance that the observables explain;
- the NBD-Dirichlet of category buying (Goodhardt, Ehrenberg & Chatfield 1984): a Gamma category rate
  ``lambda_i`` (optionally shifted by the observables) and Dirichlet brand-choice probabilities ``p_i``;
- a daily active window, a rate of posting about the brand, and patience.

Reproducibility: the population depends only on the seed sequence and the configuration. Chunk c (customers
``c * POPULATION_CHUNK`` onwards) draws from ``chunk_sequence(seq, c + 1)``; inside a chunk every attribute
has a sub-stream of its own (``_Draw``), so the first n customers of any population are the population of n
customers: a draw's position in its stream never depends on how many customers there are. Draws shared by
all customers (the loading ``L`` and the category-rate direction) come from ``chunk_sequence(seq, 0)``.
Sub-streams and shared draws added later come after the existing ones, so a population without the new
attribute (``crm_scores = 0``) is byte-identical to one generated before it existed.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from scipy import integrate, special, stats

from masssim.config.schema import CHANNEL_NAMES, ChannelConfig, MarketConfig, PopulationConfig
from masssim.model import streams

# Fixed, so that the population never depends on any setting other than the seed and the configuration.
POPULATION_CHUNK = 1 << 20

WARMTH_CLIP = 1e-4  # p_i0 is clipped to [WARMTH_CLIP, 1 - WARMTH_CLIP] before its logit is taken
VOICE_RATE_SHAPE = 0.5  # Gamma shape of the posting rate: most customers rarely post, a few post a lot
PATIENCE_SIGMA = 1.0  # lognormal sigma of patience around its configured median
CRM_SCORE_BLOCK = 1 << 16  # rows of CRM scores drawn at a time, bounds the float32 scratch of a chunk
# Threads that fill chunks at once: the machine's cores, at most 4 (each holds one chunk's scratch, ~100 MB).
POPULATION_THREADS = max(1, min(4, os.cpu_count() or 1))


def _active_start_pmf() -> np.ndarray:
    """Probability of each local hour 0..23 being the start of a customer's daily active window.

    A mixture: morning (07-09 h), lunch (12-13 h), evening (18-21 h) and a uniform part for shift workers
    and night owls. Each component spreads its weight evenly over its hours.
    """
    pmf = np.zeros(24)
    for weight, hours in (
        (0.30, range(7, 10)),
        (0.15, range(12, 14)),
        (0.40, range(18, 22)),
        (0.15, range(24)),
    ):
        pmf[list(hours)] += weight / len(hours)
    return pmf / pmf.sum()


ACTIVE_START_PMF: np.ndarray = _active_start_pmf()


class _Draw(IntEnum):
    """Sub-streams of one chunk, one per attribute. Never renumber: it would change every population."""

    REGION = 0
    AGE_BAND = 1
    INCOME_BAND = 2
    OPTIN = 3
    TASTE_NORMAL = 4
    TASTE_CHI2 = 5
    CATEGORY_RATE = 6
    BRAND = 7
    BRAND_FALLBACK = 8
    ACTIVE_START = 9
    ACTIVE_LENGTH = 10
    VOICE = 11
    PATIENCE = 12
    CRM_SCORES = 13


# Arrays with one entry (or row) per customer, for nbytes_per_customer.
PER_CUSTOMER_ARRAYS = (
    "region",
    "age_band",
    "income_band",
    "optin",
    "taste",
    "category_rate",
    "brand_prob",
    "warmth",
    "active_start_hour",
    "active_hours",
    "voice_rate",
    "patience_minutes",
    "crm_scores",
)


@dataclass(eq=False)  # arrays have no single truth value; compare fields explicitly
class Population:
    """N customers as a struct of arrays (row i is customer i). Policies never see ``taste``."""

    n: int
    region: np.ndarray  # uint8 [N], index into cfg.regions
    age_band: np.ndarray  # uint8 [N], 0 = youngest
    income_band: np.ndarray  # uint8 [N], 0 = lowest
    region_utc_offset_hours: np.ndarray  # float64 [n_regions]
    optin: np.ndarray  # uint8 [N] bit mask, bit c set = opted in to channel CHANNEL_NAMES[c]
    # float16 [N, d] latent taste theta, unit variance per topic, and float16 [N, J] Dirichlet brand-choice
    # probabilities (column 0 = our brand). Both are drawn and built in float32 or float64 and stored rounded
    # to half precision, the largest per-customer arrays halved (26 of the 66 bytes per customer without
    # [inbound], with the default 8 topics and 5 brands; at 95 million customers 2.3 GiB less to fill,
    # docs/model.md §2.5 and §15.5). What the rounding changes: at most 2^-11 of each value (~0.05%), far
    # below the model's sampling noise; brand probabilities under 6e-8 become 0 (such a brand is never bought
    # in a run anyway), and a row's rounded probabilities may sum a hair off 1, which the brand choice absorbs
    # (a uniform above the sum buys the last brand, model/market.py). Taste is clipped to float16's range
    # (+-65504), reached only by a Student-t draw at the lowest degrees of freedom. Everything that computes
    # with them reads them as float32 or float64 (the conversion is exact), never in half precision arithmetic.
    taste: np.ndarray
    category_rate: np.ndarray  # float32 [N] lambda_i, category purchases per year
    brand_prob: np.ndarray
    warmth: np.ndarray  # float32 [N] standardised logit of p_i0 (see generate_population)
    active_start_hour: np.ndarray  # uint8 [N] local hour the daily active window starts
    active_hours: np.ndarray  # uint8 [N] length of the window in hours, 1..24
    # float32 [N] posts about the brand per year, and minutes the customer waits for an answer; both
    # empty (length 0) in a population built without conversation attributes (see generate_population).
    voice_rate: np.ndarray
    patience_minutes: np.ndarray
    # float16 [N, m] CRM scores, standard normal. Half precision halves their memory (2 bytes per score, so 32
    # bytes per customer at the maximum m = 16) and loses nothing that matters: a relative rounding error of
    # at most 2^-11 (~0.05%, finer than any real CRM score; 3e-8 absolute below 6e-5, where float16 is
    # subnormal), a variance change of 4e-8, and a range (+-65504) far beyond any normal draw. Taste is built
    # from the stored, rounded values, so it is exactly linear in what policies see.
    crm_scores: np.ndarray
    taste_loading: np.ndarray  # float64 [d, q] L
    taste_scale: np.ndarray  # float64 [d] s: per-topic standard deviation of L e
    region_share: np.ndarray  # float64 [n_regions] configured shares, standardise the encoding
    age_band_share: np.ndarray  # float64 [n_age_bands]
    income_band_share: np.ndarray  # float64 [n_income_bands]
    warmth_logit_mean: float  # population mean of logit(clip(p_i0)), subtracted to give warmth
    warmth_logit_sd: float  # population standard deviation of logit(clip(p_i0)), divides it

    def observables(self, idx: Any = None) -> np.ndarray:
        """float32 [n, q]: the encoding e_i of (region, age band, income band) and the CRM scores.

        Columns are the regions, then the age bands, then the income bands, in configuration order, then the
        m CRM scores. Column k of a categorical block with configured shares p is ``(1[level = k] - p_k) /
        sqrt(p_k (1 - p_k))``, so each column has mean 0 and variance 1 in the population; a column with p_k
        in {0, 1} carries no information and is 0. The scores are standard normal already (independent of
        each other and of everything else) and are copied as they are. ``idx`` selects customers (integer
        array, boolean mask or slice); None means all.
        """
        sel = slice(None) if idx is None else idx
        blocks = (
            (self.region[sel], self.region_share),
            (self.age_band[sel], self.age_band_share),
            (self.income_band[sel], self.income_band_share),
        )
        scores = self.crm_scores[sel]
        rows = len(blocks[0][0])
        out = np.empty((rows, sum(len(p) for _, p in blocks) + scores.shape[1]), dtype=np.float32)
        col = 0
        for codes, shares in blocks:
            out[:, col : col + len(shares)] = _encoding_table(shares).astype(np.float32)[codes]
            col += len(shares)
        out[:, col:] = scores  # float16 -> float32 is exact
        return out

    def nbytes_per_customer(self) -> float:
        """Bytes held per customer by the per-customer arrays (the shared tables are not counted)."""
        return sum(getattr(self, name).nbytes for name in PER_CUSTOMER_ARRAYS) / self.n

    def utc_offset_seconds(self, idx: Any = None) -> np.ndarray:
        """float32 per customer: local time minus UTC, in seconds."""
        sel = slice(None) if idx is None else idx
        table = (self.region_utc_offset_hours * 3600.0).astype(np.float32)
        return table[self.region[sel]]


# --------------------------------------------------------------------------------------------------
# The encoding of the observables and its exact moments
# --------------------------------------------------------------------------------------------------


def _inverse_sd(shares: np.ndarray) -> np.ndarray:
    """1 / sqrt(p (1 - p)) per level, 0 where the level is certain or impossible (no information)."""
    var = shares * (1.0 - shares)
    out = np.zeros_like(shares)
    informative = var > 1e-15
    out[informative] = 1.0 / np.sqrt(var[informative])
    return out


def _encoding_table(shares: np.ndarray) -> np.ndarray:
    """[levels, levels]: row k is the standardised one-hot encoding of level k."""
    return (np.eye(len(shares)) - shares[None, :]) * _inverse_sd(shares)[None, :]


def _encoding_covariance(blocks: list[np.ndarray], n_scores: int = 0) -> np.ndarray:
    """[q, q] exact covariance of the encoding, blocks independent.

    The standardised ``diag(p) - p p^T`` for each categorical block, then an identity block for the
    ``n_scores`` CRM scores (standard normal, independent of each other and of the categories).
    """
    q = sum(len(p) for p in blocks) + n_scores
    cov = np.zeros((q, q))
    col = 0
    for shares in blocks:
        k = len(shares)
        inv = _inverse_sd(shares)
        cov[col : col + k, col : col + k] = (np.diag(shares) - np.outer(shares, shares)) * np.outer(inv, inv)
        col += k
    cov[col:, col:] = np.eye(n_scores)
    return cov


def _normalised(shares: list[float]) -> np.ndarray:
    p = np.asarray(shares, dtype=np.float64)
    return p / p.sum()  # the schema allows a sum off by 1e-6; draws need exactly 1


def _categorical(rng: np.random.Generator, shares: np.ndarray, size: int) -> np.ndarray:
    """``size`` draws of level indices with probabilities ``shares`` (uint8)."""
    cdf = np.cumsum(shares)
    cdf /= cdf[-1]  # exactly 1.0 at the end, so a uniform in [0, 1) always lands on a level
    return _level_of(cdf, rng.random(size))


def _level_of(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """uint8 ``searchsorted(cdf, u, side="right")``: the number of cumulative shares at or below each u.

    Counted with one comparison per level: for the few levels of a categorical draw that is several times
    faster than a binary search per customer, and gives the same indices (ties and repeated cumulative
    shares included, since both count ``cdf <= u``)."""
    if len(cdf) > 32:
        return np.searchsorted(cdf, u, side="right").astype(np.uint8)
    out = np.zeros(u.shape, np.uint8)
    below = np.empty(u.shape, bool)
    for edge in cdf[:-1]:  # the last edge is 1.0, above every uniform in [0, 1)
        np.less_equal(edge, u, out=below)
        out += below
    return out


def optin_probability(channel: ChannelConfig, n_age_bands: int) -> np.ndarray:
    """P(opted in) per age band: ``sigmoid(logit(reach) + reach_age_slope * age_band)``.

    Reach 0 and reach 1 are exact (nobody / everybody), whatever the slope.
    """
    if channel.reach <= 0.0:
        return np.zeros(n_age_bands)
    if channel.reach >= 1.0:
        return np.ones(n_age_bands)
    return special.expit(special.logit(channel.reach) + channel.reach_age_slope * np.arange(n_age_bands))


def warmth_logit_moments(alpha: float, beta: float, clip: float = WARMTH_CLIP) -> tuple[float, float]:
    """Mean and standard deviation of ``logit(clip(p))`` for p ~ Beta(alpha, beta), by quadrature.

    Our brand's choice probability p_i0 is Beta(S share_0, S (1 - share_0)) distributed (the marginal of
    the Dirichlet). On the logit scale x = logit(p) its density is ``sigmoid(x)^alpha sigmoid(-x)^beta /
    B(alpha, beta)``, smooth and bounded, integrated over the unclipped range; the clipped tails add point
    masses at the two clip values.
    """
    lo, hi = float(special.logit(clip)), float(special.logit(1.0 - clip))
    log_norm = float(special.betaln(alpha, beta))

    def density(x: float) -> float:
        return math.exp(alpha * special.log_expit(x) + beta * special.log_expit(-x) - log_norm)

    mode = min(max(math.log(alpha / beta), lo), hi)
    m1 = integrate.quad(lambda x: x * density(x), lo, hi, points=[mode], limit=200)[0]
    m2 = integrate.quad(lambda x: x * x * density(x), lo, hi, points=[mode], limit=200)[0]
    below = float(stats.beta.cdf(clip, alpha, beta))
    above = float(stats.beta.sf(1.0 - clip, alpha, beta))
    m1 += lo * below + hi * above
    m2 += lo * lo * below + hi * hi * above
    sd = math.sqrt(max(m2 - m1 * m1, 0.0))
    return m1, sd


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


def generate_population(
    cfg: PopulationConfig,
    market: MarketConfig,
    channels: dict[str, ChannelConfig],
    seq: np.random.SeedSequence,
    *,
    customers: range | None = None,
    conversation_attributes: bool = True,
) -> Population:
    """Draw ``cfg.customers`` customers; the result depends only on ``seq`` and the configuration.

    ``conversation_attributes`` False: leave ``voice_rate`` and ``patience_minutes`` empty. Only inbound
    conversations read them; a run without ``[inbound]`` saves their 8 bytes per customer (760 MB at 95
    million) and their draws. Each has a sub-stream of its own, so every other attribute is unchanged.

    ``customers`` (a step-1 range within ``range(cfg.customers)``): generate only those customers, row 0
    being customer ``customers.start``. Their rows are exactly the same rows of the whole population (a
    shard of the sharded engine builds its customers so); of a chunk the range starts inside, the rows
    before it are generated in scratch memory too (and dropped); rows past the range's end are not drawn.

    Model choices beyond DESIGN §1.1 (also in docs/model.md):

    - ``s`` is the exact standard deviation of each topic of ``L e`` (from the covariance of the encoding,
      the CRM scores included), not a sample estimate. If no observable carries information (one level per
      block and no CRM score) the persona part is zero and taste is ``z`` alone, so taste keeps unit variance.
    - ``L`` is drawn as its categorical columns, then the category-rate direction, then the CRM-score
      columns: the categorical loadings and the direction do not depend on ``crm_scores``.
    - ``z_i = g_i * sqrt((nu - 2) / chi2_i)``, g_i standard normal [d], chi2_i one chi-square(nu) per
      customer shared by its d topics: a multivariate t (uncorrelated, not independent topics) whose
      heavy-tailed customers are extreme on every topic at once.
    - The category rate is ``Gamma(K, M / K) * exp(b x_i) / E[exp(b x)]``, x_i the observables' score on a
      fixed random direction standardised to unit variance. The normaliser is the exact expectation over
      the (discrete) observables, so the mean rate is M for every loading b. Only the categorical
      observables enter x (demographics predict category use; the CRM scores are taste signals), so
      ``crm_scores`` changes taste and nothing else: every other attribute is the same for any m.
    - Dirichlet draws are normalised Gamma(S share_j) draws. With tiny S every Gamma draw of a row can
      underflow to 0; such a row puts all its mass on one brand drawn by share, which is the Dirichlet's
      own limit as S -> 0.
    - Warmth is ``(logit(clip(p_i0, 1e-4, 1 - 1e-4)) - mu) / sigma`` with mu and sigma the population
      moments of that quantity computed by quadrature from the Beta marginal of p_i0 (not estimated from a
      sample), so warmth does not depend on N, on the seed, or on which customers are present.
    """
    n = cfg.customers
    rows = range(n) if customers is None else customers
    if rows.step != 1 or rows.start < 0 or rows.stop > n or len(rows) == 0:
        raise ValueError(f"customers must be a non-empty step-1 range within range({n}); got {rows}")
    missing = [name for name in CHANNEL_NAMES if name not in channels]
    unknown = [name for name in channels if name not in CHANNEL_NAMES]
    if missing or unknown:
        raise ValueError(f"channels must be exactly {list(CHANNEL_NAMES)}; missing {missing}, unknown {unknown}")

    d = cfg.taste_dims
    rho = cfg.persona_signal
    nu = cfg.taste_tail_dof
    region_share = _normalised([r.share for r in cfg.regions])
    age_share = _normalised(cfg.age_band_shares)
    income_share = _normalised(cfg.income_band_shares)
    blocks = [region_share, age_share, income_share]
    n_scores = cfg.crm_scores
    q_cat = sum(len(p) for p in blocks)
    cov_cat = _encoding_covariance(blocks)
    cov = _encoding_covariance(blocks, n_scores)

    # Global draws, from the start of the stream (not chunked). The CRM-score loadings come last, so the
    # other draws are the same whatever the number of scores.
    rng0 = streams.generator(streams.chunk_sequence(seq, 0))
    loading = rng0.standard_normal((d, q_cat))
    direction = rng0.standard_normal(q_cat)
    if n_scores:
        loading = np.hstack([loading, rng0.standard_normal((d, n_scores))])

    informative = bool(np.any(np.diag(cov) > 0))
    scale = np.sqrt(np.einsum("tq,qr,tr->t", loading, cov, loading))
    if not informative:
        rho = 0.0
        scale = np.ones(d)

    # Per block, the persona part sqrt(rho) L e / s and the category score for each level: e_i is a sum of
    # one row per block, so both are sums of table look-ups (no [N, q] matrix is ever built).
    taste_tables: list[np.ndarray] = []
    score_tables: list[np.ndarray] = []
    score_sd = math.sqrt(float(direction @ cov_cat @ direction))
    col = 0
    for shares in blocks:
        k = len(shares)
        enc = _encoding_table(shares)  # [k, k]
        taste_tables.append((math.sqrt(rho) * (enc @ loading[:, col : col + k].T) / scale[None, :]).astype(np.float32))
        score = enc @ direction[col : col + k]
        score_tables.append(score / score_sd if score_sd > 0 else np.zeros(k))
        col += k
    # The persona part of the CRM scores: score j adds its value times row j of this [m, d] table.
    score_weights = (math.sqrt(rho) * loading[:, q_cat:].T / scale[None, :]).astype(np.float32)

    b = cfg.category_rate_observable_loading
    # log E[exp(b x)], exact: x is a sum of independent per-block scores.
    log_mean_shift = 0.0
    for score, shares in zip(score_tables, blocks, strict=True):
        top = float(np.max(b * score[shares > 0]))  # a level that occurs, so the sum below is positive
        log_mean_shift += top + math.log(float(np.sum(shares * np.exp(b * score - top))))
    rate_tables = [b * score for score in score_tables]  # log-multipliers, summed per customer

    brand_share = _normalised([br.market_share for br in market.brands])
    n_brands = len(brand_share)
    alpha = market.dirichlet_s * brand_share
    warmth_mean, warmth_sd = warmth_logit_moments(alpha[0], market.dirichlet_s - alpha[0])
    if not warmth_sd > 0:  # pragma: no cover - only for a degenerate Beta; keeps warmth finite
        warmth_sd = 1.0

    optin_tables = [optin_probability(channels[name], len(age_share)) for name in CHANNEL_NAMES]

    def empty(size: int) -> Population:
        conversing = size if conversation_attributes else 0
        return Population(
            n=size,
            region=np.empty(size, np.uint8),
            age_band=np.empty(size, np.uint8),
            income_band=np.empty(size, np.uint8),
            region_utc_offset_hours=np.array([r.utc_offset_hours for r in cfg.regions], dtype=np.float64),
            optin=np.empty(size, np.uint8),
            taste=np.empty((size, d), np.float16),
            category_rate=np.empty(size, np.float32),
            brand_prob=np.empty((size, n_brands), np.float16),
            warmth=np.empty(size, np.float32),
            active_start_hour=np.empty(size, np.uint8),
            active_hours=np.empty(size, np.uint8),
            voice_rate=np.empty(conversing, np.float32),
            patience_minutes=np.empty(conversing, np.float32),
            crm_scores=np.empty((size, n_scores), np.float16),
            taste_loading=loading,
            taste_scale=scale,
            region_share=region_share,
            age_band_share=age_share,
            income_band_share=income_share,
            warmth_logit_mean=warmth_mean,
            warmth_logit_sd=warmth_sd,
        )

    pop = empty(len(rows))

    def fill(chunk: int) -> None:
        lo = chunk * POPULATION_CHUNK
        hi = min(lo + POPULATION_CHUNK, n)
        chunk_seq = streams.chunk_sequence(seq, chunk + 1)

        def rng(draw: _Draw) -> np.random.Generator:
            return streams.generator(streams.chunk_sequence(chunk_seq, int(draw)))

        a, b = max(lo, rows.start), min(hi, rows.stop)
        # Rows past b are not drawn: a chunk's first rows are the same whatever its length (each attribute's
        # stream is consumed row by row, as the first n customers of any population show), so a range that
        # ends inside a chunk costs only its rows. One that starts inside a chunk draws the rows before it.
        whole = a == lo
        target, offset = (pop, rows.start) if whole else (empty(b - lo), lo)
        _fill_chunk(
            target,
            lo - offset,
            b - offset,
            rng,
            cfg=cfg,
            market=market,
            blocks=blocks,
            taste_tables=taste_tables,
            score_weights=score_weights,
            rate_tables=rate_tables,
            log_mean_shift=log_mean_shift,
            rho=rho,
            nu=nu,
            alpha=alpha,
            brand_share=brand_share,
            optin_tables=optin_tables,
        )
        if not whole:  # the range starts inside this chunk: keep the rows it asks for
            for name in PER_CUSTOMER_ARRAYS:
                getattr(pop, name)[a - rows.start : b - rows.start] = getattr(target, name)[a - lo : b - lo]

    # Chunks have streams of their own and fill disjoint rows, so threads change nothing in the result; numpy
    # releases the GIL while it draws and computes, so at 10^8 customers the cores share the work.
    chunks = range(rows.start // POPULATION_CHUNK, -(-rows.stop // POPULATION_CHUNK))
    if len(chunks) > 1 and POPULATION_THREADS > 1:
        with ThreadPoolExecutor(min(POPULATION_THREADS, len(chunks))) as pool:
            list(pool.map(fill, chunks))  # list() re-raises a chunk's exception here
    else:
        for chunk in chunks:
            fill(chunk)
    return pop


def _fill_chunk(
    pop: Population,
    lo: int,
    hi: int,
    rng: Any,
    *,
    cfg: PopulationConfig,
    market: MarketConfig,
    blocks: list[np.ndarray],
    taste_tables: list[np.ndarray],
    score_weights: np.ndarray,
    rate_tables: list[np.ndarray],
    log_mean_shift: float,
    rho: float,
    nu: float,
    alpha: np.ndarray,
    brand_share: np.ndarray,
    optin_tables: list[np.ndarray],
) -> None:
    """Fill rows [lo, hi) of ``pop``; ``rng(draw)`` gives the chunk's sub-stream for one attribute."""
    m = hi - lo
    region = pop.region[lo:hi]
    age = pop.age_band[lo:hi]
    income = pop.income_band[lo:hi]
    region[:] = _categorical(rng(_Draw.REGION), blocks[0], m)
    age[:] = _categorical(rng(_Draw.AGE_BAND), blocks[1], m)
    income[:] = _categorical(rng(_Draw.INCOME_BAND), blocks[2], m)
    codes = (region, age, income)

    # Opt-ins: one uniform per (customer, channel), row-major.
    u = rng(_Draw.OPTIN).random((m, len(CHANNEL_NAMES)))
    optin = np.zeros(m, np.uint8)
    for c, table in enumerate(optin_tables):
        optin |= (u[:, c] < table[age]).astype(np.uint8) << np.uint8(c)
    pop.optin[lo:hi] = optin
    del u

    # Taste, built in float32 and stored at half precision at the end: z = g * sqrt((nu - 2) / chi2), then
    # the persona part.
    taste = np.empty((m, pop.taste.shape[1]), np.float32)
    rng(_Draw.TASTE_NORMAL).standard_normal(out=taste, dtype=np.float32)
    chi2 = np.maximum(rng(_Draw.TASTE_CHI2).chisquare(nu, m), np.finfo(np.float64).tiny)
    taste *= (math.sqrt(1.0 - rho) * np.sqrt((nu - 2.0) / chi2)).astype(np.float32)[:, None]
    for table, code in zip(taste_tables, codes, strict=True):
        taste += np.take(table, code, axis=0)  # the same rows as table[code], in half the time (uint8 codes)

    # Brand choice: Dirichlet as normalised Gamma draws.
    g = rng(_Draw.BRAND).standard_gamma(np.broadcast_to(alpha, (m, len(alpha))))
    total = g.sum(axis=1)
    empty = np.flatnonzero(total == 0.0)
    if empty.size:
        g[empty] = 0.0
        g[empty, _categorical(rng(_Draw.BRAND_FALLBACK), brand_share, empty.size)] = 1.0
        total[empty] = 1.0
    g /= total[:, None]
    # Stored as the float32 values rounded to the nearest float16 (what a float32 table, rounded, would hold).
    pop.brand_prob[lo:hi] = g.astype(np.float32)
    logit0 = special.logit(np.clip(g[:, 0], WARMTH_CLIP, 1.0 - WARMTH_CLIP))
    pop.warmth[lo:hi] = (logit0 - pop.warmth_logit_mean) / pop.warmth_logit_sd
    del g, total, logit0

    # CRM scores: standard normal, row-major, in blocks of rows (the same stream as one draw of the chunk).
    # Their persona part uses the stored float16 values; one score column at a time, element-wise (no
    # BLAS), so the result does not depend on the machine's BLAS or thread count.
    n_scores = score_weights.shape[0]
    if n_scores:
        score_rng = rng(_Draw.CRM_SCORES)
        for b_lo in range(0, m, CRM_SCORE_BLOCK):
            b_hi = min(b_lo + CRM_SCORE_BLOCK, m)
            block = score_rng.standard_normal((b_hi - b_lo, n_scores), dtype=np.float32)
            if cfg.crm_loyalty_signal > 0:
                # The first score is what the CRM knows of past buying: correlated with warmth toward our
                # brand (both have mean 0 and variance 1, and are independent before mixing).
                r = np.float32(cfg.crm_loyalty_signal)
                block[:, 0] = r * pop.warmth[lo + b_lo : lo + b_hi] + np.sqrt(np.float32(1.0) - r * r) * block[:, 0]
            stored = pop.crm_scores[lo + b_lo : lo + b_hi]
            stored[:] = block  # rounds to the nearest float16
            block[:] = stored
            rows = taste[b_lo:b_hi]
            for j in range(n_scores):
                rows += block[:, j : j + 1] * score_weights[j]

    # Stored at half precision, within its range (Population.taste).
    half_max = np.float32(np.finfo(np.float16).max)
    np.clip(taste, -half_max, half_max, out=taste)
    pop.taste[lo:hi] = taste
    del taste

    # Category rate: Gamma(K, M / K) times the normalised observable multiplier.
    k_shape = market.category_rate_shape
    scale = market.category_purchases_per_year / k_shape
    rate = rng(_Draw.CATEGORY_RATE).standard_gamma(k_shape, m) * scale
    log_mult = sum(table[code] for table, code in zip(rate_tables, codes, strict=True)) - log_mean_shift
    pop.category_rate[lo:hi] = rate * np.exp(log_mult)

    # Daily active window.
    cdf = np.cumsum(ACTIVE_START_PMF)
    cdf /= cdf[-1]
    pop.active_start_hour[lo:hi] = _level_of(cdf, rng(_Draw.ACTIVE_START).random(m))
    length = 1 + rng(_Draw.ACTIVE_LENGTH).poisson(cfg.active_window_hours - 1.0, m)
    pop.active_hours[lo:hi] = np.clip(length, 1, 24)

    # Voice and patience (absent from a population built without conversation attributes).
    if pop.voice_rate.shape[0] == 0:
        return
    mean_voice = cfg.voice_posts_per_year
    pop.voice_rate[lo:hi] = rng(_Draw.VOICE).gamma(VOICE_RATE_SHAPE, mean_voice / VOICE_RATE_SHAPE, m)
    pop.patience_minutes[lo:hi] = rng(_Draw.PATIENCE).lognormal(
        math.log(cfg.patience_median_minutes), PATIENCE_SIGMA, m
    )


__all__ = [
    "ACTIVE_START_PMF",
    "POPULATION_CHUNK",
    "Population",
    "generate_population",
    "optin_probability",
    "warmth_logit_moments",
]
