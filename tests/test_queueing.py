"""The respond layer against queueing theory (Erlang C, Erlang A, Cobham's priority formula).

Statistical checks use batch means: a long run from empty, the first 5% of arrivals discarded as warm-up,
the rest cut into 30 consecutive batches by arrival order; the tolerance is the 99% Student-t half-width of
the batch means (t with 29 df). Every check also asserts that this half-width is below 10% of the theory
value, so a 10% error in the model would be rejected (the check has power). Seeds are fixed.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import simpy
from scipy import stats

from masssim.engine.responders import (
    ABANDONED,
    Discipline,
    ExponentialHandleTime,
    LognormalHandleTime,
    ResponderPool,
    always_on,
    business_hours,
    pool_summary,
)
from masssim.theory.queueing import birth_death_distribution, erlang_a, erlang_b, erlang_c

BATCHES = 30
T_99 = float(stats.t.ppf(0.995, BATCHES - 1))
WARMUP_SHARE = 0.05


def batch_ci(values: np.ndarray) -> tuple[float, float]:
    """(mean, 99% half-width) by batch means over the post-warm-up values (arrival order)."""
    kept = values[int(WARMUP_SHARE * values.shape[0]) :]
    means = np.array([b.mean() for b in np.array_split(kept.astype(np.float64), BATCHES)])
    return float(means.mean()), T_99 * float(means.std(ddof=1)) / math.sqrt(BATCHES)


def assert_agrees(name: str, values: np.ndarray, theory: float) -> None:
    mean, half = batch_ci(values)
    assert half < 0.1 * theory, f"{name}: CI half-width {half:.4g} too wide to detect a 10% error of {theory:.4g}"
    assert abs(mean - theory) <= half, f"{name}: simulated {mean:.5g} +- {half:.3g}, theory {theory:.5g}"


def simulate_mmc(
    arrival_rate: float,
    service_rate: float,
    servers: int,
    n: int,
    seed: int,
    abandonment_rate: float = 0.0,
    priority_share: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Poisson arrivals to an always-on pool with exponential handle times (and exponential patience).

    Returns (wait, waited, abandoned, priority) per arrival, in arrival order.
    """
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    discipline: Discipline = "fifo" if priority_share is None else "priority"
    pool = ResponderPool(
        env, "agents", always_on(servers), ExponentialHandleTime(1.0 / service_rate), rng, discipline=discipline
    )
    arrivals = np.cumsum(rng.exponential(1.0 / arrival_rate, n))
    patience = rng.exponential(1.0 / abandonment_rate, n) if abandonment_rate > 0 else math.inf
    priority = (rng.random(n) < priority_share).astype(np.int64) if priority_share is not None else 0
    env.process(pool.feed(arrivals, patience_s=patience, priority=priority))
    env.run()
    rec = pool.records()
    assert np.all(~np.isnan(rec.wait_s))
    abandoned = rec.abandoned
    waited = (rec.wait_s > 0) | abandoned
    return rec.wait_s, waited, abandoned, rec.priority


# ------------------------------------------------------------------------------------------------------
# Formulas
def _erlang_c_exact(a: Fraction, c: int) -> Fraction:
    """Erlang C from its defining sum, in exact rational arithmetic (independent of the recursion)."""
    head = sum((a**k / math.factorial(k) for k in range(c)), Fraction(0))
    tail = a**c / math.factorial(c) * Fraction(c) / (c - a)
    return tail / (head + tail)


def test_erlang_c_textbook_values() -> None:
    # lambda = 2, mu = 1, c = 3: P0 = 1/9, C = 4/9, Wq = C / (c mu - lambda) = 4/9.
    r = erlang_c(2.0, 1.0, 3)
    assert r["p_wait"] == pytest.approx(4 / 9, rel=1e-12)
    assert r["mean_wait"] == pytest.approx(4 / 9, rel=1e-12)
    assert r["utilisation"] == pytest.approx(2 / 3)
    # lambda = 10/h, mu = 3/h, c = 4: a = 10/3, C = 0.65772..., Wq = C / 2 hours.
    r = erlang_c(10.0, 3.0, 4)
    exact = _erlang_c_exact(Fraction(10, 3), 4)
    assert r["p_wait"] == pytest.approx(float(exact), rel=1e-12)
    assert r["p_wait"] == pytest.approx(0.6577, abs=1e-4)
    assert r["mean_wait"] == pytest.approx(float(exact) / 2.0, rel=1e-12)
    assert r["mean_queue_length"] == pytest.approx(10.0 * r["mean_wait"])


