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

Every arm also tallies the **market under its own marketing** (:data:`ARM_WORLD`): the same occasions, with
our brand's probability raised by the customer's adstock (the rivals losing the same fraction each), the
occasions a pull-forward credit consumed buying nothing, and every click-started occasion buying a brand
(ours or a rival). So marketing both takes purchases from rivals (at organic occasions) and adds category
purchases (click-started occasions, less the later occasions they used up): the category can grow.
Conversation purchases (inbound) are not in either tally. A `none` arm's market is the world without
marketing exactly (the same uniforms, no adstock).

The window is the market's stated period (``market.period_days``) from the start of the run, or the whole
horizon when that is shorter; the Dirichlet's predictions are computed for the same window.

Memory: one unsigned integer per customer, the set of brands bought as a bit mask (1 byte up to 8 brands, 2
up to 16, 4 up to 32), plus J purchase counters; buyers per brand and per pair of brands are counted from
the masks at the end (exact). The first arm holds two tallies (the world without marketing and its own), the
others one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from masssim.config.schema import YEAR_DAYS, Scenario
from masssim.estimation.histograms import bincount_in_blocks
from masssim.estimation.intervals import mean_ci, paired_difference
from masssim.theory import dirichlet

DAY_S = 86_400.0
# Below this many brands the masks are counted with one bincount over 2^J bins (O(N)); above, sorted.
BINCOUNT_MAX_BRANDS = 20

WORLD = (
    "the world without marketing: every customer's organic purchase occasions, brand chosen from their own "
    "Dirichlet probabilities (no adstock, no click-triggered purchases, no churn); the same in every arm"
)
ARM_WORLD = (
    "the market under the arm's marketing: the same organic occasions with our brand's probability raised by "
    "the customer's adstock (every rival losing the same fraction of its probability), occasions used up by a "
    "pull-forward buying nothing, customers who left our brand buying a rival, and every click-started "
    "occasion buying a brand (ours or a rival); conversation purchases are not counted"
)


def market_window_days(scenario: Scenario) -> float:
    """Days of the run the market section covers: the stated period, or the horizon when shorter."""
    return min(scenario.market.period_days, scenario.horizon_days)


