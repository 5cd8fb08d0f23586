"""``masssim fit market``: the NBD-Dirichlet fitted to a purchase panel by maximum likelihood.

A panel is one row per purchase (customer, brand, date). Under the model (Goodhardt, Ehrenberg & Chatfield
1984; :mod:`masssim.theory.dirichlet`) a customer's category purchases in the panel's span are n ~ NBD(K, mean m),
and given n the brand counts x are Dirichlet-multinomial(n, alpha), alpha_j = S share_j. Both follow from
the same Poisson-Gamma-Dirichlet mixture, and the likelihood of a customer's counts factorises:

    P(x) = P_NBD(n | K, m) * P_DM(x | n, alpha).

So the maximum-likelihood fit is two separate fits:

* **K and m** from the category counts n. Given the population size N (``--customers``), the N - buyers
  non-buyers have n = 0 and the fit is the ordinary NBD's (whose estimate of m is the sample mean). A panel
  lists only customers who bought, so without N the fit is the **zero-truncated** NBD's, conditional on
  n >= 1, and N is estimated as buyers / (1 - P(0)). That fit is far less precise: how many people never
  bought is an extrapolation from the shape of the counts, and as K -> 0 the truncated NBD tends to the
  logarithmic series distribution, whose K cannot be told from 0 (Chatfield, Ehrenberg & Goodhardt 1966).
* **alpha** (hence S = sum alpha and share_j = alpha_j / S) from each buyer's brand counts given n: the
  Dirichlet-multinomial likelihood, maximised with scipy.optimize (L-BFGS-B on log alpha, analytic gradient).
  Non-buyers carry no information on brand choice, so N does not enter.

Standard errors come from the observed information (the inverse Hessian of the log-likelihood at the
maximum: numerical for the two NBD parameters, analytic for alpha), and 95% intervals are Wald intervals on
the log scale (they stay positive). Goodness of fit compares the panel's penetration, purchases per buyer
and duplication of purchase with :mod:`masssim.theory.dirichlet`'s predictions at the fitted parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, special

from masssim.config.errors import ScenarioError
from masssim.fit.table import DATE_ALLOWED, codes, parse_date, read_table
from masssim.theory import dirichlet

PANEL_COLUMNS = ("customer", "brand", "date")
YEAR_DAYS = 365.25  # the engine's year (masssim.engine.organic.YEAR_S)
Z95 = 1.959963984540054  # standard normal 97.5% quantile
MAX_BRANDS = 32  # a scenario's market holds at most this many brands (scenario.MarketConfig)
# The scenario schema's ranges (scenario.MarketConfig); a fit outside them is capped, with a warning.
K_RANGE = (1e-3, 100.0)
S_MAX = 100.0
M_PER_YEAR_MAX = 365.0
PERIOD_DAYS_RANGE = (1.0, 3652.5)  # scenario.MarketConfig.period_days


@dataclass(frozen=True)
class Estimate:
    """A fitted parameter: the maximum-likelihood value, its standard error and a 95% interval."""

    value: float
    se: float

    @property
    def ci(self) -> tuple[float, float]:
        """Wald interval on the log scale: ``value * exp(-+ 1.96 se / value)`` (delta method), always > 0."""
        if not (self.se > 0 and math.isfinite(self.se)):
            return (self.value, self.value) if self.se == 0 else (0.0, math.inf)
        half = Z95 * self.se / self.value
        if half > 700:  # exp would overflow: the data say nothing about this parameter
            return 0.0, math.inf
        return self.value * math.exp(-half), self.value * math.exp(half)

    def scaled(self, factor: float) -> Estimate:
        return Estimate(self.value * factor, self.se * factor)


@dataclass(frozen=True)
class Panel:
    """A purchase panel as counts: purchases of each brand by each customer who bought in the span."""

    file: str
    brands: list[str]  # in the order the scenario gets them: ours first, then by share
    counts: np.ndarray  # int64 [buyers, brands]
    first: date
    last: date
    span_days: float  # the period the counts cover
    customers: int | None  # the population the panel was drawn from, when known

    @property
    def buyers(self) -> int:
        return int(self.counts.shape[0])

    @property
    def purchases(self) -> int:
        return int(self.counts.sum())


def read_panel(
    path: str | Path, *, ours: str | None = None, span_days: float | None = None, customers: int | None = None
) -> Panel:
    """Read a panel CSV (columns customer, brand, date; one row per purchase).

    ``ours`` names the brand that becomes the scenario's first (ours); by default the biggest brand is first.
    ``span_days`` is the period the panel covers (default: first to last date, both included).
    ``customers`` is the size of the population the buyers came from (default: unknown).
    """
    table = read_table(path, PANEL_COLUMNS, what="one purchase")
    file = table.file
    dates = table.parsed("date", parse_date, DATE_ALLOWED)
    first, last = min(dates), max(dates)
    observed_days = (last - first).days + 1
    if span_days is None:
        span_days = float(observed_days)
    elif span_days < observed_days:
        raise ScenarioError(
            f"is shorter than the panel, which runs from {first} to {last}",
            file=file,
            field="--span-days",
            value=span_days,
            allowed=f"at least {observed_days} days",
        )
    customer_ids, customer_index = codes(table.columns["customer"])
    names, brand_index = codes(table.columns["brand"])
    if len(names) < 2:
        raise ScenarioError(
            "names only one brand", file=file, field="brand", value=names[0], allowed="at least 2 brands"
        )
    if len(names) > MAX_BRANDS:
        raise ScenarioError(
            f"names {len(names)} brands; a scenario's market holds at most {MAX_BRANDS}",
            file=file,
            field="brand",
            allowed=f"at most {MAX_BRANDS} brands (merge the smallest into one, such as 'other')",
        )
    n_brands, n_customers = len(names), len(customer_ids)
    counts = np.bincount(customer_index * n_brands + brand_index, minlength=n_customers * n_brands)
    counts = counts.reshape(n_customers, n_brands).astype(np.int64)
    totals = counts.sum(axis=0)
    order = sorted(range(n_brands), key=lambda j: (-int(totals[j]), names[j]))
    if ours is not None:
        if ours not in names:
            raise ScenarioError(
                "is not a brand of the panel", file=file, field="--ours", value=ours, allowed=", ".join(sorted(names))
            )
        order.remove(names.index(ours))
        order.insert(0, names.index(ours))
    if customers is not None and customers < n_customers:
        raise ScenarioError(
            f"is smaller than the {n_customers:,} customers who bought in the panel",
            file=file,
            field="--customers",
            value=customers,
            allowed=f"the size of the population the panel was drawn from, at least {n_customers}",
        )
    return Panel(
        file=file,
        brands=[names[j] for j in order],
        counts=counts[:, order],
        first=first,
        last=last,
        span_days=float(span_days),
        customers=customers,
    )


# --- the NBD part: K and m from the category counts ----------------------------------------------------


def _nbd_loglik(K: float, m: float, values: np.ndarray, weights: np.ndarray, truncated: bool) -> float:
    """Log-likelihood of counts ``values`` seen ``weights`` times under NBD(K, mean m), without the
    constant -log(n!); ``truncated``: conditional on n >= 1 (every value must then be >= 1)."""
    log_p0 = K * (math.log(K) - math.log(K + m))
    terms = special.gammaln(K + values) - special.gammaln(K) + log_p0 + values * (math.log(m) - math.log(K + m))
    total = float(weights @ terms)
    if truncated:
        total -= float(weights.sum()) * math.log(-math.expm1(log_p0))
    return total


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """Central second differences of ``f`` at ``x`` (the NBD part has two parameters, on the log scale)."""
    n = x.shape[0]
    h = np.zeros((n, n))
    eye = np.eye(n) * step
    for i in range(n):
        for j in range(i, n):
            value = (
                f(x + eye[i] + eye[j]) - f(x + eye[i] - eye[j]) - f(x - eye[i] + eye[j]) + f(x - eye[i] - eye[j])
            ) / (4 * step * step)
            h[i, j] = h[j, i] = value
    return h


@dataclass(frozen=True)
class NbdFit:
    K: Estimate
    m: Estimate  # mean category purchases per customer in the panel's span
    population: float  # N: given, or estimated from the zero-truncated fit
    population_estimated: bool
    population_se: float  # 0 when given
    at_bound: bool  # K hit the edge of what can be fitted or written


def fit_nbd(category_counts: np.ndarray, customers: int | None) -> NbdFit:
    """K and the mean m per customer of the population, by maximum likelihood (see the module docstring)."""
    values, weights = np.unique(category_counts, return_counts=True)
    truncated = customers is None
    if not truncated:
        zeros = int(customers) - int(category_counts.shape[0])  # type: ignore[arg-type]
        if zeros > 0:
            values, weights = np.concatenate([[0], values]), np.concatenate([[zeros], weights])
    values = values.astype(np.float64)
    weights = weights.astype(np.float64)

    def negative(theta: np.ndarray) -> float:
        return -_nbd_loglik(math.exp(theta[0]), math.exp(theta[1]), values, weights, truncated)

    mean = float(values @ weights / weights.sum())
    var = float(((values - mean) ** 2) @ weights / weights.sum())
    k0 = mean * mean / (var - mean) if var > mean else 10.0  # the method of moments, as a start
    k0 = min(max(k0, 0.05), 50.0)
    m0 = mean if not truncated else max(mean * 0.5, 1e-3)
    log_k_bounds = (math.log(K_RANGE[0]), math.log(K_RANGE[1]))
    best = optimize.minimize(
        negative,
        np.array([math.log(k0), math.log(m0)]),
        method="L-BFGS-B",
        bounds=[log_k_bounds, (math.log(1e-6), math.log(1e6))],
    )
    theta = best.x
    K, m = math.exp(theta[0]), math.exp(theta[1])
    at_bound = not (log_k_bounds[0] + 1e-3 < theta[0] < log_k_bounds[1] - 1e-3)
    cov_theta = _inverse_information(_hessian(negative, theta))
    # delta method back from (log K, log m): sd(K) = K sd(log K)
    se_k = K * math.sqrt(cov_theta[0, 0]) if not at_bound else math.nan
    se_m = m * math.sqrt(cov_theta[1, 1]) if not at_bound else m * math.sqrt(1.0 / _fisher_m(K, m, weights.sum()))
    population_se = 0.0
    if truncated:
        buyers = float(weights.sum())
        p0 = math.exp(K * (math.log(K) - math.log(K + m)))
        population = buyers / (1.0 - p0)
        # N = B / (1 - p0(K, m)) by the delta method: the fitted (log K, log m) move p0, and the number of
        # buyers B is itself Binomial(N, 1 - p0), which adds N p0 / (1 - p0) to the variance.
        dlogp0 = np.array([K * (math.log(K / (K + m)) + m / (K + m)), -m * K / (K + m)])  # d log p0 / d theta
        gradient = buyers * p0 / (1.0 - p0) ** 2 * dlogp0
        variance = float(gradient @ cov_theta @ gradient) + population * p0 / (1.0 - p0)
        population_se = math.sqrt(variance) if math.isfinite(variance) and not at_bound else math.nan
    else:
        population = float(customers)  # type: ignore[arg-type]
    return NbdFit(
        K=Estimate(K, se_k),
        m=Estimate(m, se_m),
        population=population,
        population_estimated=truncated,
        population_se=population_se,
        at_bound=at_bound,
    )


def _fisher_m(K: float, m: float, n: float) -> float:
    """Fisher information on m of n NBD counts with K known: n K / (m (K + m))."""
    return n * K / (m * (K + m))


def _inverse_information(hessian_of_negative: np.ndarray) -> np.ndarray:
    """Covariance = inverse observed information; NaN where the information is not positive definite
    (a flat likelihood: the data cannot tell the parameters apart)."""
    try:
        np.linalg.cholesky(hessian_of_negative)
    except np.linalg.LinAlgError:
        return np.full_like(hessian_of_negative, np.nan)
    return np.linalg.inv(hessian_of_negative)


# --- the Dirichlet part: alpha (S and the shares) from brand counts given n -----------------------------


@dataclass(frozen=True)
class DirichletFit:
    S: Estimate
    shares: list[Estimate]
    at_bound: bool


def _histograms(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(buyers with n = c for c = 0..max, [brands, c] buyers with x_j = c): the likelihood needs only these."""
    n = counts.sum(axis=1)
    top = int(n.max())
    by_total = np.bincount(n, minlength=top + 1).astype(np.float64)
    by_brand = np.stack([np.bincount(col, minlength=top + 1) for col in counts.T]).astype(np.float64)
    return by_total, by_brand


