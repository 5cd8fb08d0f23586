"""The market in its own terms: every brand's buying, observed in a run and set beside the Dirichlet.

What is tallied is the **world without marketing**: every organic purchase occasion of every customer
(treated and holdout alike) picks a brand from the customer's own Dirichlet probabilities ``p_i``, with no
adstock, no click-triggered purchase and no churn. That is the world the NBD-Dirichlet describes, and it is
the same in every arm of a replication (the arms share the occasions and their uniforms), so the market
section is one table per run, not one per arm. Our brand's figures in it are the holdout world extended to
everyone; what marketing changes is in the arms' metrics.

Brand choice uses the occasion's existing choice uniform ``u`` (the one the engine compares with our brand's
probability): the brand bought is the first j with ``u < p_i0 + ... + p_ij``. Our brand is bought exactly
when ``u < p_i0``, as in the engine's counterfactual, and given it is not ours ``(u - p_i0) / (1 - p_i0)`` is
uniform, so the rival is drawn from the rivals' probabilities renormalised: no new random number is drawn,
so every existing result is unchanged and the arms keep their common random numbers.

The window is the market's stated period (``market.period_days``) from the start of the run, or the whole
horizon when that is shorter; the Dirichlet's predictions are computed for the same window.

Memory: one uint32 per customer, the set of brands bought as a bit mask (at most 32 brands), plus J
purchase counters; buyers per brand and per pair of brands are counted from the masks at the end (exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from masssim.config.schema import YEAR_DAYS, Scenario
from masssim.estimation.intervals import mean_ci
from masssim.theory import dirichlet

DAY_S = 86_400.0
# Below this many brands the masks are counted with one bincount over 2^J bins (O(N)); above, sorted.
BINCOUNT_MAX_BRANDS = 20

WORLD = (
    "the world without marketing: every customer's organic purchase occasions, brand chosen from their own "
    "Dirichlet probabilities (no adstock, no click-triggered purchases, no churn); the same in every arm"
)


def market_window_days(scenario: Scenario) -> float:
    """Days of the run the market section covers: the stated period, or the horizon when shorter."""
    return min(scenario.market.period_days, scenario.horizon_days)


def brand_without_marketing(brand_prob: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """int8 [n]: the brand each occasion buys with no marketing, from the customers' probability rows
    ``brand_prob`` [n, J] and the occasions' choice uniforms (brand j iff u falls in its slice of [0, 1))."""
    cumulative = np.cumsum(brand_prob.astype(np.float64), axis=1)
    chosen = np.count_nonzero(cumulative <= uniform[:, None], axis=1)
    # A row's float32 probabilities can sum to a hair under 1: a uniform above the sum buys the last brand.
    return np.minimum(chosen, brand_prob.shape[1] - 1).astype(np.int8)


@dataclass
class MarketCounts:
    """What one replication's market tally found in its window (all counts exact)."""

    customers: int
    window_days: float
    purchases: np.ndarray  # int64 [J] purchases of each brand
    pair_buyers: np.ndarray  # int64 [J, J] customers who bought both j and k; diagonal = buyers of j
    category_buyers: int  # customers who bought any brand
    sole_buyers: np.ndarray  # int64 [J] customers who bought brand j and no other


def add_market_counts(parts: list[MarketCounts]) -> MarketCounts:
    """The tally of a population split into parts (shards of customers): every count is a sum."""
    first = parts[0]
    return MarketCounts(
        customers=sum(p.customers for p in parts),
        window_days=first.window_days,
        purchases=np.sum([p.purchases for p in parts], axis=0),
        pair_buyers=np.sum([p.pair_buyers for p in parts], axis=0),
        category_buyers=sum(p.category_buyers for p in parts),
        sole_buyers=np.sum([p.sole_buyers for p in parts], axis=0),
    )


class MarketTally:
    """Accumulates the world-without-marketing's buying over the market window, occasion by occasion."""

    def __init__(self, n_customers: int, n_brands: int, window_s: float) -> None:
        if n_brands > 32:
            raise ValueError("the brand mask holds at most 32 brands")
        self.n_brands = n_brands
        self.window_s = window_s
        self.brands_bought = np.zeros(n_customers, np.uint32)  # bit j set = bought brand j
        self.purchases = np.zeros(n_brands, np.int64)

    def add(self, customer: np.ndarray, time_s: np.ndarray, brand_prob: np.ndarray, uniform: np.ndarray) -> None:
        """Occasions (customer, time, choice uniform) in time order; those after the window are ignored.
        ``brand_prob`` is the whole population's [N, J] table."""
        inside = int(np.searchsorted(time_s, self.window_s, side="right"))
        if inside == 0:
            return
        who = customer[:inside]
        brand = brand_without_marketing(brand_prob[who], uniform[:inside])
        self.purchases += np.bincount(brand, minlength=self.n_brands)
        np.bitwise_or.at(self.brands_bought, who, np.left_shift(np.uint32(1), brand.astype(np.uint32)))

    def finish(self) -> MarketCounts:
        masks = self.brands_bought
        J = self.n_brands
        if J <= BINCOUNT_MAX_BRANDS:
            per_mask = np.bincount(masks, minlength=1 << J)
            patterns = np.flatnonzero(per_mask).astype(np.uint32)
            counts = per_mask[patterns]
        else:
            patterns, counts = np.unique(masks, return_counts=True)
        keep = patterns != 0
        patterns, counts = patterns[keep], counts[keep].astype(np.int64)
        bits = ((patterns[:, None] >> np.arange(J, dtype=np.uint32)[None, :]) & 1).astype(np.int64)  # [P, J]
        pair_buyers = bits.T @ (bits * counts[:, None])
        single = bits.sum(axis=1) == 1
        sole_buyers = np.zeros(J, np.int64)
        np.add.at(sole_buyers, np.argmax(bits[single], axis=1), counts[single])
        return MarketCounts(
            customers=int(masks.shape[0]),
            window_days=self.window_s / DAY_S,
            purchases=self.purchases.copy(),
            pair_buyers=pair_buyers,
            category_buyers=int(counts.sum()),
            sole_buyers=sole_buyers,
        )


