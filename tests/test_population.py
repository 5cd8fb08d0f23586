"""Population generation (DESIGN §1.1): the taste model, reproducibility, and the drawn distributions.

Statistical claims are checked against theory with fixed seeds and tolerances derived from the sample size
(4 standard errors, estimated from the data or from the model's own moments), never tuned to pass.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from masssim.config.schema import CHANNEL_NAMES, Brand, ChannelsConfig, MarketConfig, PopulationConfig, Region
from masssim.model.population import (
    ACTIVE_START_PMF,
    PER_CUSTOMER_ARRAYS,
    POPULATION_CHUNK,
    Population,
    generate_population,
    warmth_logit_moments,
)

Z = 4.0  # standard errors allowed: a correct model fails a given check with probability about 6e-5
CHANNELS = ChannelsConfig.model_validate({}).by_name()


def make(
    customers: int,
    seed: int = 20240601,
    *,
    market: MarketConfig | None = None,
    channels: dict | None = None,
    **population: object,
) -> Population:
    cfg = PopulationConfig.model_validate({"customers": customers, **population})
    return generate_population(cfg, market or MarketConfig(), channels or CHANNELS, np.random.SeedSequence(seed))


def batch_means(values: np.ndarray, batches: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of per-batch statistics (rows = batches)."""
    return values.mean(axis=0), values.std(axis=0, ddof=1) / math.sqrt(batches)


# --------------------------------------------------------------------------------------------------
# Latent taste
# --------------------------------------------------------------------------------------------------


def _adjusted_r2_by_batch(design: np.ndarray, taste: np.ndarray, batches: int) -> np.ndarray:
    """[batches, d]: adjusted R^2 of each topic regressed (least squares) on ``design`` in each batch."""
    size = design.shape[0] // batches
    adjusted = np.empty((batches, taste.shape[1]))
    for b in range(batches):
        x, y = design[b * size : (b + 1) * size], taste[b * size : (b + 1) * size]
        coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
        rss = ((y - x @ coef) ** 2).sum(axis=0)
        tss = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        # Adjusted R^2 removes the (rank - 1) / size degrees-of-freedom bias of the plain R^2.
        adjusted[b] = 1.0 - (rss / (size - rank)) / (tss / (size - 1))
    return adjusted


@pytest.mark.parametrize(("rho", "crm_scores"), [(0.2, 0), (0.6, 0), (0.2, 4), (0.6, 4)])
def test_observables_explain_share_rho_of_taste_variance(rho: float, crm_scores: int) -> None:
    n, batches = 200_000, 20
    pop = make(n, seed=11, persona_signal=rho, crm_scores=crm_scores)
    e = pop.observables().astype(np.float64)
    q_cat = len(pop.region_share) + len(pop.age_band_share) + len(pop.income_band_share)
    assert e.shape == (n, q_cat + crm_scores)
    taste = pop.taste.astype(np.float64)
    # All observables (categorical dummies and CRM scores) explain share rho of every topic.
    mean, se = batch_means(_adjusted_r2_by_batch(np.column_stack([np.ones(n), e]), taste, batches), batches)
    assert np.all(se < 0.01), se  # the check below has power against a wrong rho
    assert np.all(np.abs(mean - rho) < Z * se), (mean, se)
    if crm_scores:
        # The categorical dummies alone explain only their own part: rho times the share of Var(L e) that
        # comes from the categorical columns (the scores are independent of them, so the parts add up).
        loading = pop.taste_loading
        score_part = (loading[:, q_cat:] ** 2).sum(axis=1)  # the scores' covariance block is the identity
        expected = rho * (1.0 - score_part / pop.taste_scale**2)
        design = np.column_stack([np.ones(n), e[:, :q_cat]])
        mean, se = batch_means(_adjusted_r2_by_batch(design, taste, batches), batches)
        assert np.all(np.abs(mean - expected) < Z * se), (mean, expected, se)
        # The check has power: the scores carry a visible part of the signal on every topic.
        assert np.all(expected < rho - 2 * Z * se), (expected, se)


