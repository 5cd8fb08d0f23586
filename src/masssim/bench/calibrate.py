"""Calibration of the simulator's classification core: service time ``a_s + b_s * batch`` per replica.

``masssim bench --scenario offline --calibrate core.json`` sends batches of several sizes, one at a time
(one replica, nothing queued), records each batch's service time and fits ``a_s`` and ``b_s`` by least
squares over every batch (not over per-size means), reporting R². For a ``python:`` target the service time
is the classifier's own wall time in its worker; for an HTTP target it is the round trip (what a replica
behind that URL costs the pipeline). If the fitted intercept is negative it is set to 0 and the slope is
refitted through the origin.

The file (JSON, or TOML when its name ends in ``.toml``) holds ``a_s`` and ``b_s`` (required, seconds,
>= 0), ``replicas`` and ``batch_size`` (optional whole numbers >= 1) and, for the reader, the fit's ``r2``,
the points and what was measured. A scenario's ``[inbound.core]`` uses it with ``calibration = "core.json"``
(path relative to the scenario file): its values replace the defaults, fields set in the scenario win.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from masssim.bench.corpus import Corpus
from masssim.bench.targets import Target, TargetFailure

# The file format (and its reader, which scenarios use) is configuration: masssim.config.calibration.
from masssim.config.calibration import FORMAT, VERSION
from masssim.config.schema import drop_none
from masssim.reporting.results import atomic_write_text, dumps_json


def fit_service_model(batch: np.ndarray, service_s: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``service = a + b * batch``; returns (a, b, R²). Intercept clamped at 0."""
    x = np.asarray(batch, dtype=np.float64)
    y = np.asarray(service_s, dtype=np.float64)
    if x.size < 2 or np.unique(x).size < 2:
        raise ValueError("need at least two distinct batch sizes")
    design = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    if a < 0:
        a, b = 0.0, float(x @ y / (x @ x))
    b = max(float(b), 0.0)
    residual = y - (a + b * x)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else 1.0
    return float(a), b, r2


async def measure(
    target: Target,
    corpus: Corpus,
    batches: tuple[int, ...],
    *,
    seconds_per_size: float,
    warmup_s: float,
    rng: np.random.Generator,
    min_batches: int = 5,
    max_batches: int = 2000,
) -> dict[str, Any]:
    """Time batches of each size, one at a time; returns the points, the fit and the failures."""
    sizes = sorted(set(batches))
    xs: list[int] = []
    ys: list[float] = []
    failures: dict[str, int] = {}
    examples: dict[str, str] = {}
    points = []

    async def one(size: int) -> float | None:
        idx = rng.integers(0, len(corpus), size=size)
        texts = [corpus.texts[j] for j in idx]
        start = time.perf_counter()
        try:
            reply = await target.classify(texts)
        except TargetFailure as failure:
            failures[failure.kind] = failures.get(failure.kind, 0) + 1
            examples.setdefault(failure.kind, failure.detail)
            return None
        elapsed = time.perf_counter() - start
        return reply.service_s if reply.service_s is not None else elapsed

    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end and not failures:
        await one(sizes[len(sizes) // 2])
    for size in sizes:
        if failures:
            break
        times: list[float] = []
        end = time.perf_counter() + seconds_per_size
        while (time.perf_counter() < end or len(times) < min_batches) and len(times) < max_batches:
            t = await one(size)
            if t is None:
                break
            times.append(t)
        xs.extend([size] * len(times))
        ys.extend(times)
        if times:
            arr = np.asarray(times)
            points.append(
                {"batch": size, "n": len(times), "median_s": float(np.median(arr)), "mean_s": float(arr.mean())}
            )
    kind = "classifier time in the worker" if target.kind == "python" else "round trip"
    out: dict[str, Any] = {"points": points, "failures": failures, "failure_examples": examples, "service_time": kind}
    if not failures and len(points) >= 2:
        a, b, r2 = fit_service_model(np.asarray(xs), np.asarray(ys))
        out.update(a_s=a, b_s=b, r2=r2, observations=len(xs))
    return out


def calibration_document(measured: dict[str, Any], *, target: str, batch_size: int | None) -> dict[str, Any]:
    """The file's content; ``batch_size`` only when the user chose one (else the scenario's stays)."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "model": "seconds to classify one batch on one replica = a_s + b_s * batch",
        "a_s": measured["a_s"],
        "b_s": measured["b_s"],
        "r2": measured["r2"],
        "replicas": 1,
        "batch_size": batch_size,
        "target": target,
        "service_time": measured["service_time"],
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "points": measured["points"],
    }
    if batch_size is None:
        del document["batch_size"]
    return document


def write_calibration(path: str | Path, document: dict[str, Any]) -> Path:
    """Write atomically, TOML for a ``.toml`` name, else JSON."""
    path = Path(path)
    if path.suffix.lower() == ".toml":
        import tomli_w

        atomic_write_text(path, tomli_w.dumps(drop_none(document)))
    else:
        atomic_write_text(path, dumps_json(document))
    return path