@pytest.mark.parametrize(("lam", "mu", "c"), [(2.0, 1.0, 3), (10.0, 3.0, 4), (45.0, 1.0, 50), (950.0, 1.0, 1000)])
def test_erlang_c_matches_birth_death_without_abandonment(lam: float, mu: float, c: int) -> None:
    formula = erlang_c(lam, mu, c)
    chain = erlang_a(lam, mu, 0.0, c)
    for key in ("p_wait", "mean_wait", "mean_queue_length", "utilisation"):
        assert chain[key] == pytest.approx(formula[key], rel=1e-9), key
    assert chain["p_abandon"] == 0.0


def test_erlang_b_recursion_matches_exact_and_is_stable() -> None:
    a = Fraction(7, 2)
    inv = sum((a**k / math.factorial(k) for k in range(6)), Fraction(0))
    assert erlang_b(3.5, 5) == pytest.approx(float(a**5 / math.factorial(5) / inv), rel=1e-12)
    big = erlang_c(4900.0, 1.0, 5000)  # a^c and c! overflow doubles here
    assert 0.0 < big["p_wait"] < 1.0
    assert math.isfinite(big["mean_wait"])


def test_erlang_a_sanity() -> None:
    lam, mu, theta, c = 24.0, 1.0, 0.5, 20
    r = erlang_a(lam, mu, theta, c)
    p = birth_death_distribution(lam, mu, theta, c)
    assert p.sum() == pytest.approx(1.0)
    # Rate balance: arrivals = services + abandonments.
    assert lam == pytest.approx(mu * c * r["utilisation"] + theta * r["mean_queue_length"], rel=1e-9)
    # Above 100% offered load abandonments carry at least the excess.
    assert r["p_abandon"] >= (lam - c * mu) / lam
    # Very impatient customers: the system becomes M/M/c/c and abandonment tends to Erlang B.
    assert erlang_a(lam, mu, 1e7, c)["p_abandon"] == pytest.approx(erlang_b(lam / mu, c), rel=1e-4)
    # A finite buffer: a birth-death chain on 0..c+K.
    capped = erlang_a(10.0, 1.0, 0.0, 5, max_queue=3)
    assert capped["states"] == 9
    assert 0.0 < capped["p_blocked"] < 1.0
    with pytest.raises(ValueError):
        erlang_a(10.0, 1.0, 0.0, 5)
    with pytest.raises(ValueError):
        erlang_c(10.0, 1.0, 10)


# ------------------------------------------------------------------------------------------------------
# Simulation against Erlang C: Poisson arrivals, exponential handle times, c agents always on, no abandonment.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("lam", "c", "n", "seed"),
    [(2.5, 5, 600_000, 11), (8.0, 10, 1_000_000, 12), (9.5, 10, 3_500_000, 13)],
    ids=["rho0.50", "rho0.80", "rho0.95"],
)
def test_simulation_matches_erlang_c(lam: float, c: int, n: int, seed: int) -> None:
    theory = erlang_c(lam, 1.0, c)
    wait, waited, abandoned, _ = simulate_mmc(lam, 1.0, c, n, seed)
    assert not abandoned.any()
    assert_agrees("P(wait)", waited, theory["p_wait"])
    assert_agrees("mean wait", wait, theory["mean_wait"])


