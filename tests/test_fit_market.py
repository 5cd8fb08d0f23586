"""``masssim fit market`` by round trip: simulate a panel from known parameters, export it, fit, recover.

The panel is bought as the engine buys: the population (masssim.model.population) draws each customer's Gamma
category rate and Dirichlet brand probabilities; in the panel's span a customer makes Poisson(lambda_i T)
category purchases, each picking a brand from p_i (the organic occasion stream's equations, with every brand
kept), on a day drawn uniformly in the span. Randomness comes from the project's streams.

Tolerances: each estimate must be within Z = 4 of its own standard errors of the truth. Those standard errors
come from the observed information, so they shrink as 1/sqrt(sample size); a separate test checks them
against the exact sampling variance of the mean (m) and against the coverage of their intervals over
independent panels, so that the round trip cannot pass on inflated errors.
"""

from __future__ import annotations

import csv
import math
import tomllib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import masssim
from masssim.config.schema import ChannelsConfig, MarketConfig, PopulationConfig
from masssim.fit.market import YEAR_DAYS, Estimate, Panel, fit_market, market_toml, read_panel
from masssim.model import streams
from masssim.model.population import generate_population

Z = 4.0
DAYS = 91  # a quarter, as the published Dirichlet tables
TRUE = {"M": 6.0, "K": 0.8, "S": 1.2}
SHARES = {"ours": 0.2, "rival_a": 0.3, "rival_b": 0.2, "rival_c": 0.1, "other_brands": 0.2}


def simulate_counts(customers: int, seed: int, *, M: float = TRUE["M"], K: float = TRUE["K"], S: float = TRUE["S"]):
    market = MarketConfig(
        category_purchases_per_year=M,
        category_rate_shape=K,
        dirichlet_s=S,
        brands=[{"name": name, "market_share": share} for name, share in SHARES.items()],
    )
    cfg = PopulationConfig(customers=customers, category_rate_observable_loading=0.0)
    root = streams.root_sequence(seed)
    replication = streams.replication_sequence(root, 0)
    population = generate_population(
        cfg,
        market,
        ChannelsConfig.model_validate({}).by_name(),
        streams.component_sequence(replication, streams.Component.POPULATION),
    )
    rng = streams.generator(streams.component_sequence(replication, streams.Component.OCCASIONS))
    n = rng.poisson(population.category_rate.astype(np.float64) * DAYS / YEAR_DAYS)
    p = population.brand_prob.astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    return rng.multinomial(n, p), rng


def write_panel(path: Path, counts: np.ndarray, rng: np.random.Generator) -> Path:
    """One row per purchase; customers who bought nothing do not appear, as in a real panel."""
    start = date(2024, 1, 1)
    names = list(SHARES)
    customer, brand = np.nonzero(counts)
    repeats = counts[customer, brand]
    customer, brand = np.repeat(customer, repeats), np.repeat(brand, repeats)
    day = rng.integers(DAYS, size=customer.shape[0])
    day[:2] = (0, DAYS - 1)  # the panel spans the whole quarter
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "brand", "date", "store"])  # an extra column is ignored
        for c, b, d in zip(customer.tolist(), brand.tolist(), day.tolist(), strict=True):
            writer.writerow([f"cust{c:06d}", names[b], (start + timedelta(days=d)).isoformat(), "x"])
    return path


def within(estimate, truth: float) -> bool:
    return abs(estimate.value - truth) <= Z * estimate.se


@pytest.fixture(scope="module")
def panel_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    counts, rng = simulate_counts(40_000, seed=14)
    return write_panel(tmp_path_factory.mktemp("fit") / "panel.csv", counts, rng)


def test_round_trip_with_population_size(panel_file: Path) -> None:
    fit = fit_market(read_panel(panel_file, ours="ours", customers=40_000))
    assert fit.panel.brands[0] == "ours"
    assert fit.panel.span_days == DAYS
    assert within(fit.M_per_year, TRUE["M"]), fit.M_per_year
    assert within(fit.nbd.K, TRUE["K"]), fit.nbd.K
    assert within(fit.choice.S, TRUE["S"]), fit.choice.S
    for name, estimate in zip(fit.panel.brands, fit.choice.shares, strict=True):
        assert within(estimate, SHARES[name]), (name, estimate)
    assert not fit.warnings
    # m's error is the sample mean's: sd(n) / sqrt(N), sd^2 = m (1 + m / K) under the NBD (exact, not fitted)
    m = TRUE["M"] * DAYS / YEAR_DAYS
    assert fit.nbd.m.se == pytest.approx(math.sqrt(m * (1 + m / TRUE["K"]) / 40_000), rel=0.1)


def test_round_trip_zero_truncated(panel_file: Path) -> None:
    """Without the population size: the zero-truncated NBD still recovers M and K, with wider intervals."""
    given = fit_market(read_panel(panel_file, customers=40_000))
    fit = fit_market(read_panel(panel_file))
    assert fit.nbd.population_estimated
    assert within(fit.M_per_year, TRUE["M"]), fit.M_per_year
    assert within(fit.nbd.K, TRUE["K"]), fit.nbd.K
    assert fit.nbd.K.se > 1.5 * given.nbd.K.se  # honest: knowing N is worth a lot
    assert any("population size was not given" in w for w in fit.warnings)
    # the estimated population (buyers / (1 - P(0))) is the truth within 4 of its delta-method errors
    assert abs(fit.nbd.population - 40_000) <= Z * fit.nbd.population_se, (fit.nbd.population, fit.nbd.population_se)


