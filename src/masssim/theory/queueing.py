"""Queueing theory the respond layer is validated against: Erlang C (M/M/c) and Erlang A (M/M/c+M).

Both are steady-state results for Poisson arrivals at rate ``arrival_rate`` (lambda), exponential handle
times at rate ``service_rate`` (mu) and ``servers`` identical agents (c), always on. Rates are per unit of
time; waits come back in the same unit (e.g. rates per hour give waits in hours).

* **Erlang C** (Erlang 1917, "Solution of some problems in the theory of probabilities of significance in
  automatic telephone exchanges"): no abandonment, infinite queue, FIFO. With offered load a = lambda/mu and
  utilisation rho = a/c < 1, the probability of waiting is C(c, a) = B / (1 - rho (1 - B)) where B is
  Erlang's loss formula B(c, a), and the mean wait of all arrivals is Wq = C / (c mu - lambda). B is computed
  by the recursion B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)), which never forms a^c or c! and so stays
  accurate for thousands of servers.
* **Erlang A** (Palm 1943, "Intensitätsschwankungen im Fernsprechverkehr"; Garnett, Mandelbaum & Reiman
  2002, "Designing a call center with impatient customers", M&SOM 4(3)): each waiting customer abandons
  after an exponential patience with rate theta. The number in system is a birth-death chain with birth
  rate lambda and death rate min(n, c) mu + max(n - c, 0) theta; it is solved here exactly (in log space,
  truncated where the remaining tail mass is below 1e-12), not by the closed forms in incomplete gamma
  functions. With PASTA (Poisson arrivals see time averages, Wolff 1982) and rate balance:
  P(wait) = P(N >= c), P(abandon) = theta E[(N - c)+] / lambda, and the mean time in queue of all arrivals
  (served ones until they start, abandoning ones until they leave) is E[(N - c)+] / lambda by Little's law.
"""

from __future__ import annotations

import math

import numpy as np

TAIL_TOLERANCE = 1e-12
MAX_STATES = 50_000_000


def erlang_b(offered_load: float, servers: int) -> float:
    """Erlang's loss formula B(c, a) by the stable recursion (Erlang 1917)."""
    if servers < 0 or offered_load < 0:
        raise ValueError("servers and offered_load must be non-negative")
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b


def erlang_c(arrival_rate: float, service_rate: float, servers: int) -> dict[str, float]:
    """Steady state of M/M/c (Erlang C). Requires utilisation lambda / (c mu) < 1.

    Returns ``p_wait`` (probability an arrival waits, C(c, a)), ``mean_wait`` (Wq over all arrivals),
    ``mean_wait_if_waiting`` (1 / (c mu - lambda)), ``mean_queue_length`` (Lq = lambda Wq), ``utilisation``
    (rho) and ``offered_load`` (a, in Erlangs).
    """
    _check_rates(arrival_rate, service_rate, servers)
    a = arrival_rate / service_rate
    rho = a / servers
    if rho >= 1.0:
        raise ValueError(f"Erlang C needs utilisation < 1; got {rho:.4g} (the queue grows without bound)")
    b = erlang_b(a, servers)
    c_prob = b / (1.0 - rho * (1.0 - b))
    slack = servers * service_rate - arrival_rate
    wq = c_prob / slack
    return {
        "p_wait": c_prob,
        "mean_wait": wq,
        "mean_wait_if_waiting": 1.0 / slack,
        "mean_queue_length": arrival_rate * wq,
        "utilisation": rho,
        "offered_load": a,
    }


def erlang_c_service_level(arrival_rate: float, service_rate: float, servers: int, threshold: float) -> float:
    """P(wait <= threshold) in M/M/c: 1 - C(c, a) exp(-(c mu - lambda) t) (Erlang 1917)."""
    r = erlang_c(arrival_rate, service_rate, servers)
    return 1.0 - r["p_wait"] * math.exp(-(servers * service_rate - arrival_rate) * threshold)