@pytest.mark.parametrize("crm_scores", [0, 4])
def test_taste_with_full_signal_is_the_scaled_loading_of_the_observables(crm_scores: int) -> None:
    n = 100_000
    pop = make(n, seed=5, persona_signal=1.0, crm_scores=crm_scores)
    expected = pop.observables().astype(np.float64) @ (pop.taste_loading / pop.taste_scale[:, None]).T
    # Built in float32 (1e-4 of arithmetic) and stored at half precision: rounding to the nearest float16 moves
    # a value by at most 2^-11 of itself.
    np.testing.assert_allclose(pop.taste.astype(np.float64), expected, rtol=2.0**-11, atol=1e-4)
    # s is computed analytically; each topic of L e / s then has unit variance in the sample too.
    var = expected.var(axis=0)
    fourth = ((expected - expected.mean(axis=0)) ** 4).mean(axis=0)
    assert np.all(np.abs(var - 1.0) < Z * np.sqrt((fourth - var**2) / n)), var


@pytest.mark.parametrize("nu", [5.0, 100.0])
def test_idiosyncratic_taste_is_multivariate_t_with_unit_variance(nu: float) -> None:
    n, d, batches = 200_000, 8, 20
    z = make(n, seed=7, persona_signal=0.0, taste_tail_dof=nu, taste_dims=d).taste.astype(np.float64)

    # Unit variance. Var(z^2) = E z^4 - 1 = 3 (nu - 2) / (nu - 4) - 1 and, because the d topics share one
    # chi-square, Cov(z_j^2, z_k^2) = (nu - 2) / (nu - 4) - 1: the exact standard error of the mean square.
    fourth = 3.0 * (nu - 2.0) / (nu - 4.0)
    cross = (nu - 2.0) / (nu - 4.0)
    per_customer_var = ((fourth - 1.0) + (d - 1) * (cross - 1.0)) / d
    mean_square = (z**2).mean()
    assert abs(mean_square - 1.0) < Z * math.sqrt(per_customer_var / n), mean_square

    # One chi-square per customer shared by the topics: log|z_j| = log|g_j| + log(chi2)/(-2) + const, so
    # Cov(log|z_j|, log|z_k|) = Var(log chi2_nu) / 4 = trigamma(nu / 2) / 4 for j != k (0 if independent).
    logs = np.log(np.abs(z))
    size = n // batches
    covs = np.empty((batches, 1))
    rows, cols = np.triu_indices(d, k=1)
    for b in range(batches):
        block = logs[b * size : (b + 1) * size]
        c = np.cov(block, rowvar=False)
        covs[b] = c[rows, cols].mean()
    mean, se = batch_means(covs, batches)
    assert abs(mean[0] - special.polygamma(1, nu / 2.0) / 4.0) < Z * se[0], (mean, se)


def test_small_nu_gives_heavier_tails_than_large_nu() -> None:
    n = 200_000
    kurt = {}
    for nu in (5.0, 100.0):
        z = make(n, seed=8, persona_signal=0.0, taste_tail_dof=nu).taste.astype(np.float64)
        kurt[nu] = ((z**4).mean(axis=0) / (z**2).mean(axis=0) ** 2).mean()
    # For near-normal data the sample kurtosis has standard error sqrt(24 / n) per topic.
    se_normal = math.sqrt(24.0 / n)
    assert abs(kurt[100.0] - (3.0 + 6.0 / 96.0)) < Z * se_normal, kurt
    assert kurt[5.0] > kurt[100.0] + 1.0, kurt  # theory: 9 vs 3.06


# --------------------------------------------------------------------------------------------------
# Reproducibility and memory
# --------------------------------------------------------------------------------------------------

_ARRAYS = PER_CUSTOMER_ARRAYS