def test_goodness_of_fit_matches_the_panel(panel_file: Path) -> None:
    """At the fitted parameters the Dirichlet predicts the panel's own penetrations, purchase frequencies
    and duplications within their sampling error (binomial for shares of customers, the CLT for means)."""
    fit = fit_market(read_panel(panel_file, customers=40_000))
    N = 40_000
    pen = fit.penetration
    assert np.all(np.abs(pen.observed - pen.predicted) <= Z * np.sqrt(pen.predicted * (1 - pen.predicted) / N))
    buyers = pen.observed * N
    dup = fit.duplication
    se_dup = np.sqrt(dup.predicted * (1 - dup.predicted) / buyers[:, None])
    assert np.all(np.abs(dup.observed - dup.predicted) <= Z * se_dup + 1e-12)
    # purchases per buyer: a mean over the brand's buyers, whose standard error is the sample sd of their
    # counts over sqrt(buyers) (the CLT)
    counts = fit.panel.counts.astype(np.float64)
    bought = counts > 0
    se_w = np.array([counts[bought[:, j], j].std(ddof=1) for j in range(counts.shape[1])]) / np.sqrt(buyers)
    w = fit.purchases_per_buyer
    assert np.all(np.abs(w.observed - w.predicted) <= Z * se_w)


def test_table_is_a_valid_market_section(panel_file: Path, tmp_path: Path) -> None:
    fit = fit_market(read_panel(panel_file, ours="rival_c", customers=40_000))
    text = market_toml(fit)
    assert "91 days" in text and "per the panel's span" in text
    data = tomllib.loads(text)
    scenario = masssim.scenario_from_dict({"name": "fitted", **data})  # every field is MarketConfig's
    assert scenario.market.brands[0].name == "rival_c"
    assert scenario.market.period_days == pytest.approx(fit.panel.span_days, rel=1e-5)
    assert scenario.market.category_purchases == pytest.approx(fit.nbd.m.value, rel=1e-5)
    assert scenario.market.category_purchases_per_year == pytest.approx(fit.M_per_year.value, rel=1e-5)
    assert scenario.market.dirichlet_s == pytest.approx(fit.choice.S.value, rel=1e-5)


def test_rate_is_per_year_over_the_stated_span(panel_file: Path) -> None:
    """The same purchases over a span stated twice as long are half the rate per year (K, S unchanged)."""
    quarter = fit_market(read_panel(panel_file, customers=40_000))
    half_year = fit_market(read_panel(panel_file, customers=40_000, span_days=2 * DAYS))
    assert half_year.M_per_year.value == pytest.approx(quarter.M_per_year.value / 2, rel=1e-9)
    assert half_year.nbd.K.value == pytest.approx(quarter.nbd.K.value, rel=1e-9)
    assert "182 days" in market_toml(half_year)


@pytest.mark.slow
def test_intervals_cover_the_truth() -> None:
    """Over 40 independent small panels (3,000 customers), each 95% interval of M, K and S (population size
    given) and of the population size (not given: zero-truncated) covers the truth at least as often as true
    95% intervals would in all but 0.2% of such experiments (a binomial quantile). Intervals that were too
    narrow (or centred wrong) fail."""
    runs = 40
    truth = {**TRUE, "N": 3_000}
    covered = dict.fromkeys(truth, 0)
    for seed in range(runs):
        counts, _ = simulate_counts(3_000, seed=1_000 + seed)
        buyers = counts[counts.sum(axis=1) > 0]
        fit = fit_market(Panel("sim", list(SHARES), buyers, date(2024, 1, 1), date(2024, 3, 31), DAYS, 3_000))
        truncated = fit_market(Panel("sim", list(SHARES), buyers, date(2024, 1, 1), date(2024, 3, 31), DAYS, None))
        population = Estimate(truncated.nbd.population, truncated.nbd.population_se)
        for name, estimate in (("M", fit.M_per_year), ("K", fit.nbd.K), ("S", fit.choice.S), ("N", population)):
            low, high = estimate.ci
            covered[name] += low <= truth[name] <= high
    floor = int(stats.binom.ppf(0.002, runs, 0.95))  # fewer happens with probability about 0.2% at 95%
    assert all(count >= floor for count in covered.values()), covered


def test_values_beyond_the_scenario_range_are_capped_with_a_warning() -> None:
    """Two purchases a day each (730 a year) is beyond market.category_purchases_per_year's 365: the table
    is capped, says so, and still loads."""
    counts = np.array([[2, 1], [1, 1], [0, 2], [1, 2]])
    panel = Panel("daily.csv", ["a", "b"], counts, date(2024, 1, 1), date(2024, 1, 1), 1.0, 4)
    fit = fit_market(panel)
    assert any("above the scenario's limit" in w for w in fit.warnings)
    text = market_toml(fit)
    data = tomllib.loads(text)
    # A one-day panel: 365 a year is 365 / 365.25 purchases in its one day.
    assert data["market"]["period_days"] == 1.0
    assert data["market"]["category_purchases"] == pytest.approx(365.0 / 365.25, rel=1e-5)
    masssim.scenario_from_dict({"name": "x", **data})