def birth_death_distribution(
    arrival_rate: float,
    service_rate: float,
    abandonment_rate: float,
    servers: int,
    max_queue: int | None = None,
) -> np.ndarray:
    """Stationary distribution p[0..c+K] of the number in an M/M/c+M system.

    Death rate in state n: min(n, c) mu + max(n - c, 0) theta. With ``max_queue`` = K the chain stops at
    c + K (arrivals finding it full are blocked); without it the chain is truncated at the first state past
    which the remaining mass is provably below ``TAIL_TOLERANCE`` (geometric bound once the birth/death
    ratio falls below one and keeps falling).
    """
    _check_rates(arrival_rate, service_rate, servers)
    if abandonment_rate < 0:
        raise ValueError("abandonment_rate must be non-negative")
    if max_queue is not None and max_queue < 0:
        raise ValueError("max_queue must be non-negative")
    lam, mu, theta, c = float(arrival_rate), float(service_rate), float(abandonment_rate), int(servers)
    if max_queue is None and theta == 0.0 and lam >= c * mu:
        raise ValueError("without abandonment and with utilisation >= 1 the queue is unbounded; set max_queue")
    if lam == 0.0:
        return np.array([1.0])

    def death(n: int) -> float:
        return min(n, c) * mu + max(n - c, 0) * theta

    log_lam = math.log(lam)
    logs = [0.0]  # unnormalised log p_n
    log_total = 0.0
    n = 0
    limit = (c + max_queue) if max_queue is not None else MAX_STATES
    log_tol = math.log(TAIL_TOLERANCE)
    while n < limit:
        n += 1
        logs.append(logs[-1] + log_lam - math.log(death(n)))
        log_total = float(np.logaddexp(log_total, logs[-1]))
        if max_queue is None and n >= c:
            ratio = lam / death(n + 1)  # ratios lambda / death(k) are non-increasing for k > n
            if ratio < 1.0 and logs[-1] + math.log(ratio) - math.log1p(-ratio) - log_total < log_tol:
                break
    else:
        if max_queue is None:
            raise ValueError("the birth-death chain did not converge within MAX_STATES states")
    arr = np.asarray(logs)
    p = np.exp(arr - arr.max())
    return p / p.sum()


def erlang_a(
    arrival_rate: float,
    service_rate: float,
    abandonment_rate: float,
    servers: int,
    max_queue: int | None = None,
) -> dict[str, float]:
    """Steady state of M/M/c+M (Erlang A; Palm 1943, Garnett, Mandelbaum & Reiman 2002), solved exactly.

    ``abandonment_rate`` is theta = 1 / mean patience; theta = 0 gives Erlang C (or M/M/c/c+K with
    ``max_queue`` = K). Returns ``p_wait`` (an arrival finds every agent busy and joins the queue),
    ``p_abandon`` (an arrival leaves before being served), ``p_blocked`` (finds the queue full; 0 without
    ``max_queue``), ``mean_wait`` (time in queue averaged over all arrivals, abandoners counted until they
    leave, blocked ones as 0), ``mean_queue_length``, ``utilisation`` (mean busy agents / c),
    ``offered_load`` and ``states`` (size of the solved chain).
    """
    p = birth_death_distribution(arrival_rate, service_rate, abandonment_rate, servers, max_queue)
    n = np.arange(p.shape[0])
    c = int(servers)
    queue = np.maximum(n - c, 0)
    lq = float(np.dot(p, queue))
    p_blocked = float(p[-1]) if max_queue is not None else 0.0
    p_wait = float(p[c:].sum()) - p_blocked if p.shape[0] > c else 0.0
    busy = float(np.dot(p, np.minimum(n, c)))
    lam = float(arrival_rate)
    return {
        "p_wait": p_wait,
        "p_abandon": float(abandonment_rate) * lq / lam if lam > 0 else 0.0,
        "p_blocked": p_blocked,
        "mean_wait": lq / lam if lam > 0 else 0.0,
        "mean_queue_length": lq,
        "utilisation": busy / c,
        "offered_load": lam / float(service_rate),
        "states": float(p.shape[0]),
    }


def _check_rates(arrival_rate: float, service_rate: float, servers: int) -> None:
    if arrival_rate < 0 or not math.isfinite(arrival_rate):
        raise ValueError("arrival_rate must be finite and non-negative")
    if service_rate <= 0 or not math.isfinite(service_rate):
        raise ValueError("service_rate must be finite and positive")
    if int(servers) != servers or servers < 1:
        raise ValueError("servers must be a positive integer")
