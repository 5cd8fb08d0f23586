"""The settings of one ``masssim bench`` invocation, checked before anything starts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from masssim.config.errors import ScenarioError

SCENARIOS: tuple[str, ...] = ("offline", "server", "single-stream")
WHERE = "masssim bench"
DEFAULT_SERVER_BOUND_S = 0.05
DEFAULT_CALIBRATION_BATCHES: tuple[int, ...] = (1, 8, 32, 128, 512)


@dataclass(frozen=True)
class BenchConfig:
    """Every knob of a benchmark run; the CLI options of ``masssim bench`` map one to one (docs/model.md §14)."""

    scenario: str = "server"
    target: str = "python:keyword"
    classifier_params: dict[str, Any] = field(default_factory=dict)
    rate: float = 100.0  # server: target queries per second (the start of --find-peak)
    duration_s: float = 10.0  # minimum measured duration
    min_queries: int = 100  # minimum measured queries (offline: samples)
    warmup_s: float = 1.0  # not measured
    latency_bound_s: float | None = None  # server: default 0.05 s; single-stream: only if given
    percentile: float = 99.0
    find_peak: bool = False
    timeout_s: float = 2.0  # per request
    batch_size: int | None = None  # samples per query; default 1, offline 256
    concurrency: int = 2  # offline: batches in flight
    max_outstanding: int = 10_000  # abort guard against a runaway backlog
    max_lateness_s: float = 0.01  # INVALID when the p99 issue lateness exceeds this
    max_errors: int = 0  # failed queries tolerated before the run fails
    samples: int | None = None  # size of the sample pool
    unique_samples: bool = False  # anti-caching: every sample is sent at most once
    messages: str | None = None  # a labelled JSONL/CSV file instead of synthetic messages
    needle_share: float | None = None
    difficulty: float | None = None
    training_messages: int = 5000
    seed: int | None = None
    max_duration_s: float | None = None  # closed loop: stop issuing after this long (default auto)
    calibrate: str | None = None  # write the service-time calibration to this file (offline)
    calibrate_batches: tuple[int, ...] = DEFAULT_CALIBRATION_BATCHES
    peak_tolerance: float = 0.05  # --find-peak stops when the bracket is this narrow (relative)
    max_peak_runs: int = 12

    @property
    def query_size(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return 256 if self.scenario == "offline" else 1

    @property
    def bound_s(self) -> float | None:
        if self.latency_bound_s is not None:
            return self.latency_bound_s
        return DEFAULT_SERVER_BOUND_S if self.scenario == "server" else None

    @property
    def closed_loop_cap_s(self) -> float:
        if self.max_duration_s is not None:
            return self.max_duration_s
        return self.warmup_s + 2.0 * self.duration_s + 10.0

    def with_(self, **changes: Any) -> BenchConfig:
        return replace(self, **changes)

    def check(self) -> BenchConfig:
        """Raise ScenarioError naming the option for anything out of range; returns self."""

        def bad(option: str, value: Any, allowed: str, reason: str = "value not allowed") -> None:
            raise ScenarioError(reason, file=WHERE, field=option, value=value, allowed=allowed)

        if self.scenario not in SCENARIOS:
            bad("--scenario", self.scenario, ", ".join(SCENARIOS))
        for option, value, low, high in (
            ("--rate", self.rate, 0.0, 1e7),
            ("--duration", self.duration_s, 0.0, 86_400.0),
            ("--timeout", self.timeout_s, 0.0, 3_600.0),
            ("--max-lateness", self.max_lateness_s, 0.0, 60.0),
        ):
            if not (math.isfinite(value) and low < value <= high):
                bad(option, value, f"a number in ({low:g}, {high:g}]")
        if not (math.isfinite(self.warmup_s) and 0 <= self.warmup_s <= 3_600):
            bad("--warmup", self.warmup_s, "seconds in [0, 3600]")
        if self.latency_bound_s is not None and not (0 < self.latency_bound_s <= 3_600):
            bad("--latency-bound", self.latency_bound_s, "seconds in (0, 3600]")
        if not 0 < self.percentile < 100:
            bad("--percentile", self.percentile, "a percentile in (0, 100), e.g. 99 or 99.9")
        if self.min_queries < 1:
            bad("--min-queries", self.min_queries, ">= 1")
        if self.batch_size is not None and not 1 <= self.batch_size <= 100_000:
            bad("--batch-size", self.batch_size, "1 to 100000 samples per query")
        if not 1 <= self.concurrency <= 1_000:
            bad("--concurrency", self.concurrency, "1 to 1000 batches in flight")
        if self.max_outstanding < 1:
            bad("--max-outstanding", self.max_outstanding, ">= 1")
        if self.max_errors < 0:
            bad("--max-errors", self.max_errors, ">= 0")
        if self.samples is not None and not 1 <= self.samples <= 10_000_000:
            bad("--samples", self.samples, "1 to 10,000,000")
        if self.training_messages < 0:
            bad("--training-messages", self.training_messages, ">= 0")
        if self.needle_share is not None and not 0 <= self.needle_share <= 1:
            bad("--needle-share", self.needle_share, "a share in [0, 1]")
        if self.difficulty is not None and not 0 <= self.difficulty <= 1:
            bad("--difficulty", self.difficulty, "a number in [0, 1]")
        if self.max_duration_s is not None and not self.max_duration_s > 0:
            bad("--max-duration", self.max_duration_s, "seconds > 0")
        if self.find_peak and self.scenario != "server":
            bad("--find-peak", True, "only with --scenario server", "the peak search runs the server scenario")
        if not 0 < self.peak_tolerance < 1:
            bad("--peak-tolerance", self.peak_tolerance, "a share in (0, 1)")
        if self.calibrate is not None:
            if self.scenario != "offline":
                bad("--calibrate", self.calibrate, "with --scenario offline", "calibration runs in offline mode")
            sizes = sorted(set(self.calibrate_batches))
            if len(sizes) < 2 or sizes[0] < 1:
                bad("--calibrate-batches", self.calibrate_batches, "at least two distinct batch sizes >= 1")
        return self
