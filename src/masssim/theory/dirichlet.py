"""Analytic predictions of the NBD-Dirichlet model of brand choice (Goodhardt, Ehrenberg & Chatfield 1984).

G. J. Goodhardt, A. S. C. Ehrenberg and C. Chatfield, "The Dirichlet: A Comprehensive Model of Buying
Behaviour", Journal of the Royal Statistical Society A 147(5), 621-655 (1984).

Over a period of T years a customer makes n category purchases, n ~ NBD with shape K and mean m = M T (a
Poisson count whose rate is Gamma(K, M / K) across customers):

    P(n) = Gamma(K + n) / (Gamma(K) n!) * (K / (K + m))^K * (m / (K + m))^n.

Each purchase picks brand j with the customer's probability p_ij, p_i ~ Dirichlet(alpha), alpha_j =
S share_j. Given n, the purchases of brand j are beta-binomial(n, alpha_j, S - alpha_j), so

    P(no purchase of j | n) = B(alpha_j, S - alpha_j + n) / B(alpha_j, S - alpha_j),

and by the aggregation property of the Dirichlet (p_j + p_k ~ Beta(alpha_j + alpha_k, S - alpha_j -
alpha_k)) the same formula with alpha_j + alpha_k gives P(neither j nor k | n). The ratio is evaluated as
the product ``prod_{i < n} (1 - alpha_j / (S + i))``, which stays accurate for large S. The unconditional
probabilities sum these over n up to the point where the NBD tail is below ``TAIL`` (the error is then below
``TAIL``). When that would take more than ``MAX_TERMS`` terms (a very long-tailed NBD: tiny K, large m) the
same probability is computed as the equivalent one-dimensional integral over the Beta distribution of
p = p_j (or p_j + p_k), using the NBD's probability generating function:

    P(no purchase | p) = sum_n P(n) (1 - p)^n = (1 + m p / K)^(-K).

All quantities are per customer of the whole population (non-buyers of the category included).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import integrate, special, stats

TAIL = 1e-12  # the NBD probability left out of the sums over n
MAX_TERMS = 1 << 17  # beyond this many terms the integral form is used instead
_BLOCK = 4096  # terms of n evaluated at once, bounding memory


def _check(shares: np.ndarray | list[float], S: float, K: float, M: float, T: float) -> np.ndarray:
    p = np.asarray(shares, dtype=np.float64)
    if p.ndim != 1 or p.size < 1:
        raise ValueError(f"shares must be a one-dimensional list of brand shares, got shape {p.shape}")
    if np.any(p <= 0) or not math.isclose(float(p.sum()), 1.0, abs_tol=1e-6):
        raise ValueError(f"shares must be positive and sum to 1, got {p.tolist()}")
    for name, value in (("S", S), ("K", K), ("M", M), ("T", T)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive finite number, got {value}")
    return p / p.sum()


def _nbd_terms(K: float, m: float) -> int:
    """Number of terms n = 0..N-1 whose NBD mass leaves a tail below TAIL."""
    return int(stats.nbinom.isf(TAIL, K, K / (K + m))) + 1


def category_penetration(K: float, M: float, T: float) -> float:
    """P(at least one category purchase in T years) = 1 - (K / (K + M T))^K (the NBD's zero term)."""
    _check([1.0], 1.0, K, M, T)
    m = M * T
    return float(-math.expm1(K * (math.log(K) - math.log(K + m))))


def category_purchases_per_buyer(K: float, M: float, T: float) -> float:
    """Mean category purchases in T years among category buyers: M T / category penetration."""
    return M * T / category_penetration(K, M, T)


def _p_none(alpha: np.ndarray, S: float, K: float, m: float) -> np.ndarray:
    """P(no purchase of a set of brands with aggregated Dirichlet parameter ``alpha``) in a period of mean m.

    ``alpha`` has any shape; ``S - alpha`` may be 0 (the set is every brand: only n = 0 buys none).
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = S - alpha
    everything = beta <= 1e-12 * S
    beta = np.where(everything, 1.0, beta)  # placeholder, replaced below
    p_zero = math.exp(K * (math.log(K) - math.log(K + m)))
    terms = _nbd_terms(K, m)
    if terms <= MAX_TERMS:
        # P(none | n) = B(alpha, beta + n) / B(alpha, beta) = prod_{i < n} (1 - alpha / (S + i)): a running
        # product, accurate for any S (a difference of log-Beta values loses digits when S is large).
        out = np.zeros_like(alpha)
        log_none = np.zeros_like(alpha)  # log P(none | n) at the start of the block
        p = K / (K + m)
        with np.errstate(divide="ignore", invalid="ignore"):  # the set of every brand: replaced below
            for start in range(0, terms, _BLOCK):
                n = np.arange(start, min(start + _BLOCK, terms), dtype=np.float64)
                steps = np.log1p(-alpha[..., None] / (S + n))  # factor taking n to n + 1
                cum = log_none[..., None] + np.cumsum(steps, axis=-1)
                within = np.concatenate([log_none[..., None], cum[..., :-1]], axis=-1)  # log P(none | n)
                out += np.exp(within) @ stats.nbinom.pmf(n, K, p)
                log_none = cum[..., -1]
    else:
        with warnings.catch_warnings():
            # QUADPACK flags roundoff when asked for 1e-9 relative accuracy on this nearly flat integrand;
            # the result agrees with the sum over n to that accuracy (tests/test_dirichlet.py).
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            out = _integrated_none(alpha, beta, K, m)
    return np.where(everything, p_zero, np.clip(out, 0.0, 1.0))


def _integrated_none(alpha: np.ndarray, beta: np.ndarray, K: float, m: float) -> np.ndarray:
    """``E[(1 + m p / K)^(-K)]`` for p ~ Beta(alpha, beta), elementwise: the NBD's pgf at 1 - p."""
    out = np.empty_like(alpha)
    for index in np.ndindex(alpha.shape):
        a, b = float(alpha[index]), float(beta[index])
        # QAWS: the integral of f(p) p^(a-1) (1-p)^(b-1) over [0, 1], endpoint singularities handled.
        value = integrate.quad(
            lambda x: (1.0 + m * x / K) ** (-K),
            0.0,
            1.0,
            weight="alg",
            wvar=(a - 1.0, b - 1.0),
            epsabs=0.0,  # the value can be far below any absolute tolerance
            epsrel=1e-9,
            limit=200,
        )[0]
        out[index] = value / math.exp(special.betaln(a, b))
    return out


def penetration(shares: np.ndarray | list[float], S: float, K: float, M: float, T: float) -> np.ndarray:
    """[J] P(brand j bought at least once in T years), per customer of the population.

    ``1 - sum_n P(n) B(alpha_j, S - alpha_j + n) / B(alpha_j, S - alpha_j)``, alpha_j = S share_j.
    """
    p = _check(shares, S, K, M, T)
    return 1.0 - _p_none(S * p, S, K, M * T)


def purchases_per_buyer(shares: np.ndarray | list[float], S: float, K: float, M: float, T: float) -> np.ndarray:
    """[J] mean purchases of brand j in T years among its buyers: ``M T share_j / penetration_j``."""
    p = _check(shares, S, K, M, T)
    return M * T * p / penetration(p, S, K, M, T)


def duplication(shares: np.ndarray | list[float], S: float, K: float, M: float, T: float) -> np.ndarray:
    """[J, J] D[j, k] = P(brand k bought in T years | brand j bought in T years); diagonal 1.

    ``P(j and k) = 1 - P(no j) - P(no k) + P(no j and no k)``, the last from the aggregation property:
    ``P(no j and no k | n) = B(alpha_j + alpha_k, S - alpha_j - alpha_k + n) / B(alpha_j + alpha_k,
    S - alpha_j - alpha_k)``. D[j, k] = P(j and k) / P(j).
    """
    p = _check(shares, S, K, M, T)
    m = M * T
    alpha = S * p
    none_one = _p_none(alpha, S, K, m)
    rows, cols = np.triu_indices(len(p), k=1)
    none_two = np.ones((len(p), len(p)))  # the diagonal is not used
    none_two[rows, cols] = _p_none(alpha[rows] + alpha[cols], S, K, m)
    none_two[cols, rows] = none_two[rows, cols]
    both = 1.0 - none_one[:, None] - none_one[None, :] + none_two
    bought = (1.0 - none_one)[:, None]
    out = np.full_like(both, np.nan)  # undefined for a brand nobody buys (only when penetration underflows)
    np.divide(both, bought, out=out, where=bought > 0)
    np.fill_diagonal(out, 1.0)
    return np.clip(out, 0.0, 1.0)


def bought_a_rival(shares: np.ndarray | list[float], S: float, K: float, M: float, T: float) -> np.ndarray:
    """[J] P(some other brand bought in T years | brand j bought in T years).

    Brand j's buyers who bought nothing else made n >= 1 purchases, none of the other brands: by aggregation
    the other brands form one "brand" with parameter S - alpha_j, so ``P(only j) = P(no other brand) - P(n =
    0)``, and the share asked for is ``1 - P(only j) / P(j)``.
    """
    p = _check(shares, S, K, M, T)
    m = M * T
    alpha = S * p
    p_zero = math.exp(K * (math.log(K) - math.log(K + m)))
    only = np.clip(_p_none(S - alpha, S, K, m) - p_zero, 0.0, 1.0)
    bought = 1.0 - _p_none(alpha, S, K, m)
    out = np.full_like(bought, np.nan)
    np.divide(only, bought, out=out, where=bought > 0)
    return np.clip(1.0 - out, 0.0, 1.0)


def duplication_coefficient(shares: np.ndarray | list[float], S: float, K: float, M: float, T: float) -> np.ndarray:
    """[J, J] D[j, k] / penetration[k]: how many times more often brand j's buyers buy k than customers do.

    The duplication of purchase law (Ehrenberg, Uncles & Goodhardt 2004): brand j's buyers buy each rival k
    in proportion to k's penetration, ``D[j, k] ~ D b_k`` with one coefficient D for the whole category, so
    this matrix is nearly constant off its diagonal (the Dirichlet's version; the diagonal is 1 / b_j).
    """
    return duplication(shares, S, K, M, T) / penetration(shares, S, K, M, T)[None, :]


__all__ = [
    "MAX_TERMS",
    "TAIL",
    "bought_a_rival",
    "category_penetration",
    "category_purchases_per_buyer",
    "duplication",
    "duplication_coefficient",
    "penetration",
    "purchases_per_buyer",
]
