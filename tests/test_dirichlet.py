"""The NBD-Dirichlet predictions (masssim.theory.dirichlet) against simulated buying and against known limits.

The simulation buys as the engine does: each customer makes Poisson(lambda_i T) category purchases in the
period and each purchase picks a brand from p_i. Tolerances are 4 standard errors computed from the
simulated data (binomial for shares of customers, the CLT for means), so the tests fail if the analytic
functions, the population's Gamma rates or its Dirichlet draws are wrong.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from masssim.config.schema import ChannelsConfig, MarketConfig, PopulationConfig
from masssim.model import streams
from masssim.model.population import generate_population
from masssim.theory import dirichlet

Z = 4.0
T = 0.25  # a quarter of a year
N = 200_000


@pytest.fixture(scope="module")
def simulated() -> dict:
    market = MarketConfig()  # J = 5, our share 0.2, M = 6, K = 0.8, S = 1.2
    cfg = PopulationConfig(customers=N, category_rate_observable_loading=0.0)
    channels = ChannelsConfig.model_validate({}).by_name()
    pop = generate_population(cfg, market, channels, np.random.SeedSequence(2024))
    rng = streams.generator(np.random.SeedSequence(99))
    n = rng.poisson(pop.category_rate.astype(np.float64) * T)
    p = pop.brand_prob.astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    counts = rng.multinomial(n, p)
    shares = np.array([b.market_share for b in market.brands])
    args = (shares, market.dirichlet_s, market.category_rate_shape, market.category_purchases_per_year, T)
    return {"n": n, "counts": counts, "args": args, "market": market}


def _share_close(hits: np.ndarray, expected: float) -> tuple[bool, float, float]:
    share = float(hits.mean())
    se = math.sqrt(share * (1.0 - share) / hits.size)
    return abs(share - expected) < Z * se, share, se


def test_category_penetration_and_mean_purchases(simulated: dict) -> None:
    n = simulated["n"]
    market = simulated["market"]
    k, m = market.category_rate_shape, market.category_purchases_per_year
    ok, share, se = _share_close(n > 0, dirichlet.category_penetration(k, m, T))
    assert ok, (share, se)
    assert abs(n.mean() - m * T) < Z * n.std() / math.sqrt(n.size)
    buyers = n[n > 0]
    expected = dirichlet.category_purchases_per_buyer(k, m, T)
    assert abs(buyers.mean() - expected) < Z * buyers.std() / math.sqrt(buyers.size)


def test_brand_penetration(simulated: dict) -> None:
    bought = simulated["counts"] > 0
    expected = dirichlet.penetration(*simulated["args"])
    for j in range(bought.shape[1]):
        ok, share, se = _share_close(bought[:, j], expected[j])
        assert ok, (j, share, expected[j], se)


def test_purchases_per_buyer(simulated: dict) -> None:
    counts = simulated["counts"]
    expected = dirichlet.purchases_per_buyer(*simulated["args"])
    for j in range(counts.shape[1]):
        buys = counts[counts[:, j] > 0, j]
        assert abs(buys.mean() - expected[j]) < Z * buys.std() / math.sqrt(buys.size), (j, buys.mean())


def test_duplication_of_our_brand(simulated: dict) -> None:
    bought = simulated["counts"] > 0
    expected = dirichlet.duplication(*simulated["args"])
    for k in range(1, bought.shape[1]):
        # Row 0: of our buyers, the share who also bought k; column 0: of k's buyers, the share who bought us.
        ok, share, se = _share_close(bought[bought[:, 0], k], expected[0, k])
        assert ok, ("ours -> ", k, share, expected[0, k], se)
        ok, share, se = _share_close(bought[bought[:, k], 0], expected[k, 0])
        assert ok, (k, " -> ours", share, expected[k, 0], se)


def test_duplication_check_can_tell_the_dirichlet_from_a_less_polarised_market(simulated: dict) -> None:
    # Power: the predictions of a market with 4 times the S (less loyal buyers) lie outside the tolerance.
    bought = simulated["counts"] > 0
    shares, s, k, m, t = simulated["args"]
    wrong = dirichlet.duplication(shares, 4.0 * s, k, m, t)
    outside = [not _share_close(bought[bought[:, 0], j], wrong[0, j])[0] for j in range(1, bought.shape[1])]
    assert all(outside)


# --------------------------------------------------------------------------------------------------
# Deterministic checks of the formulas
# --------------------------------------------------------------------------------------------------

SHARES = np.array([0.2, 0.3, 0.2, 0.1, 0.2])


def test_category_penetration_is_one_minus_the_nbd_zero_term() -> None:
    for k, m, t in ((0.8, 6.0, 0.25), (0.05, 40.0, 2.0), (50.0, 1.0, 1.0)):
        expected = 1.0 - stats.nbinom.pmf(0, k, k / (k + m * t))
        assert dirichlet.category_penetration(k, m, t) == pytest.approx(expected, rel=1e-12)


def test_without_polarisation_penetration_is_the_nbd_pgf() -> None:
    # As S -> infinity every customer has p_j = share_j, so
    # P(no j) = E[(1 - share_j)^n] = (1 + m share_j / K)^-K, the NBD probability generating function.
    k, m = 0.8, 6.0 * T
    expected = 1.0 - (1.0 + m * SHARES / k) ** (-k)
    # The gap to the limit is O(E[n^2] / S), about 7e-9 here.
    np.testing.assert_allclose(dirichlet.penetration(SHARES, 1e9, k, 6.0, T), expected, rtol=1e-7)


def test_duplication_is_consistent_with_joint_probabilities() -> None:
    args = (SHARES, 1.2, 0.8, 6.0, 1.0)
    pen = dirichlet.penetration(*args)
    dup = dirichlet.duplication(*args)
    joint = pen[:, None] * dup
    np.testing.assert_allclose(joint, joint.T, rtol=1e-10)
    np.testing.assert_allclose(np.diag(dup), 1.0)
    ppb = dirichlet.purchases_per_buyer(*args)
    assert float((pen * ppb).sum()) == pytest.approx(6.0, rel=1e-12)  # every purchase is of some brand


def test_two_brand_market_duplication_uses_the_category() -> None:
    # With two brands, "neither" means no category purchase: P(both) = pen_0 + pen_1 - category penetration.
    shares, s, k, m, t = np.array([0.4, 0.6]), 1.2, 0.8, 6.0, 1.0
    pen = dirichlet.penetration(shares, s, k, m, t)
    both = pen[0] + pen[1] - dirichlet.category_penetration(k, m, t)
    assert dirichlet.duplication(shares, s, k, m, t)[0, 1] == pytest.approx(both / pen[0], rel=1e-10)


@pytest.mark.parametrize(("s", "k", "m", "t"), [(1.2, 0.8, 6.0, 0.25), (0.05, 0.1, 50.0, 2.0), (30.0, 3.0, 20.0, 1.0)])
def test_sum_over_n_and_beta_integral_agree(
    monkeypatch: pytest.MonkeyPatch, s: float, k: float, m: float, t: float
) -> None:
    pen, dup = dirichlet.penetration(SHARES, s, k, m, t), dirichlet.duplication(SHARES, s, k, m, t)
    monkeypatch.setattr(dirichlet, "MAX_TERMS", 0)  # force the integral form
    np.testing.assert_allclose(dirichlet.penetration(SHARES, s, k, m, t), pen, rtol=1e-8)
    np.testing.assert_allclose(dirichlet.duplication(SHARES, s, k, m, t), dup, rtol=1e-7)


def test_long_tailed_nbd_uses_the_integral_and_matches_the_full_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    args = (SHARES, 1.2, 0.05, 365.0, 10.0)  # about 1.6 million terms before the tail is below 1e-12
    pen = dirichlet.penetration(*args)
    monkeypatch.setattr(dirichlet, "MAX_TERMS", 1 << 22)
    np.testing.assert_allclose(dirichlet.penetration(*args), pen, rtol=1e-8)


@pytest.mark.parametrize(
    "bad",
    [
        ([0.5, 0.6], 1.2, 0.8, 6.0, 1.0),
        ([0.0, 1.0], 1.2, 0.8, 6.0, 1.0),
        ([0.5, 0.5], 0.0, 0.8, 6.0, 1.0),
        ([0.5, 0.5], 1.2, 0.8, 6.0, -1.0),
    ],
)
def test_bad_arguments_are_rejected(bad: tuple) -> None:
    with pytest.raises(ValueError):
        dirichlet.penetration(*bad)
