"""From a run's records to its figures and its verdict.

Percentiles are nearest-rank (the smallest recorded value with at least p% of the values at or below it),
so a reported p99 is a latency some query really had. Latency is measured from the *scheduled* time
(server) or the issue time (single-stream, offline: the time the batch was available), to the answer;
failed queries have no latency and are counted apart.

Verdicts (first that applies):

1. **FAIL** — more failed queries than ``--max-errors`` (timeouts, connection errors, bad answers), or the
   run was aborted by the backlog guard (the target cannot keep up).
2. **INVALID** — the generator could not keep its schedule (p99 issue lateness over ``--max-lateness``),
   or the measured part is shorter than the minimum duration or has fewer than the minimum queries, or the
   sample pool ran out. An INVALID run says nothing about the target: fix the set-up and rerun.
3. **FAIL** — the chosen latency percentile is over the bound.
4. **PASS** otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from masssim.bench.config import BenchConfig
from masssim.bench.runner import OK, STATUS_NAMES, RunOutcome

PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9)
PASS, FAIL, INVALID = "PASS", "FAIL", "INVALID"


def pkey(p: float) -> str:
    """``p50``, ``p99``, ``p99.9``."""
    return f"p{p:g}"


def nearest_rank(values: np.ndarray, p: float) -> float | None:
    if values.size == 0:
        return None
    ordered = np.sort(values)
    rank = max(1, math.ceil(p / 100.0 * ordered.size))
    return float(ordered[rank - 1])


def percentiles(values: np.ndarray, ps: tuple[float, ...] = PERCENTILES) -> dict[str, Any]:
    out: dict[str, Any] = {pkey(p): nearest_rank(values, p) for p in ps}
    out["mean"] = float(values.mean()) if values.size else None
    out["max"] = float(values.max()) if values.size else None
    out["count"] = int(values.size)
    return out


def _histogram(values: np.ndarray) -> dict[str, list[float]]:
    """Log-spaced latency histogram (seconds): edges and counts."""
    if values.size == 0:
        return {"edges_s": [], "counts": []}
    low = max(float(values.min()), 1e-5)
    high = max(float(values.max()), low * 1.01)
    edges = np.geomspace(low, high * 1.0001, 41)
    counts, _ = np.histogram(np.clip(values, low, None), bins=edges)
    return {"edges_s": edges.tolist(), "counts": counts.astype(int).tolist()}


def _timeline(out: RunOutcome, measured: np.ndarray, latency: np.ndarray) -> dict[str, list[Any]]:
    """Per time bin (by completion time): answers per second, p50/p99 latency, max issue lateness."""
    rec = out.records
    done = measured & np.isfinite(rec.completed_s)
    if not done.any():
        return {"t_s": [], "answers_per_s": [], "samples_per_s": [], "p50_s": [], "p99_s": [], "late_max_s": []}
    start = float(np.nanmin(rec.scheduled_s[measured]))
    end = float(np.nanmax(rec.completed_s[done]))
    span = max(end - start, 1e-3)
    width = _nice(span / 60.0)
    nbins = max(1, math.ceil(span / width))
    ok = done & (rec.status == OK)
    completed = np.where(done, rec.completed_s, start)
    which = np.clip(((completed - start) // width).astype(np.int64), 0, nbins - 1)
    lat_full = np.full(len(rec), np.nan)
    lat_full[ok] = latency
    late = rec.issued_s - rec.scheduled_s
    issued_ok = measured & np.isfinite(rec.issued_s)
    issue_bin = ((np.where(issued_ok, rec.issued_s, start) - start) // width).astype(np.int64)
    t, per_s, samples, p50, p99, late_max = [], [], [], [], [], []
    for b in range(nbins):
        in_bin = ok & (which == b)
        t.append(start + (b + 0.5) * width)
        per_s.append(int(in_bin.sum()) / width)
        samples.append(float(rec.size[in_bin].sum()) / width)
        lat = lat_full[in_bin]
        p50.append(nearest_rank(lat, 50.0))
        p99.append(nearest_rank(lat, 99.0))
        issued_bin = issued_ok & (issue_bin == b)
        late_max.append(float(late[issued_bin].max()) if issued_bin.any() else None)
    return {
        "t_s": t,
        "answers_per_s": per_s,
        "samples_per_s": samples,
        "p50_s": p50,
        "p99_s": p99,
        "late_max_s": late_max,
    }


def _nice(x: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= x."""
    exp = math.floor(math.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10**exp >= x:
            return m * 10**exp
    return 10.0 ** (exp + 1)  # pragma: no cover


def summarize(out: RunOutcome, cfg: BenchConfig) -> dict[str, Any]:
    """The figures of one run and its verdict with every reason that applies."""
    rec = out.records
    measured = ~rec.warmup
    issued = measured & np.isfinite(rec.issued_s)
    ok = measured & (rec.status == OK)
    latency = (rec.completed_s - rec.scheduled_s)[ok]
    service_latency = (rec.completed_s - rec.issued_s)[ok]
    open_loop = out.scenario == "server"
    lateness = (rec.issued_s - rec.scheduled_s)[issued] if open_loop else np.zeros(0)
    counts = np.bincount(rec.status[measured].astype(np.int64), minlength=len(STATUS_NAMES))
    failed = {name: int(counts[k]) for k, name in enumerate(STATUS_NAMES) if name not in ("ok", "not_issued")}
    n_failed = sum(failed.values())
    if measured.any():
        first = float(np.nanmin(rec.scheduled_s[measured]))
        if out.measure_start_s is not None:
            first = min(first, out.measure_start_s)
        ends = rec.completed_s[measured & np.isfinite(rec.completed_s)]
        measured_duration = float(ends.max()) - first if ends.size else 0.0
    else:
        first, measured_duration = 0.0, 0.0
    ok_samples = int(rec.size[ok].sum())
    throughput = int(ok.sum()) / measured_duration if measured_duration > 0 else 0.0
    issue_times = np.sort(rec.issued_s[issued])
    achieved_issue_rate = (
        (issue_times.size - 1) / float(issue_times[-1] - issue_times[0])
        if issue_times.size > 1 and issue_times[-1] > issue_times[0]
        else 0.0
    )
    lat = percentiles(latency)
    bound = cfg.bound_s
    chosen = nearest_rank(latency, cfg.percentile)
    min_count = cfg.min_queries
    count_measured = int(ok_samples if out.scenario == "offline" else int(measured.sum()))
    reasons: list[str] = []
    fail_now = False
    if n_failed > cfg.max_errors:
        fail_now = True
        parts = ", ".join(f"{n} {kind}" for kind, n in failed.items() if n)
        example = "; ".join(f"{k}: {v}" for k, v in out.failure_examples.items())
        reasons.append(f"{n_failed} of {int(measured.sum())} measured queries failed ({parts}) - e.g. {example}")
    aborted = [s for s in out.stopped if s.startswith("aborted")]
    if aborted:
        fail_now = True
        reasons.extend(aborted)
    invalid: list[str] = []
    late_p99 = nearest_rank(lateness, 99.0)
    if open_loop and late_p99 is not None and late_p99 > cfg.max_lateness_s:
        invalid.append(
            f"the generator could not keep the schedule: p99 issue lateness {late_p99 * 1e3:.1f} ms > "
            f"{cfg.max_lateness_s * 1e3:g} ms (--max-lateness)"
        )
    if measured_duration < cfg.duration_s:
        invalid.append(f"measured {measured_duration:.2f} s < minimum duration {cfg.duration_s:g} s")
    unit = "samples" if out.scenario == "offline" else "queries"
    if count_measured < min_count:
        invalid.append(f"{count_measured} measured {unit} answered < minimum {min_count} (--min-queries)")
    invalid.extend(s for s in out.stopped if "sample pool" in s or "maximum duration" in s)
    if fail_now:
        verdict = FAIL
        reasons.extend(invalid)
    elif invalid:
        verdict = INVALID
        reasons.extend(invalid)
    elif bound is not None and chosen is not None and chosen > bound:
        verdict = FAIL
        reasons.append(f"{pkey(cfg.percentile)} latency {_ms(chosen)} ms > bound {bound * 1e3:g} ms")
    else:
        verdict = PASS
        if bound is not None and chosen is not None:
            reasons.append(f"{pkey(cfg.percentile)} latency {_ms(chosen)} ms <= bound {bound * 1e3:g} ms")
    schedule = out.schedule
    result: dict[str, Any] = {
        "scenario": out.scenario,
        "verdict": verdict,
        "reasons": reasons,
        "started_at": out.started_at,
        "wall_s": out.wall_s,
        "target_rate_qps": out.rate,
        "scheduled_rate_qps": schedule.realised_rate if schedule is not None else None,
        "achieved_issue_rate_qps": achieved_issue_rate if open_loop else None,
        "throughput_qps": throughput,
        "samples_per_s": ok_samples / measured_duration if measured_duration > 0 else 0.0,
        "measured_duration_s": measured_duration,
        "queries": {
            "total": len(rec),
            "warmup": int(rec.warmup.sum()),
            "measured": int(measured.sum()),
            "answered": int(ok.sum()),
            "failed": failed,
            "not_issued": int(counts[STATUS_NAMES.index("not_issued")]),
            "samples_answered": ok_samples,
            "samples_per_query": cfg.query_size,
        },
        "failure_examples": dict(out.failure_examples),
        "latency_bound_s": bound,
        "percentile": cfg.percentile,
        "latency_s": lat,
        "service_latency_s": percentiles(service_latency),
        "issue_lateness_s": percentiles(lateness) if open_loop else None,
        "classifier_time_s": percentiles(rec.service_s[ok & np.isfinite(rec.service_s)]),
        "latency_histogram": _histogram(latency),
        "timeline": _timeline(out, measured, latency),
        "stopped": list(out.stopped),
    }
    if out.scenario == "offline":
        result["offline"] = {
            "planned_samples": out.planned_samples,
            "warmup_samples_per_s": out.warmup_throughput,
            "batch_size": cfg.query_size,
            "concurrency": cfg.concurrency,
        }
    return result


def _ms(seconds: float) -> str:
    """A latency in milliseconds with enough digits to tell it from a bound it is compared with (10.04 ms is
    over a 10 ms bound and must not print as 10.0)."""
    return f"{seconds * 1e3:.4g}" if seconds * 1e3 < 1000 else f"{seconds * 1e3:,.0f}"
