"""``masssim.bench.run_bench``: one benchmark invocation from settings to a result that can be saved.

Exit status of ``masssim bench``: 0 when the verdict is PASS, 1 when it is FAIL or INVALID, 2 for bad
input (an option out of range, a target that cannot be started or reached, a bad messages file).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import masssim.bench.calibrate as calib
from masssim.bench.config import BenchConfig
from masssim.bench.corpus import Corpus, file_corpus, synthetic_corpus
from masssim.bench.metrics import FAIL, INVALID, PASS, nearest_rank, pkey, summarize
from masssim.bench.runner import Runner
from masssim.bench.schedule import STREAM_SAMPLES, child_generator
from masssim.bench.targets import Target, make_target
from masssim.reporting.results import atomic_write_text, dumps_json, publish_directory

DEFAULT_POOL = 5000
DEFAULT_UNIQUE_POOL = 50_000
EXIT_CODES = {PASS: 0, FAIL: 1, INVALID: 1}


@dataclass
class BenchResult:
    """``.summary`` (the JSON document), ``.verdict``, ``.exit_code``, ``.save(out_dir)``."""

    summary: dict[str, Any]

    @property
    def verdict(self) -> str:
        return str(self.summary["verdict"])

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def save(self, out_dir: str | Path = "results", run_id: str | None = None) -> Path:
        """Write ``<out>/bench/<run-id>/{bench.json, report.html}`` atomically; returns the directory."""
        # plotly is imported only when a report is written (start-up speed)
        from masssim.bench.report import render_html

        run_id = run_id or f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{self.summary['scenario']}"

        def write(partial: Path) -> None:
            atomic_write_text(partial / "bench.json", dumps_json(self.summary))
            atomic_write_text(partial / "report.html", render_html(self.summary))

        return publish_directory(Path(out_dir) / "bench", run_id, write)


def pool_size(cfg: BenchConfig) -> int:
    """Samples to generate: ``--samples``, else enough for a server schedule sent once each, else 5000."""
    if cfg.samples is not None:
        return cfg.samples
    if not cfg.unique_samples:
        return DEFAULT_POOL
    if cfg.scenario == "server":
        factor = 8.0 if cfg.find_peak else 1.0
        span = cfg.warmup_s + cfg.duration_s
        expected = cfg.rate * factor * span
        queries = max(cfg.min_queries + cfg.rate * factor * cfg.warmup_s, expected) + 10 * math.sqrt(expected + 1) + 32
        return math.ceil(queries) * cfg.query_size
    return DEFAULT_UNIQUE_POOL


def build_corpus(cfg: BenchConfig, root: np.random.SeedSequence) -> Corpus:
    if cfg.messages:
        return file_corpus(cfg.messages)
    return synthetic_corpus(root, pool_size(cfg), difficulty=cfg.difficulty, needle_share=cfg.needle_share)


def run_bench(cfg: BenchConfig, *, target: Target | None = None) -> BenchResult:
    """Run the benchmark ``cfg`` describes (against ``target`` if given: any object with the Target verbs)."""
    cfg.check()
    return asyncio.run(_run(cfg, target))


async def _run(cfg: BenchConfig, target: Target | None) -> BenchResult:
    root = np.random.SeedSequence(cfg.seed)
    corpus = build_corpus(cfg, root)
    if target is None:
        target = make_target(
            cfg.target,
            timeout_s=cfg.timeout_s,
            params=cfg.classifier_params,
            training_messages=cfg.training_messages,
            seed=np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 3)),
            difficulty=cfg.difficulty,
        )
    await target.start()
    # Objects alive now (corpus, modules) need no garbage collection during the run: fewer, shorter pauses.
    gc.collect()
    gc.freeze()
    try:
        runner = Runner(target, corpus, cfg, root)
        peak = calibration = None
        if cfg.calibrate is not None:
            run, calibration = await _calibrate(cfg, target, corpus, root)
        elif cfg.find_peak:
            run, peak = await _find_peak(runner, cfg)
        elif cfg.scenario == "server":
            run = summarize(await runner.server(cfg.rate), cfg)
        elif cfg.scenario == "single-stream":
            run = summarize(await runner.single_stream(), cfg)
        else:
            run = summarize(await runner.offline(), cfg)
        quality = runner.predictions.quality(corpus) if cfg.calibrate is None else None
    finally:
        gc.unfreeze()
        await target.close()
    config = dataclasses.asdict(cfg)
    config["query_size"] = cfg.query_size
    config["latency_bound_s"] = cfg.bound_s
    from importlib.metadata import version

    summary = {
        "kind": "masssim bench",
        "masssim_version": version("masssim"),
        "scenario": cfg.scenario,
        "verdict": run["verdict"],
        "reasons": run["reasons"],
        "target": {
            "spec": cfg.target,
            "kind": target.kind,
            "description": target.description,
            "info": dict(getattr(target, "info", {}) or {}),
        },
        "seed_entropy": str(root.entropy),
        "corpus": {"source": corpus.source, "samples": len(corpus), "unique_samples": cfg.unique_samples},
        "config": config,
        "run": run,
        "peak": peak,
        "calibration": calibration,
        "quality": quality,
    }
    return BenchResult(summary)


async def _find_peak(runner: Runner, cfg: BenchConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Highest rate whose server run passes: double (or halve) to bracket it, then bisect."""
    lo: float | None = None
    hi: float | None = None
    best: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    trials: list[dict[str, Any]] = []
    rate = cfg.rate
    for trial in range(cfg.max_peak_runs):
        run = summarize(await runner.server(rate, trial=trial), cfg)
        last = run
        lat = run["latency_s"]
        late = run["issue_lateness_s"] or {}
        trials.append(
            {
                "rate_qps": rate,
                "verdict": run["verdict"],
                "reasons": run["reasons"],
                "achieved_issue_rate_qps": run["achieved_issue_rate_qps"],
                "throughput_qps": run["throughput_qps"],
                pkey(cfg.percentile) + "_s": nearest_or(lat, cfg.percentile),
                "lateness_p99_s": late.get("p99"),
            }
        )
        if run["verdict"] == PASS:
            lo = rate
            best = run
        else:
            hi = rate
        if lo is None:
            rate /= 2.0
            if rate < 1e-3:
                break
        elif hi is None:
            rate *= 2.0
        elif (hi - lo) / lo <= cfg.peak_tolerance:
            break
        else:
            rate = (lo + hi) / 2.0
        await asyncio.sleep(0.2)  # let the target drain between trials
    assert last is not None
    generator_limited = any(t["verdict"] == INVALID and hi is not None and t["rate_qps"] == hi for t in trials)
    peak = {"rate_qps": lo, "first_failing_rate_qps": hi, "trials": trials, "limited_by_generator": generator_limited}
    if best is None:
        run = dict(last)
        run["verdict"] = INVALID if all(t["verdict"] == INVALID for t in trials) else FAIL
        run["reasons"] = [
            f"no rate passed (lowest tried {min(t['rate_qps'] for t in trials):.3g} q/s)",
            *last["reasons"],
        ]
        return run, peak
    run = dict(best)
    note = f"peak {lo:.4g} q/s passes; {hi:.4g} q/s does not" if hi is not None else f"{lo:.4g} q/s passes (search cap)"
    if generator_limited:
        note += " (the generator could not keep up there: the target may sustain more)"
    run["reasons"] = [note, *best["reasons"]]
    return run, peak


