"""From the parsed options of ``masssim bench`` / ``masssim serve`` to the library calls (kept out of cli.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from masssim.config.errors import ScenarioError


def parse_params(text: str | None, where: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the json module can read
        value = None
    if not isinstance(value, dict):
        raise ScenarioError(
            "not a JSON object", file=where, field="--classifier-params", value=text, allowed="e.g. '{\"bits\": 18}'"
        )
    return value


def parse_batches(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        sizes = ()
    if len(set(sizes)) < 2 or min(sizes) < 1:
        raise ScenarioError(
            "need at least two distinct batch sizes >= 1",
            file="masssim bench",
            field="--calibrate-batches",
            value=text,
            allowed="e.g. 1,8,32,128,512",
        )
    return sizes


def bench_command(options: dict[str, Any], *, echo: Callable[..., Any]) -> int:
    """Run ``masssim bench``; returns the exit status (0 PASS, 1 FAIL/INVALID)."""
    # Imported when the command runs, so that `masssim --help` and other commands start fast.
    from masssim.bench.api import run_bench
    from masssim.bench.config import BenchConfig
    from masssim.bench.report import summary_lines
    from masssim.reporting.results import check_output_dir

    cfg = BenchConfig(
        scenario=options["scenario"],
        target=options["target"],
        classifier_params=parse_params(options["classifier_params"], "masssim bench"),
        rate=options["rate"],
        duration_s=options["duration"],
        min_queries=options["min_queries"],
        warmup_s=options["warmup"],
        latency_bound_s=options["latency_bound"],
        percentile=options["percentile"],
        find_peak=options["find_peak"],
        timeout_s=options["timeout"],
        batch_size=options["batch_size"],
        concurrency=options["concurrency"],
        max_outstanding=options["max_outstanding"],
        max_lateness_s=options["max_lateness"],
        max_errors=options["max_errors"],
        max_duration_s=options["max_duration"],
        samples=options["samples"],
        unique_samples=options["unique_samples"],
        messages=str(options["messages"]) if options["messages"] is not None else None,
        needle_share=options["needle_share"],
        difficulty=options["difficulty"],
        training_messages=options["training_messages"],
        seed=options["seed"],
        calibrate=str(options["calibrate"]) if options["calibrate"] is not None else None,
        calibrate_batches=parse_batches(options["calibrate_batches"]),
    ).check()
    # Before measuring: a benchmark that cannot save its result must not run first.
    check_output_dir(options["out"])
    if options["calibrate"] is not None:
        calibration = Path(options["calibrate"])
        if calibration.is_dir():
            raise ScenarioError(
                "is a folder", file=str(calibration), field="--calibrate", allowed="a file name, e.g. core.json"
            )
        check_output_dir(calibration.parent, option="--calibrate")
    result = run_bench(cfg)
    run_dir = result.save(options["out"])
    lines = summary_lines(result.summary)
    if options["quiet"]:
        lines = lines[:1]
    for line in lines:
        echo(line)
    if not options["quiet"]:
        echo(f"results: {run_dir / 'bench.json'}\nreport:  {run_dir / 'report.html'}")
    return result.exit_code


def serve_command(options: dict[str, Any], *, echo: Callable[..., Any]) -> None:
    from masssim.bench.serve import serve  # imported when the command runs (start-up speed)

    def announce(line: str) -> None:
        echo(line)

    serve(
        options["classifier"],
        params=parse_params(options["classifier_params"], "masssim serve"),
        port=options["port"],
        training_messages=options["training_messages"],
        seed=options["seed"],
        max_request_bytes=options["max_request_bytes"],
        max_texts=options["max_texts"],
        announce=announce,
    )
