"""Executors: run a scenario's replications in this process or on a process pool.

Replication r always gets the r-th child of the run's root seed and results are gathered in replication
order, so the summary is byte-identical whatever the number of workers.
"""

from __future__ import annotations

import multiprocessing
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from masssim.engine.sim import ArmOutcome, simulate_replication
from masssim.results import RunResult
from masssim.scenario import Scenario
from masssim.streams import replication_sequence, root_sequence

ProgressCallback = Callable[[float], None]  # called with the completed share of the whole run, 0..1


def _one_replication(scenario: Scenario, entropy: int, replication: int) -> dict[str, ArmOutcome]:
    root = root_sequence(entropy)
    return simulate_replication(scenario, replication_sequence(root, replication))


def run(
    scenario: Scenario,
    *,
    replications: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Simulate ``replications`` replications of every arm of ``scenario``.

    ``seed`` overrides the scenario's own; with neither, fresh entropy is drawn and recorded in the
    manifest (``seed_entropy``) so the run can be repeated exactly with ``seed=<that number>``.
    """
    n = replications if replications is not None else scenario.replications
    if n < 1:
        raise ValueError("replications must be at least 1")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    chosen = seed if seed is not None else scenario.seed
    entropy = int(root_sequence(chosen).entropy)  # type: ignore[arg-type]
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    results: list[dict[str, ArmOutcome]] = []
    if workers == 1 or n == 1:
        for r in range(n):
            report = None if progress is None else (lambda f, r=r: progress((r + f) / n))
            results.append(simulate_replication(scenario, replication_sequence(root_sequence(entropy), r), report))
    else:
        # 'spawn' gives each worker a clean interpreter: no inherited locks or thread state from the parent.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, n), mp_context=context) as pool:
            futures = [pool.submit(_one_replication, scenario, entropy, r) for r in range(n)]
            for done, future in enumerate(futures, start=1):
                results.append(future.result())
                if progress is not None:
                    progress(done / n)
    wall = time.perf_counter() - started
    manifest = build_manifest(
        scenario, entropy=entropy, replications=n, workers=workers, wall_time_s=wall, started_at=started_at
    )
    return RunResult(scenario=scenario, seed_entropy=entropy, replications=results, manifest=manifest)


def build_manifest(
    scenario: Scenario, *, entropy: int, replications: int, workers: int, wall_time_s: float, started_at: str
) -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in ("masssim", "numpy", "scipy", "simpy", "plotly", "pydantic", "click", "rich"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "scenario": scenario.name,
        "seed_entropy": str(entropy),
        "replications": replications,
        "workers": workers,
        "engine": "local",
        "started_at": started_at,
        "wall_time_s": round(wall_time_s, 3),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": packages,
        "git_commit": git_commit(),
        "command": sys.argv,
    }


def git_commit() -> str | None:
    """The commit of the masssim source tree in use, when it is a git checkout (None otherwise)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or len(commit) != 40:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return commit + ("-dirty" if dirty.stdout.strip() else "")