# Simulation against Erlang A: exponential patience (mean 2 handle times), offered load 0.8 .. 1.5.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("lam", "n", "seed"),
    [(16.0, 800_000, 21), (19.0, 400_000, 22), (22.0, 300_000, 23), (30.0, 300_000, 24)],
    ids=["load0.80", "load0.95", "load1.10", "load1.50"],
)
def test_simulation_matches_erlang_a(lam: float, n: int, seed: int) -> None:
    c, theta = 20, 0.5
    theory = erlang_a(lam, 1.0, theta, c)
    wait, waited, abandoned, _ = simulate_mmc(lam, 1.0, c, n, seed, abandonment_rate=theta)
    assert_agrees("P(abandon)", abandoned, theory["p_abandon"])
    assert_agrees("P(wait)", waited, theory["p_wait"])
    assert_agrees("mean wait", wait, theory["mean_wait"])


# ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_priority_queue_serves_high_priority_first() -> None:
    """Two classes with the same service rate, non-preemptive priority: Cobham (1954) gives
    W_high = C / (c mu - lambda_high) and W_low = C c mu / ((c mu - lambda_high)(c mu - lambda))."""
    lam, mu, c, share = 8.0, 1.0, 10, 0.5
    wait, _, _, priority = simulate_mmc(lam, mu, c, 1_000_000, 31, priority_share=share)
    cap = c * mu
    cprob = erlang_c(lam, mu, c)["p_wait"]
    high = cprob / (cap - share * lam)
    low = cprob * cap / ((cap - share * lam) * (cap - lam))
    assert_agrees("high-priority wait", np.where(priority == 1, wait, 0.0), share * high)
    assert_agrees("low-priority wait", np.where(priority == 0, wait, 0.0), (1 - share) * low)
    assert wait[priority == 1].mean() < 0.5 * wait[priority == 0].mean()


def test_priority_order_is_fifo_within_class() -> None:
    env = simpy.Environment()
    pool = ResponderPool(env, "p", 1, ExponentialHandleTime(1.0), np.random.default_rng(0), discipline="priority")
    pool.submit(handle_s=10.0)  # occupies the only agent
    for prio in (0, 2, 1, 2, 0):
        pool.submit(priority=prio, handle_s=1.0)
    env.run()
    rec = pool.records()
    order = np.argsort(rec.start_s[1:]) + 1
    assert order.tolist() == [2, 4, 3, 1, 5]


# ------------------------------------------------------------------------------------------------------
def test_business_hours_schedule() -> None:
    s = business_hours(4, 9, 17)
    assert s.shape == (168,)
    assert s[9:17].tolist() == [4] * 8
    assert s[8] == 0 and s[17] == 0
    assert s[5 * 24 :].sum() == 0  # weekend closed
    assert s.sum() == 4 * 8 * 5
    # A pool at UTC+2 opens 9:00 local = 7:00 on a UTC reference clock.
    shifted = business_hours(1, 9, 17, utc_offset_hours=2.0)
    assert np.flatnonzero(shifted[:24]).tolist() == list(range(7, 15))
    # A night shift opening Friday 22:00 runs into Saturday; one opening Sunday 22:00 wraps into Monday.
    night = business_hours(1, 22, 6, days=(4, 6))
    assert np.flatnonzero(night).tolist() == sorted(
        [*range(4 * 24 + 22, 5 * 24 + 6), *range(6 * 24 + 22, 168), *range(6)]
    )
    assert always_on(3).tolist() == [3] * 168