def fit_dirichlet(counts: np.ndarray) -> DirichletFit:
    """alpha by maximum likelihood of the Dirichlet-multinomial, from buyers' brand counts ``counts``."""
    by_total, by_brand = _histograms(counts)
    c = np.arange(by_total.shape[0], dtype=np.float64)
    buyers = float(by_total[1:].sum())

    def negative(log_alpha: np.ndarray) -> tuple[float, np.ndarray]:
        alpha = np.exp(log_alpha)
        S = float(alpha.sum())
        # sum_i [lgamma(S) - lgamma(n_i + S)] + sum_ij [lgamma(x_ij + alpha_j) - lgamma(alpha_j)]
        # (x_ij = 0 contributes nothing; buyers only: n_i >= 1)
        total_part = buyers * special.gammaln(S) - by_total[1:] @ special.gammaln(c[1:] + S)
        brand_part = by_brand[:, 1:] * (special.gammaln(c[None, 1:] + alpha[:, None]) - special.gammaln(alpha)[:, None])
        ll = total_part + brand_part.sum()
        d_total = buyers * special.digamma(S) - by_total[1:] @ special.digamma(c[1:] + S)
        d_brand = (
            by_brand[:, 1:] * (special.digamma(c[None, 1:] + alpha[:, None]) - special.digamma(alpha)[:, None])
        ).sum(axis=1)
        grad = (d_total + d_brand) * alpha  # chain rule to log alpha
        return -float(ll), -grad

    shares0 = counts.sum(axis=0) / counts.sum()
    bounds = (math.log(1e-4), math.log(1e4))
    start = np.log(np.clip(shares0, 1e-4, None))  # S = 1 to start
    best = optimize.minimize(negative, start, jac=True, method="L-BFGS-B", bounds=[bounds] * counts.shape[1])
    alpha = np.exp(best.x)
    S = float(alpha.sum())
    at_bound = bool(np.any(best.x <= bounds[0] + 1e-3) or np.any(best.x >= bounds[1] - 1e-3))
    # Observed information on alpha (analytic): -d2 ll / d alpha_j d alpha_k
    common = buyers * special.polygamma(1, S) - by_total[1:] @ special.polygamma(1, c[1:] + S)
    diagonal = (
        by_brand[:, 1:] * (special.polygamma(1, c[None, 1:] + alpha[:, None]) - special.polygamma(1, alpha)[:, None])
    ).sum(axis=1)
    cov = _inverse_information(-(common + np.diag(diagonal)))
    ones = np.ones_like(alpha)
    se_s = math.sqrt(float(ones @ cov @ ones)) if np.all(np.isfinite(cov)) else math.nan
    share = alpha / S
    jacobian = (np.eye(alpha.shape[0]) - share[:, None]) / S  # d share_j / d alpha_k = (delta_jk - share_j) / S
    share_cov = jacobian @ cov @ jacobian.T
    share_se = np.sqrt(np.clip(np.diag(share_cov), 0.0, None))
    return DirichletFit(
        S=Estimate(S, se_s),
        shares=[Estimate(float(v), float(s)) for v, s in zip(share, share_se, strict=True)],
        at_bound=at_bound,
    )