def brand_without_marketing(brand_prob: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """int8 [n]: the brand each occasion buys with no marketing, from the customers' probability rows
    ``brand_prob`` [n, J] and the occasions' choice uniforms (brand j iff u falls in its slice of [0, 1))."""
    # The count of cumulative sums p_0 + ... + p_j (float64, added in brand order) at or below u. Only the
    # first J - 1 are compared: a row's float32 probabilities can sum to a hair under 1, and a uniform above
    # the sum buys the last brand. Column by column: a tenth of the time of a cumsum over the [n, J] table.
    n_brands = brand_prob.shape[1]
    running = brand_prob[:, 0].astype(np.float64)
    chosen = (running <= uniform).astype(np.int8)
    for j in range(1, n_brands - 1):
        running += brand_prob[:, j]
        chosen += running <= uniform
    return chosen if n_brands > 1 else np.zeros_like(chosen)


def brand_with_marketing(
    brand_prob: np.ndarray,
    uniform: np.ndarray,
    p_ours: np.ndarray,
    bought_ours: np.ndarray,
    gone: np.ndarray | None = None,
) -> np.ndarray:
    """int8 [n]: the brand each occasion buys under an arm's marketing. ``brand_prob`` [n, J] are the
    customers' own probabilities, ``uniform`` the occasions' choice uniforms, ``p_ours`` our brand's
    probability with the adstock (p0' of docs/model.md 5.1), ``bought_ours`` the engine's verdict, ``gone``
    the customers who have left our brand (inbound churn).

    Not ours: a rival, from the rivals' own probabilities renormalised. The part of the uniform above p0'
    is stretched onto the rivals' slices, ``v = p0 + (u - p0')(1 - p0)/(1 - p0')``, so every rival loses the
    same fraction ``(1 - p0')/(1 - p0) = exp(-adstock)`` of its probability; with no adstock ``v = u``
    exactly, the brand of the world without marketing. A customer who has left picks a rival with the whole
    uniform, ``v = p0 + u(1 - p0)``. No random number is drawn."""
    p0 = brand_prob[:, 0].astype(np.float64)
    v = np.array(uniform, dtype=np.float64)
    left = np.zeros(v.shape[0], bool) if gone is None else gone
    # Not ours although the uniform was below p0' can only be a customer who left, so 1 - p0' > 0 here.
    moved = np.flatnonzero((p_ours != p0) & ~bought_ours & ~left)
    if moved.shape[0]:
        q0, q = p0[moved], p_ours[moved]
        # Rounding may put v a hair below p0 (ours' slice): it is a rival's occasion, so clip it to p0.
        v[moved] = np.maximum(q0 + (v[moved] - q) * (1.0 - q0) / (1.0 - q), q0)
    if gone is not None:
        v[gone] = p0[gone] + v[gone] * (1.0 - p0[gone])
    return np.where(bought_ours, np.int8(0), brand_without_marketing(brand_prob, v)).astype(np.int8)


def mask_dtype(n_brands: int) -> type[np.unsignedinteger[Any]]:
    """The smallest unsigned integer holding one bit per brand."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n_brands <= np.iinfo(dtype).bits:
            return dtype
    raise ValueError("the brand mask holds at most 32 brands")


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
        self.n_brands = n_brands
        self.window_s = window_s
        self.mask_type = mask_dtype(n_brands)
        self.brands_bought = np.zeros(n_customers, self.mask_type)  # bit j set = bought brand j
        self.purchases = np.zeros(n_brands, np.int64)

    def add(self, customer: np.ndarray, time_s: np.ndarray, brand_prob: np.ndarray, uniform: np.ndarray) -> None:
        """Occasions (customer, time, choice uniform) in time order; those after the window are ignored.
        ``brand_prob`` is the whole population's [N, J] table."""
        inside = self.inside(time_s)
        if inside == 0:
            return
        who = customer[:inside]
        self._count(who, brand_without_marketing(brand_prob[who], uniform[:inside]))

    def inside(self, time_s: np.ndarray) -> int:
        """How many of the occasions at ``time_s`` (in time order) fall inside the window: they are a prefix."""
        return int(np.searchsorted(time_s, self.window_s, side="right"))

    def add_brands(self, customer: np.ndarray, time_s: np.ndarray, brand: np.ndarray) -> None:
        """Purchases already given a brand (any time order): those after the window are ignored."""
        inside = time_s <= self.window_s
        if inside.any():
            self._count(customer[inside], brand[inside])

    def _count(self, who: np.ndarray, brand: np.ndarray) -> None:
        self.purchases += np.bincount(brand, minlength=self.n_brands)
        bit = np.left_shift(self.mask_type(1), brand.astype(self.mask_type))
        np.bitwise_or.at(self.brands_bought, who, bit)

    def finish(self) -> MarketCounts:
        masks = self.brands_bought
        J = self.n_brands
        if J <= BINCOUNT_MAX_BRANDS:
            per_mask = bincount_in_blocks(masks, minlength=1 << J)
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
        "category_purchases_per_customer": total / n,
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


SHARE_BOUNDS = (0.0, 1.0)
COUNT_BOUNDS = (0.0, None)
# The per-arm figures of every brand, with their ranges (duplication is per pair, below).
ARM_BRAND_FIGURES = {
    "share": SHARE_BOUNDS,
    "penetration": SHARE_BOUNDS,
    "purchases_per_buyer": COUNT_BOUNDS,
    "bought_a_rival": SHARE_BOUNDS,
}
ARM_CATEGORY_FIGURES = {
    "penetration": ("category_penetration", SHARE_BOUNDS),
    "purchases_per_buyer": ("category_purchases_per_buyer", COUNT_BOUNDS),
    "purchases_per_customer": ("category_purchases_per_customer", COUNT_BOUNDS),
}


def arm_market_section(
    scenario: Scenario, no_marketing: list[MarketCounts], by_arm: dict[str, list[MarketCounts]]
) -> dict[str, Any]:
    """The ``market.by_arm`` block of summary.json: per arm, every brand's figures under the arm's marketing
    (mean and 95% t interval over replications, each replication's value) and, under ``change``, the paired
    difference from the world without marketing in the same replications (the same occasions and uniforms,
    so the difference is the marketing's alone). Duplication is given without the change, to keep it short."""
    base = [_figures(c) for c in no_marketing]
    names = [b.name for b in scenario.market.brands]

    def series(figures: list[dict[str, Any]], key: str, *index: int) -> list[float]:
        return [float(f[key][index]) if index else float(f[key]) for f in figures]

    def stat(figures: list[dict[str, Any]], key: str, bounds: Any, *index: int, change: bool = True) -> dict[str, Any]:
        values = series(figures, key, *index)
        out: dict[str, Any] = {**mean_ci(values, bounds=bounds), "values": values}
        if change:
            out["change"] = paired_difference(values, series(base, key, *index), bounds=bounds)
        return out

    arms: dict[str, Any] = {}
    for arm, counts in by_arm.items():
        figures = [_figures(c) for c in counts]
        arms[arm] = {
            "category": {name: stat(figures, key, bounds) for name, (key, bounds) in ARM_CATEGORY_FIGURES.items()},
            "brands": {
                brand: {
                    **{key: stat(figures, key, bounds, j) for key, bounds in ARM_BRAND_FIGURES.items()},
                    "duplication": {
                        other: stat(figures, "duplication", SHARE_BOUNDS, j, k, change=False)
                        for k, other in enumerate(names)
                        if k != j
                    },
                }
                for j, brand in enumerate(names)
            },
        }
    return {"world": ARM_WORLD, "window_days": no_marketing[0].window_days, "arms": arms}


__all__ = [
    "ARM_WORLD",
    "WORLD",
    "MarketCounts",
    "MarketTally",
    "arm_market_section",
    "brand_with_marketing",
    "brand_without_marketing",
    "market_section",
    "market_window_days",
    "predictions",
]