# --------------------------------------------------------------------------------------------------
# The section of summary.json
# --------------------------------------------------------------------------------------------------


def _figures(counts: MarketCounts) -> dict[str, Any]:
    """One replication's observed figures."""
    n = counts.customers
    buyers = np.diag(counts.pair_buyers).astype(np.float64)
    total = float(counts.purchases.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        per_buyer = np.where(buyers > 0, counts.purchases / buyers, np.nan)
        duplication = np.where(buyers[:, None] > 0, counts.pair_buyers / buyers[:, None], np.nan)
        # Share of brand j's buyers who bought at least one other brand.
        sole = counts.sole_buyers.astype(np.float64)
        bought_rival = np.where(buyers > 0, 1.0 - sole / buyers, np.nan)
    return {
        "category_penetration": counts.category_buyers / n,
        "category_purchases_per_buyer": total / counts.category_buyers if counts.category_buyers else float("nan"),
        "penetration": buyers / n,
        "purchases_per_buyer": per_buyer,
        "share": counts.purchases / total if total else np.full(len(buyers), np.nan),
        "duplication": duplication,
        "bought_a_rival": bought_rival,
    }


def predictions(scenario: Scenario, window_days: float) -> dict[str, Any]:
    """The NBD-Dirichlet's predictions for the scenario's market over ``window_days`` (per customer)."""
    market = scenario.market
    shares = [b.market_share for b in market.brands]
    args = (shares, market.dirichlet_s, market.category_rate_shape, market.category_purchases_per_year)
    years = window_days / YEAR_DAYS
    K, M = market.category_rate_shape, market.category_purchases_per_year
    return {
        "category_penetration": dirichlet.category_penetration(K, M, years),
        "category_purchases_per_buyer": dirichlet.category_purchases_per_buyer(K, M, years),
        "penetration": dirichlet.penetration(*args, years),
        "purchases_per_buyer": dirichlet.purchases_per_buyer(*args, years),
        "share": np.asarray(shares, dtype=np.float64) / sum(shares),
        "duplication": dirichlet.duplication(*args, years),
        "bought_a_rival": dirichlet.bought_a_rival(*args, years),
    }


def _stat(values: list[float], predicted: float, bounds: tuple[float | None, float | None]) -> dict[str, Any]:
    return {**mean_ci(values, bounds=bounds), "predicted": predicted, "values": values}


def market_section(scenario: Scenario, per_replication: list[MarketCounts]) -> dict[str, Any]:
    """The ``market`` section of summary.json: per brand, observed (mean and 95% CI over replications, and
    each replication's value) next to the Dirichlet's prediction, for the market window."""
    window = per_replication[0].window_days
    figures = [_figures(c) for c in per_replication]
    predicted = predictions(scenario, window)
    names = [b.name for b in scenario.market.brands]
    share_bounds = (0.0, 1.0)
    count_bounds = (0.0, None)

    def series(key: str, *index: int) -> list[float]:
        return [float(f[key][index]) if index else float(f[key]) for f in figures]

    brands: dict[str, Any] = {}
    for j, name in enumerate(names):
        brands[name] = {
            "share": _stat(series("share", j), float(predicted["share"][j]), share_bounds),
            "penetration": _stat(series("penetration", j), float(predicted["penetration"][j]), share_bounds),
            "purchases_per_buyer": _stat(
                series("purchases_per_buyer", j), float(predicted["purchases_per_buyer"][j]), count_bounds
            ),
            "bought_a_rival": _stat(series("bought_a_rival", j), float(predicted["bought_a_rival"][j]), share_bounds),
            "duplication": {
                other: _stat(series("duplication", j, k), float(predicted["duplication"][j, k]), share_bounds)
                for k, other in enumerate(names)
                if k != j
            },
        }
    return {
        "world": WORLD,
        "period_days": scenario.market.period_days,
        "window_days": window,
        "customers_per_replication": per_replication[0].customers,
        "category": {
            "penetration": _stat(
                series("category_penetration"), float(predicted["category_penetration"]), share_bounds
            ),
            "purchases_per_buyer": _stat(
                series("category_purchases_per_buyer"), float(predicted["category_purchases_per_buyer"]), count_bounds
            ),
        },
        "brands": brands,
    }


__all__ = [
    "WORLD",
    "MarketCounts",
    "MarketTally",
    "brand_without_marketing",
    "market_section",
    "market_window_days",
    "predictions",
]