def test_shift_schedule_nothing_starts_while_closed() -> None:
    rng = np.random.default_rng(41)
    env = simpy.Environment()
    schedule = business_hours(3, 9, 17)
    pool = ResponderPool(env, "humans", schedule, LognormalHandleTime(600.0, 0.8), rng)
    horizon = 2 * 7 * 24 * 3600.0
    arrivals = np.sort(rng.uniform(0.0, horizon, 4000))  # around the clock, ~12 per hour
    env.process(pool.feed(arrivals))
    env.run(until=horizon + 3 * 24 * 3600.0)
    rec = pool.records()
    started = ~np.isnan(rec.start_s)
    hours = (rec.start_s[started] // 3600).astype(np.int64) % 168
    assert started.sum() > 1000
    assert np.all(schedule[hours] > 0), "a conversation started while the pool was closed"
    # The night's queue is picked up at opening.
    assert np.any(np.isclose(rec.start_s[started] % 86_400.0, 9 * 3600.0))
    # Agents finish the conversation in hand after closing time.
    end_hours = (rec.end_s[started] // 3600).astype(np.int64) % 168
    assert np.any(schedule[end_hours] == 0)
    # Never more conversations in service than agents on duty at any start.
    starts, ends = rec.start_s[started], rec.end_s[started]
    order = np.argsort(starts)
    starts, ends = starts[order], ends[order]
    sorted_ends = np.sort(ends)
    in_service = np.arange(1, starts.shape[0] + 1) - np.searchsorted(sorted_ends, starts, side="right")
    assert np.all(in_service <= schedule[(starts // 3600).astype(np.int64) % 168])


def test_capacity_drop_lets_agents_finish() -> None:
    schedule = always_on(2)
    schedule[1:] = 1  # two agents in hour 0, one from hour 1
    env = simpy.Environment()
    pool = ResponderPool(env, "p", schedule, ExponentialHandleTime(1.0), np.random.default_rng(0))
    for _ in range(4):
        pool.submit(handle_s=4000.0)
    env.run(until=20_000.0)
    rec = pool.records()
    # At 3600 s capacity drops to 1: both agents finish their conversations (at 4000 s), then one goes on.
    assert rec.start_s.tolist() == [0.0, 0.0, 4000.0, 8000.0]
    assert rec.end_s.tolist() == [4000.0, 4000.0, 8000.0, 12000.0]


def test_abandoned_conversations_never_start() -> None:
    rng = np.random.default_rng(51)
    env = simpy.Environment()
    pool = ResponderPool(env, "p", 5, LognormalHandleTime(300.0, 0.5), rng)
    n = 20_000
    arrivals = np.cumsum(rng.exponential(60.0, n))  # offered load ~5.7 Erlangs on 5 agents
    patience = rng.exponential(120.0, n)
    env.process(pool.feed(arrivals, patience_s=patience))
    env.run()
    rec = pool.records()
    ab = rec.abandoned
    assert 0.05 < ab.mean() < 0.9
    assert np.all(np.isnan(rec.start_s[ab]))
    np.testing.assert_allclose(rec.end_s[ab], rec.arrival_s[ab] + rec.patience_s[ab])
    served = ~ab
    assert np.all(rec.start_s[served] <= rec.arrival_s[served] + rec.patience_s[served])
    assert np.all(rec.status[ab] == ABANDONED)
    summary = pool_summary(rec)
    assert summary["p_abandon"] == pytest.approx(ab.mean())


def test_handle_time_per_intent_and_determinism() -> None:
    def run(seed: int) -> np.ndarray:
        env = simpy.Environment()
        handle = {"complaint": LognormalHandleTime(900.0, 0.7), "default": LognormalHandleTime(120.0, 0.7)}
        pool = ResponderPool(env, "p", 10_000, handle, np.random.default_rng(seed), languages={"en", "fr"})
        intents = ["complaint", "praise"] * 5000
        env.process(pool.feed(np.arange(10_000, dtype=float), intent=intents, language="fr"))
        env.run()
        rec = pool.records()
        return rec.end_s - rec.start_s

    durations = run(61)
    np.testing.assert_array_equal(durations, run(61))
    # Medians: the share below the configured median is Binomial(5000, 1/2); 4 sd is 0.028.
    assert abs((durations[0::2] < 900.0).mean() - 0.5) < 0.028
    assert abs((durations[1::2] < 120.0).mean() - 0.5) < 0.028


def test_submit_event_and_languages() -> None:
    env = simpy.Environment()
    pool = ResponderPool(env, "bots", 1, ExponentialHandleTime(1.0), np.random.default_rng(0), languages=["en"])
    assert pool.handles("en") and not pool.handles("te")
    with pytest.raises(ValueError):
        pool.submit(language="te")
    finished: list[float] = []

    def customer(env: simpy.Environment):  # type: ignore[no-untyped-def]
        yield pool.submit(handle_s=5.0)
        finished.append(env.now)

    env.process(customer(env))
    env.run()
    assert finished == [5.0]