def test_same_seed_same_population_different_seed_different() -> None:
    a, b, c = (make(5_000, seed=seed, crm_scores=3) for seed in (1, 1, 2))
    assert a.crm_scores.shape == (5_000, 3)
    for name in (*_ARRAYS, "taste_loading", "taste_scale"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("taste", "category_rate", "brand_prob", "warmth", "taste_loading", "patience_minutes", "crm_scores"):
        assert not np.array_equal(getattr(a, name), getattr(c, name)), name
    assert np.mean(a.region != c.region) > 0.5


def test_first_customers_do_not_depend_on_population_size() -> None:
    # The CRM scores are drawn in blocks of rows; the prefix must not depend on where the blocks fall.
    small = make(1_000, seed=3, crm_scores=3)
    big = make(POPULATION_CHUNK + 10, seed=3, crm_scores=3)
    for name in _ARRAYS:
        np.testing.assert_array_equal(getattr(big, name)[:1_000], getattr(small, name), err_msg=name)
    np.testing.assert_array_equal(big.taste_loading, small.taste_loading)
    # The second chunk has a stream of its own.
    for name in ("taste", "crm_scores"):
        assert not np.array_equal(getattr(big, name)[POPULATION_CHUNK:], getattr(big, name)[:10]), name
        assert np.all(np.isfinite(getattr(big, name)[POPULATION_CHUNK:])), name


# Per-array SHA-256 (first 16 hex digits) of a population generated with the code as it was before the CRM
# scores existed (numpy 2.4.6). With crm_scores = 0 the population must stay byte-identical: new draws get
# new sub-streams and come after the old ones. Should a numpy upgrade ever change one of its distribution
# algorithms, the array that moved is named below; regenerate the hashes only after checking that cause.
# Taste and brand probabilities are stored at half precision since session 10: theirs are the hashes of the
# float32 arrays of then, rounded to float16 (computed from that code), so the values are still those values.
_HASHES_BEFORE_CRM_SCORES = {
    "region": "13a455199bb7a63a",
    "age_band": "e9fafc11e5acb1f8",
    "income_band": "e161fe4cd741bd5e",
    "optin": "d2d2a8e931f577b3",
    "taste": "b1a23d9e2a29aed8",  # float32 then: 6dfe7a95b2f4f013
    "category_rate": "b4d995b47fb0e068",
    "brand_prob": "249824f6c84c806d",  # float32 then: f86842c2e8c47073
    "warmth": "21b58bddaaf96d18",
    "active_start_hour": "9245f1cfbd30de35",
    "active_hours": "2f3711712bf1e80d",
    "voice_rate": "c0f822bf9947c31a",
    "patience_minutes": "49b948f5629e4ede",
    "taste_loading": "f4dfdfd808d08760",
    "taste_scale": "3a5875d3088767fd",
    "observables": "9548c64e16682191",
}


def _digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()[:16]


def test_population_without_crm_scores_is_byte_identical_to_before_they_existed() -> None:
    pop = make(2_000, taste_dims=3, persona_signal=0.4, category_rate_observable_loading=1.0, crm_scores=0)
    assert pop.crm_scores.shape == (2_000, 0) and pop.crm_scores.dtype == np.float16
    digests = {name: _digest(getattr(pop, name)) for name in _HASHES_BEFORE_CRM_SCORES if name != "observables"}
    digests["observables"] = _digest(pop.observables())
    changed = [name for name, h in _HASHES_BEFORE_CRM_SCORES.items() if digests[name] != h]
    assert not changed, changed


def test_crm_scores_change_taste_and_nothing_else() -> None:
    # Under common random numbers, a sweep over crm_scores keeps every customer's demographics, opt-ins,
    # buying and voice, and the categorical loadings: only the split of the persona signal moves.
    a = make(20_000, seed=17, category_rate_observable_loading=1.5)
    b = make(20_000, seed=17, category_rate_observable_loading=1.5, crm_scores=4)
    for name in _ARRAYS:
        if name not in ("taste", "crm_scores"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    q_cat = a.taste_loading.shape[1]
    assert b.taste_loading.shape[1] == q_cat + 4
    np.testing.assert_array_equal(b.taste_loading[:, :q_cat], a.taste_loading)
    assert not np.array_equal(a.taste, b.taste)


@pytest.mark.parametrize("crm_scores", [0, 16])
def test_memory_per_customer_is_small(crm_scores: int) -> None:
    pop = make(10_000, taste_dims=8, crm_scores=crm_scores)
    assert pop.brand_prob.shape[1] == 5
    # 1 byte each for region, age, income, opt-ins, window start and length; 4 each for category rate,
    # warmth, voice, patience; 2 (float16) per topic, per brand and per CRM score.
    assert pop.nbytes_per_customer() == 22 + 2 * 8 + 2 * 5 + 2 * crm_scores
    assert pop.nbytes_per_customer() < 150.0


def test_without_conversation_attributes_only_voice_and_patience_are_left_out() -> None:
    """A run without inbound builds its customers without voice and patience: 8 bytes fewer per customer,
    every other attribute the same bytes (each attribute has its own sub-stream), across several chunks."""
    cfg = PopulationConfig.model_validate({"customers": 3 * POPULATION_CHUNK // 2, "crm_scores": 2})
    full = generate_population(cfg, MarketConfig(), CHANNELS, np.random.SeedSequence(8))
    lean = generate_population(cfg, MarketConfig(), CHANNELS, np.random.SeedSequence(8), conversation_attributes=False)
    assert lean.voice_rate.shape == lean.patience_minutes.shape == (0,)
    assert full.nbytes_per_customer() - lean.nbytes_per_customer() == 8
    for name in PER_CUSTOMER_ARRAYS:
        if name not in ("voice_rate", "patience_minutes"):
            np.testing.assert_array_equal(getattr(full, name), getattr(lean, name), err_msg=name)


# --------------------------------------------------------------------------------------------------
# Observables, channels, activity
# --------------------------------------------------------------------------------------------------


def test_observables_are_standardised_and_uninformative_columns_are_zero() -> None:
    n = 100_000
    pop = make(
        n,
        seed=4,
        regions=[Region(name="only", utc_offset_hours=2.0, share=1.0)],
        age_band_shares=[0.5, 0.0, 0.5],
    )
    e = pop.observables().astype(np.float64)
    assert e.shape == (n, 1 + 3 + 4)
    assert np.all(e[:, 0] == 0.0) and np.all(e[:, 2] == 0.0)  # region share 1, age band share 0
    live = [1, 3, 4, 5, 6, 7]
    mean, sd = e[:, live].mean(axis=0), e[:, live].std(axis=0)
    assert np.all(np.abs(mean) < Z * sd / math.sqrt(n)), mean
    assert np.all(pop.age_band != 1)
    np.testing.assert_array_equal(pop.utc_offset_seconds(), np.full(n, 7200.0, dtype=np.float32))
    np.testing.assert_array_equal(pop.observables(np.arange(10, 20)), pop.observables()[10:20])


def test_crm_scores_are_independent_standard_normals_that_join_the_observables() -> None:
    n, m = 200_000, 4
    pop = make(n, seed=18, crm_scores=m)
    assert pop.crm_scores.dtype == np.float16 and pop.crm_scores.shape == (n, m)
    e = pop.observables()
    q_cat = e.shape[1] - m
    np.testing.assert_array_equal(e[:, q_cat:], pop.crm_scores.astype(np.float32))
    np.testing.assert_array_equal(pop.observables(slice(5, 9)), e[5:9])
    x = pop.crm_scores.astype(np.float64)
    # Mean 0 (se 1 / sqrt(n)), variance 1 (se sqrt(2 / n) for a normal), tail share of a normal.
    assert np.all(np.abs(x.mean(axis=0)) < Z / math.sqrt(n)), x.mean(axis=0)
    assert np.all(np.abs(x.var(axis=0) - 1.0) < Z * math.sqrt(2.0 / n)), x.var(axis=0)
    tail = 2.0 * special.ndtr(-2.0)
    assert np.all(np.abs((np.abs(x) > 2.0).mean(axis=0) - tail) < Z * math.sqrt(tail * (1.0 - tail) / n))
    # Uncorrelated with each other and with the categorical columns: each correlation has se 1 / sqrt(n).
    corr = np.asarray(np.corrcoef(np.column_stack([e[:, :q_cat].astype(np.float64), x]), rowvar=False))[:, q_cat:]
    off_diagonal = corr[np.arange(q_cat + m)[:, None] != np.arange(q_cat, q_cat + m)[None, :]]
    assert np.all(np.abs(off_diagonal) < Z / math.sqrt(n)), off_diagonal


@pytest.mark.parametrize("crm_scores", [0, 4])
def test_crm_scores_give_almost_every_customer_a_profile_of_its_own(crm_scores: int) -> None:
    # Categorical observables alone give at most 4 x 5 x 4 = 80 distinct profiles, so no persona policy can
    # form more than 80 segments. Two standard normals round to the same float16 with probability 1.1e-4,
    # so four scores coincide with probability 1.6e-16 per pair: among 20,000 customers (2e8 pairs) every
    # one has a vector of its own (a collision has probability below 1e-7) and k-means can form thousands.
    n = 20_000
    e = make(n, seed=19, crm_scores=crm_scores).observables()
    distinct = np.unique(e, axis=0).shape[0]
    if crm_scores:
        assert distinct == n
    else:
        assert distinct <= 80


def test_optin_shares_match_reach_by_age_band() -> None:
    n = 200_000
    channels = ChannelsConfig.model_validate(
        {
            "messaging": {"reach": 0.0, "reach_age_slope": 0.5},
            "paid_social": {"reach": 1.0, "reach_age_slope": -1.0},
        }
    ).by_name()
    pop = make(n, seed=9, channels=channels)
    for c, name in enumerate(CHANNEL_NAMES):
        opted = (pop.optin >> c) & 1
        reach, slope = channels[name].reach, channels[name].reach_age_slope
        for band in range(len(pop.age_band_share)):
            in_band = pop.age_band == band
            share = opted[in_band].mean()
            if reach in (0.0, 1.0):
                assert share == reach, (name, band)
                continue
            expected = 1.0 / (1.0 + math.exp(-(math.log(reach / (1.0 - reach)) + slope * band)))
            se = math.sqrt(expected * (1.0 - expected) / in_band.sum())
            assert abs(share - expected) < Z * se, (name, band, share, expected)
    assert pop.optin.max() < 1 << len(CHANNEL_NAMES)


def test_active_window_start_and_length() -> None:
    n = 200_000
    pop = make(n, seed=10, active_window_hours=4.0)
    counts = np.bincount(pop.active_start_hour, minlength=24)
    assert counts.size == 24
    se = np.sqrt(ACTIVE_START_PMF * (1.0 - ACTIVE_START_PMF) / n)
    assert np.all(np.abs(counts / n - ACTIVE_START_PMF) < Z * se)
    hours = pop.active_hours.astype(np.float64)
    assert hours.min() >= 1 and hours.max() <= 24
    # 1 + Poisson(3): mean 4, variance 3 (the clip at 24 is never reached in practice).
    assert abs(hours.mean() - 4.0) < Z * math.sqrt(3.0 / n)


def test_voice_rate_and_patience() -> None:
    n = 200_000
    pop = make(n, seed=12, voice_posts_per_year=2.0, patience_median_minutes=30.0)
    voice = pop.voice_rate.astype(np.float64)
    # Gamma with shape 0.5 and mean 2: variance 2^2 / 0.5 = 8.
    assert abs(voice.mean() - 2.0) < Z * math.sqrt(8.0 / n)
    log_patience = np.log(pop.patience_minutes.astype(np.float64))
    assert abs(log_patience.mean() - math.log(30.0)) < Z / math.sqrt(n)
    assert abs(log_patience.std() - 1.0) < Z * math.sqrt(0.5 / n)  # sd of a normal's sd: sigma / sqrt(2n)
    silent = make(1_000, voice_posts_per_year=0.0)
    assert np.all(silent.voice_rate == 0.0)


# --------------------------------------------------------------------------------------------------
# Buying: category rate, brand choice, warmth
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loading", [0.0, 2.0])  # 2 = the largest loading, where exp(b x) is least normal
def test_category_rate_mean_and_log_variance(loading: float) -> None:
    n = 200_000
    market = MarketConfig(category_purchases_per_year=6.0, category_rate_shape=0.8)
    rate = make(n, seed=13, market=market, category_rate_observable_loading=loading).category_rate
    rate = rate.astype(np.float64)
    # The observable multiplier is normalised exactly, so the mean rate is M whatever the loading.
    assert abs(rate.mean() - 6.0) < Z * rate.std() / math.sqrt(n)
    # log rate = log Gamma(K) + b x + const with x of unit variance: Var = trigamma(K) + b^2.
    logs = np.log(rate)
    var = logs.var()
    fourth = ((logs - logs.mean()) ** 4).mean()
    expected = special.polygamma(1, 0.8) + loading**2
    assert abs(var - expected) < Z * math.sqrt((fourth - var**2) / n), (var, expected)


def test_brand_probabilities_have_dirichlet_means_and_variances() -> None:
    n = 200_000
    market = MarketConfig(dirichlet_s=1.2)
    shares = np.array([b.market_share for b in market.brands])
    p = make(n, seed=14, market=market).brand_prob.astype(np.float64)
    # Each of the J probabilities is rounded to float16, by at most half its spacing (2^-12 below 1).
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=p.shape[1] * 2.0**-12)
    sd = p.std(axis=0)
    assert np.all(np.abs(p.mean(axis=0) - shares) < Z * sd / math.sqrt(n))
    # Var(p_j) = share_j (1 - share_j) / (S + 1) for the Dirichlet.
    var = p.var(axis=0)
    fourth = ((p - p.mean(axis=0)) ** 4).mean(axis=0)
    expected = shares * (1.0 - shares) / 2.2
    assert np.all(np.abs(var - expected) < Z * np.sqrt((fourth - var**2) / n)), (var, expected)


def test_tiny_dirichlet_s_puts_each_customer_on_one_brand_with_probability_share() -> None:
    # As S -> 0 the Dirichlet concentrates on the corners, corner j with probability share_j. Most Gamma
    # draws underflow to 0 here, so this also checks the fallback for rows whose draws are all 0.
    n = 100_000
    market = MarketConfig(dirichlet_s=1e-3)
    shares = np.array([b.market_share for b in market.brands])
    p = make(n, seed=15, market=market).brand_prob
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    corner = (p > 0.5).mean(axis=0)
    assert abs(corner.sum() - 1.0) < 0.01
    assert np.all(np.abs(corner - shares) < Z * np.sqrt(shares * (1.0 - shares) / n)), corner


@pytest.mark.parametrize("s", [1.2, 20.0])
def test_warmth_is_standardised(s: float) -> None:
    n = 200_000
    w = make(n, seed=16, market=MarketConfig(dirichlet_s=s)).warmth.astype(np.float64)
    assert abs(w.mean()) < Z * w.std() / math.sqrt(n)
    var = w.var()
    fourth = ((w - w.mean()) ** 4).mean()
    assert abs(var - 1.0) < Z * math.sqrt((fourth - var**2) / n), var


def test_warmth_moments_match_the_unclipped_logit_beta_when_clipping_is_negligible() -> None:
    # logit(p) for p ~ Beta(a, b) is log G_a - log G_b: mean digamma(a) - digamma(b), variance trigamma(a) +
    # trigamma(b). With a = 20, b = 30 the mass beyond the clip is below 1e-30.
    mean, sd = warmth_logit_moments(20.0, 30.0)
    assert mean == pytest.approx(special.digamma(20.0) - special.digamma(30.0), abs=1e-9)
    assert sd == pytest.approx(math.sqrt(special.polygamma(1, 20.0) + special.polygamma(1, 30.0)), rel=1e-9)


def test_missing_channel_is_rejected() -> None:
    channels = {k: v for k, v in CHANNELS.items() if k != "sms"}
    with pytest.raises(ValueError, match="sms"):
        make(100, channels=channels)


# --------------------------------------------------------------------------------------------------
# Property: any valid small configuration gives a well-formed population
# --------------------------------------------------------------------------------------------------


def _shares(draw: st.DrawFn, size: int, allow_zero: bool) -> list[float]:
    low = 0.0 if allow_zero else 0.01
    weights = draw(st.lists(st.floats(low, 1.0), min_size=size, max_size=size))
    if sum(weights) <= 0:
        weights[0] = 1.0
    total = sum(weights)
    return [w / total for w in weights]


@st.composite
def small_worlds(draw: st.DrawFn) -> tuple[PopulationConfig, MarketConfig]:
    n_regions = draw(st.integers(1, 4))
    regions = [
        Region(name=f"r{i}", utc_offset_hours=draw(st.floats(-12.0, 14.0)), share=share)
        for i, share in enumerate(_shares(draw, n_regions, allow_zero=False))
    ]
    cfg = PopulationConfig(
        customers=draw(st.integers(100, 400)),
        taste_dims=draw(st.integers(1, 4)),
        persona_signal=draw(st.floats(0.0, 1.0)),
        taste_tail_dof=draw(st.floats(2.05, 1000.0)),
        regions=regions,
        age_band_shares=_shares(draw, draw(st.integers(1, 5)), allow_zero=True),
        income_band_shares=_shares(draw, draw(st.integers(1, 4)), allow_zero=True),
        crm_scores=draw(st.integers(0, 3)),
        category_rate_observable_loading=draw(st.floats(0.0, 2.0)),
        active_window_hours=draw(st.floats(1.0, 24.0)),
        voice_posts_per_year=draw(st.floats(0.0, 100.0)),
        patience_median_minutes=draw(st.floats(0.1, 10_080.0)),
    )
    brand_shares = _shares(draw, draw(st.integers(2, 6)), allow_zero=False)
    market = MarketConfig(
        brands=[Brand(name=f"b{j}", market_share=s) for j, s in enumerate(brand_shares)],
        category_purchases_per_year=draw(st.floats(0.1, 365.0)),
        category_rate_shape=draw(st.floats(0.01, 100.0)),
        dirichlet_s=draw(st.sampled_from([1e-4, 0.01, 0.3, 1.2, 10.0, 100.0])),
    )
    return cfg, market


@settings(max_examples=40, deadline=None)
@given(world=small_worlds(), seed=st.integers(0, 2**32 - 1))
def test_any_small_world_is_well_formed(world: tuple[PopulationConfig, MarketConfig], seed: int) -> None:
    cfg, market = world
    pop = generate_population(cfg, market, CHANNELS, np.random.SeedSequence(seed))
    n = cfg.customers
    p = pop.brand_prob
    assert p.shape == (n, len(market.brands))
    assert np.all(np.isfinite(p)) and np.all(p >= 0.0) and np.all(p <= 1.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=p.shape[1] * 2.0**-12)  # float16 rounding, as above
    for name in ("taste", "warmth", "category_rate", "voice_rate", "patience_minutes", "crm_scores"):
        assert np.all(np.isfinite(getattr(pop, name))), name
    assert pop.taste.shape == (n, cfg.taste_dims)
    assert np.all(pop.category_rate >= 0.0) and np.all(pop.voice_rate >= 0.0)
    assert np.all(pop.patience_minutes > 0.0)
    assert pop.region.max() < len(cfg.regions)
    assert pop.age_band.max() < len(cfg.age_band_shares)
    assert pop.income_band.max() < len(cfg.income_band_shares)
    assert np.all(np.asarray(cfg.age_band_shares)[pop.age_band] > 0)
    assert pop.active_start_hour.max() <= 23
    assert pop.active_hours.min() >= 1 and pop.active_hours.max() <= 24
    e = pop.observables()
    q_cat = len(cfg.regions) + len(cfg.age_band_shares) + len(cfg.income_band_shares)
    assert e.shape == (n, q_cat + cfg.crm_scores)
    assert np.all(np.isfinite(e))
    assert pop.crm_scores.shape == (n, cfg.crm_scores) and pop.crm_scores.dtype == np.float16