def nearest_or(stats: dict[str, Any], p: float) -> float | None:
    return stats.get(pkey(p))  # type: ignore[no-any-return]


async def _calibrate(
    cfg: BenchConfig, target: Target, corpus: Corpus, root: np.random.SeedSequence
) -> tuple[dict[str, Any], dict[str, Any]]:
    sizes = tuple(sorted(set(cfg.calibrate_batches)))
    measured = await calib.measure(
        target,
        corpus,
        sizes,
        seconds_per_size=cfg.duration_s / len(sizes),
        warmup_s=cfg.warmup_s,
        rng=child_generator(root, STREAM_SAMPLES, 7),
    )
    failures = measured["failures"]
    run: dict[str, Any] = {"scenario": "offline", "verdict": PASS, "reasons": []}
    if failures:
        run["verdict"] = FAIL
        parts = ", ".join(f"{n} {k}" for k, n in failures.items())
        run["reasons"].append(f"calibration stopped: {parts} - e.g. {'; '.join(measured['failure_examples'].values())}")
    elif "a_s" not in measured:
        run["verdict"] = INVALID
        run["reasons"].append("too few batch sizes measured to fit a + b*batch")
    else:
        document = calib.calibration_document(measured, target=cfg.target, batch_size=cfg.batch_size)
        path = calib.write_calibration(cfg.calibrate or "core.json", document)
        measured["file"] = str(path)
        run["reasons"].append(
            f"service time = {measured['a_s'] * 1e3:.3f} ms + {measured['b_s'] * 1e6:.2f} us x batch "
            f"(R² {measured['r2']:.3f}, {measured['observations']} batches); written to {path}"
        )
    # The figures the report shows for an ordinary run, from the calibration batches.
    medians = np.asarray([p["median_s"] for p in measured["points"]]) if measured["points"] else np.zeros(0)
    run["latency_s"] = {"p50": nearest_rank(medians, 50.0)} if medians.size else {}
    return run, measured