# --- the whole fit and its goodness of fit ---------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Observed and predicted values of one measure, per brand (and for the category)."""

    observed: np.ndarray
    predicted: np.ndarray


@dataclass(frozen=True)
class MarketFit:
    panel: Panel
    nbd: NbdFit
    choice: DirichletFit
    share_observed: np.ndarray  # each brand's share of the panel's purchases
    penetration: Comparison  # share of the population buying the brand in the span
    purchases_per_buyer: Comparison
    duplication: Comparison  # [J, J]: share of brand j's buyers who also bought brand k
    category_penetration: Comparison  # scalars as 0-d arrays
    category_purchases_per_buyer: Comparison
    warnings: list[str] = field(default_factory=list)

    @property
    def years(self) -> float:
        return self.panel.span_days / YEAR_DAYS

    @property
    def M_per_year(self) -> Estimate:
        return self.nbd.m.scaled(1.0 / self.years)


def fit_market(panel: Panel) -> MarketFit:
    counts = panel.counts
    n = counts.sum(axis=1)
    if n.max() < 2:
        # Every likelihood above is then flat in K (truncated) and S: one purchase each tells nothing about
        # how buying concentrates or how loyal buyers are.
        raise ScenarioError(
            "no customer bought more than once in the panel, so K and S cannot be estimated",
            file=panel.file,
            field="customer",
            allowed="a panel in which some customers bought at least twice (a longer span, or more customers)",
        )
    nbd = fit_nbd(n, panel.customers)
    choice = fit_dirichlet(counts)
    warnings = []
    if nbd.at_bound:
        warnings.append(
            f"K reached the edge of the range that can be fitted ({K_RANGE[0]:g} to {K_RANGE[1]:g}): "
            + (
                "without --customers a zero-truncated panel cannot tell a small K from 0; give the population size"
                if panel.customers is None
                else "the category counts are no more spread out than a Poisson's (K very large) or extremely skewed"
            )
        )
    if choice.at_bound or choice.S.value > S_MAX:
        warnings.append(
            f"S = {choice.S.value:.3g} is beyond what the scenario accepts (at most {S_MAX:g}): buyers switch as "
            "if every one had the same brand preferences; the table is capped"
        )
    if nbd.m.value * YEAR_DAYS / panel.span_days > M_PER_YEAR_MAX:
        warnings.append(
            f"M is above the scenario's limit of {M_PER_YEAR_MAX:g} category purchases per customer per year; "
            "the table is capped"
        )
    for name, estimate in (("K", nbd.K), ("S", choice.S)):
        low, high = estimate.ci
        if not math.isfinite(estimate.se) or high > 10 * max(low, 1e-300):
            warnings.append(
                f"{name} is poorly determined by this panel (95% interval {low:.3g} to {high:.3g}): "
                "more customers or a longer span would pin it down"
            )
    if panel.customers is None:
        warnings.append(
            f"the population size was not given: {nbd.population:,.0f} customers (buyers and non-buyers) is "
            "estimated from a zero-truncated NBD; give --customers N when you know it"
        )
    N = nbd.population
    shares = np.array([s.value for s in choice.shares])
    shares = shares / shares.sum()
    K, m, S = nbd.K.value, nbd.m.value, choice.S.value
    buyers_j = (counts > 0).sum(axis=0).astype(np.float64)
    purchases_j = counts.sum(axis=0).astype(np.float64)
    both = (counts > 0).T.astype(np.float64) @ (counts > 0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        dup_observed = both / buyers_j[:, None]
    return MarketFit(
        panel=panel,
        nbd=nbd,
        choice=choice,
        share_observed=purchases_j / purchases_j.sum(),
        # predictions over one panel span: mean m per customer, T = 1 span
        penetration=Comparison(buyers_j / N, dirichlet.penetration(shares, S, K, m, 1.0)),
        purchases_per_buyer=Comparison(purchases_j / buyers_j, dirichlet.purchases_per_buyer(shares, S, K, m, 1.0)),
        duplication=Comparison(dup_observed, dirichlet.duplication(shares, S, K, m, 1.0)),
        category_penetration=Comparison(
            np.array(panel.buyers / N), np.array(dirichlet.category_penetration(K, m, 1.0))
        ),
        category_purchases_per_buyer=Comparison(
            np.array(float(n.mean())), np.array(dirichlet.category_purchases_per_buyer(K, m, 1.0))
        ),
        warnings=warnings,
    )


def average_duplication(matrix: np.ndarray) -> np.ndarray:
    """[J] mean over the other brands k of D[j, k]: how much of brand j's buyers the average rival shares."""
    off = ~np.eye(matrix.shape[0], dtype=bool)
    return np.array([float(np.nanmean(row[mask])) for row, mask in zip(matrix, off, strict=True)])


# --- the scenario table ----------------------------------------------------------------------------------


def _rate_fields(fit: MarketFit) -> tuple[dict[str, Any], str]:
    """The purchase-rate fields of the [market] table and the comment that states their period.

    The panel's own figures go in as measured: M per customer over the panel's span, with ``period_days`` the
    span, so the run's market section reports the same period as the panel. A span outside what
    ``period_days`` accepts (1 day to 10 years) is written per year instead. Either way the rate is capped at
    the scenario's limit of M_PER_YEAR_MAX purchases per customer per year.
    """
    span = fit.panel.span_days
    cap_in_span = M_PER_YEAR_MAX * span / YEAR_DAYS
    if PERIOD_DAYS_RANGE[0] <= span <= PERIOD_DAYS_RANGE[1]:
        m = _round(min(fit.nbd.m.value, cap_in_span))
        if m > cap_in_span:  # rounding must not carry a capped rate back over the limit
            m = _round(m - 10 ** (math.floor(math.log10(m)) - 5))  # one step down in the 6th digit
        comment = f"M is per the panel's span: {fit.nbd.m.value:.4g} category purchases per customer in {span:g} days"
        return {"category_purchases": m, "period_days": span}, comment
    M = min(fit.M_per_year.value, M_PER_YEAR_MAX)
    comment = (
        f"M is per year: {fit.nbd.m.value:.4g} category purchases per customer in the panel's {span:g} "
        f"days, times {YEAR_DAYS:g} / {span:g} (a period of {span:g} days is outside what period_days accepts)"
    )
    return {"category_purchases": _round(M), "period_days": YEAR_DAYS}, comment


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def market_table(fit: MarketFit) -> dict[str, Any]:
    """The ``[market]`` table (scenario.MarketConfig's fields; price and margin are not in a panel)."""
    rate, _ = _rate_fields(fit)
    shares = np.array([s.value for s in fit.choice.shares])
    shares = shares / shares.sum()
    # Rounded shares must still sum to 1 (the scenario checks it to 1e-6): the rounding error goes to the
    # largest brand.
    rounded = [round(float(s), 8) for s in shares]
    biggest = int(np.argmax(rounded))
    rounded[biggest] = round(1.0 - sum(r for i, r in enumerate(rounded) if i != biggest), 8)
    return {
        "market": {
            **rate,
            "category_rate_shape": _round(min(max(fit.nbd.K.value, K_RANGE[0]), K_RANGE[1])),
            "dirichlet_s": _round(min(fit.choice.S.value, S_MAX)),
            "brands": [
                {"name": name, "market_share": share} for name, share in zip(fit.panel.brands, rounded, strict=True)
            ],
        }
    }


def _ci_text(estimate: Estimate, digits: int = 3) -> str:
    low, high = estimate.ci
    return f"{estimate.value:.{digits}g} [95% CI {low:.{digits}g} to {high:.{digits}g}]"


def _population_text(nbd: NbdFit) -> str:
    low, high = Estimate(nbd.population, nbd.population_se).ci
    return f"{nbd.population:,.0f} customers [95% CI {low:,.0f} to {high:,.0f}]"


def market_toml(fit: MarketFit) -> str:
    """The table as TOML text, headed by comments that say where it came from and how sure it is."""
    import tomli_w

    panel = fit.panel
    _, rate_comment = _rate_fields(fit)
    population = (
        f"{panel.customers:,} customers (given)"
        if panel.customers is not None
        else f"about {_population_text(fit.nbd)}, estimated from a zero-truncated NBD (no --customers given)"
    )
    lines = [
        f"# masssim fit market {Path(panel.file).name}: {panel.purchases:,} purchases by {panel.buyers:,} buyers "
        f"of {len(panel.brands)} brands,",
        f"# {panel.first} to {panel.last} (a span of {panel.span_days:g} days); population {population}.",
        f"# {rate_comment}.",
        f"# Maximum likelihood: M {_ci_text(fit.M_per_year)} per year, K {_ci_text(fit.nbd.K)}, "
        f"S {_ci_text(fit.choice.S)}.",
        "# The first brand is ours. price and gross_margin_share are not in a panel: set them yourself.",
        *(f"# warning: {w}" for w in fit.warnings),
        "",
    ]
    return "\n".join(lines) + tomli_w.dumps(market_table(fit))


def goodness_rows(fit: MarketFit) -> tuple[list[str], list[list[str]]]:
    """Observed vs predicted, a row per brand and one for the category, as text for a table."""
    header = [
        "brand",
        "share (obs / fit)",
        "penetration (obs / pred)",
        "purchases per buyer (obs / pred)",
        "avg duplication (obs / pred)",
    ]
    dup_obs = average_duplication(fit.duplication.observed)
    dup_pred = average_duplication(fit.duplication.predicted)
    rows = [
        [
            name,
            f"{fit.share_observed[j]:.3f} / {fit.choice.shares[j].value:.3f}",
            f"{fit.penetration.observed[j]:.3f} / {fit.penetration.predicted[j]:.3f}",
            f"{fit.purchases_per_buyer.observed[j]:.2f} / {fit.purchases_per_buyer.predicted[j]:.2f}",
            f"{dup_obs[j]:.3f} / {dup_pred[j]:.3f}",
        ]
        for j, name in enumerate(fit.panel.brands)
    ]
    rows.append(
        [
            "(category)",
            "1 / 1",
            f"{float(fit.category_penetration.observed):.3f} / {float(fit.category_penetration.predicted):.3f}",
            f"{float(fit.category_purchases_per_buyer.observed):.2f} / "
            f"{float(fit.category_purchases_per_buyer.predicted):.2f}",
            "",
        ]
    )
    return header, rows


def estimate_lines(fit: MarketFit) -> list[str]:
    """The fitted parameters in words, with their intervals."""
    panel = fit.panel
    return [
        f"{panel.purchases:,} purchases by {panel.buyers:,} buyers of {len(panel.brands)} brands, "
        f"{panel.first} to {panel.last} ({panel.span_days:g} days)",
        f"M = {_ci_text(fit.M_per_year)} category purchases per customer per year "
        f"({_ci_text(fit.nbd.m)} in the panel's {panel.span_days:g} days)",
        f"K = {_ci_text(fit.nbd.K)} (NBD shape: the smaller, the more buying is concentrated in heavy buyers)",
        f"S = {_ci_text(fit.choice.S)} (Dirichlet: the smaller, the more each buyer sticks to one brand)",
        f"population: {panel.customers:,} customers (given)"
        if panel.customers is not None
        else f"population: about {_population_text(fit.nbd)} (estimated; not given)",
    ]


DUPLICATION_TABLE_MAX_BRANDS = 8  # a wider matrix does not fit a terminal; the averages are always printed


def duplication_rows(fit: MarketFit) -> tuple[list[str], list[list[str]]] | None:
    """The duplication of purchase, brand by brand: row j, column k = share of j's buyers who also bought k,
    observed / predicted. None above ``DUPLICATION_TABLE_MAX_BRANDS`` brands."""
    brands = fit.panel.brands
    if len(brands) > DUPLICATION_TABLE_MAX_BRANDS:
        return None
    observed, predicted = fit.duplication.observed, fit.duplication.predicted
    header = ["buyers of \\ also bought", *brands]
    rows = [
        [name, *("" if j == k else f"{observed[j, k]:.2f} / {predicted[j, k]:.2f}" for k in range(len(brands)))]
        for j, name in enumerate(brands)
    ]
    return header, rows
