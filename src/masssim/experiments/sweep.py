"""``masssim sweep``: a grid of scenario variants, each cell written atomically as soon as it finishes.

The grid is the product of the swept parameters (``--param path=v1,v2,...``, repeatable, or the scenario's
``[sweep]`` table). Every cell is simulated with the same root seed, so neighbouring cells share customers
and purchase occasions and the curves are smooth (paired) rather than jagged by chance.

Layout: ``<out>/<scenario>/sweep-<id>/`` holding ``spec.json`` and ``scenario.toml`` at the start,
``cells/<index>.json`` as cells finish, and ``sweep.csv``, ``report.html`` and ``manifest.json`` at the end.
The id is a hash of the specification (scenario, grid, replications, seed, stop rule): running the same sweep
again finds the directory, keeps the finished cells and computes only the missing ones. Stopping a sweep
(Ctrl-C) leaves only complete cells.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from masssim.config.errors import ScenarioError
from masssim.config.overrides import describe, parse_values, split_assignment
from masssim.config.schema import Scenario
from masssim.estimation.intervals import mean_ci, paired_difference
from masssim.experiments.replications import (
    Executor,
    ProgressCallback,
    Replication,
    StopRule,
    build_manifest,
    refuse_unshardable,
    replicate,
    resolve_entropy,
)
from masssim.model.market import arm_market_section, market_section
from masssim.model.metrics import ALL, REGISTRY
from masssim.reporting.results import atomic_write_text, check_output_dir, dumps_json, table_csv
from masssim.scenario.load import apply_overrides

SPEC_VERSION = 1


def parse_params(texts: Sequence[str]) -> dict[str, list[Any]]:
    """``["path=v1,v2", ...]`` -> {path: [v1, v2]}; a path given twice is an error."""
    grid: dict[str, list[Any]] = {}
    for text in texts:
        path, values = split_assignment(text, source="--param")
        if path in grid:
            raise ScenarioError("parameter given twice", file="--param", field=path)
        parsed = parse_values(values)
        if not parsed:
            raise ScenarioError("no values", file="--param", field=path, allowed="path=v1,v2,...")
        grid[path] = parsed
    return grid


@dataclass
class Cell:
    index: int
    overrides: dict[str, Any]
    scenario: Scenario


@dataclass
class SweepResult:
    directory: Path
    grid: dict[str, list[Any]]
    cells: list[dict[str, Any]]  # per cell: index, overrides, replications, arms{arm:{metric: stats}}
    manifest: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """Tidy rows: one per cell, arm and metric."""
        out = []
        for cell in self.cells:
            for arm, metrics in cell["arms"].items():
                for metric in ALL:
                    stat = metrics[metric]
                    out.append(
                        {
                            "cell": cell["index"],
                            **{path: cell["overrides"][path] for path in self.grid},
                            "arm": arm,
                            "metric": metric,
                            "unit": REGISTRY[metric].unit,
                            "mean": stat["mean"],
                            "ci_low": stat["ci_low"],
                            "ci_high": stat["ci_high"],
                            "halfwidth": stat["halfwidth"],
                            "n": stat["n"],
                        }
                    )
        return out


def build_cells(base: Scenario, grid: dict[str, list[Any]]) -> list[Cell]:
    cells = []
    for index, values in enumerate(itertools.product(*grid.values())):
        overrides = dict(zip(grid.keys(), values, strict=True))
        scenario = apply_overrides(base, overrides, source=f"sweep cell {describe(overrides)}")
        cells.append(Cell(index, overrides, scenario))
    return cells


def _sweep_id(
    base: Scenario, grid: dict[str, list[Any]], replications: int, seed: int | None, until: StopRule | None
) -> str:
    spec = {
        "version": SPEC_VERSION,
        "scenario": base.model_dump(mode="json", exclude={"sweep"}),
        "grid": grid,
        "replications": replications,
        "seed": seed,
        "until": None if until is None else [until.metric, until.relative_halfwidth, until.max_replications],
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return f"sweep-{digest[:10]}"


def _cell_summary(cell: Cell, reps: list[Replication], baseline_arm: str) -> dict[str, Any]:
    arms = [a.name for a in cell.scenario.arms]
    summary: dict[str, Any] = {
        "index": cell.index,
        "overrides": cell.overrides,
        "replications": len(reps),
        "arms": {},
        "differences_vs_baseline": {},
    }
    for arm in arms:
        summary["arms"][arm] = {
            m: {**mean_ci(v := [r[arm].metrics[m] for r in reps], bounds=REGISTRY[m].bounds), "values": v} for m in ALL
        }
    for arm in arms:
        if arm != baseline_arm:
            summary["differences_vs_baseline"][arm] = {
                m: paired_difference(
                    [r[arm].metrics[m] for r in reps],
                    [r[baseline_arm].metrics[m] for r in reps],
                    bounds=REGISTRY[m].bounds,
                )
                for m in ALL
            }
    # Every brand's buying, without marketing and under each arm's (docs/model.md 5.5).
    tallies = [r[arms[0]].market for r in reps]
    by_arm = {arm: [r[arm].arm_market for r in reps] for arm in arms}
    if reps and all(t is not None for t in tallies) and all(t is not None for c in by_arm.values() for t in c):
        summary["market"] = market_section(cell.scenario, tallies)  # type: ignore[arg-type]
        summary["market"]["by_arm"] = arm_market_section(cell.scenario, tallies, by_arm)  # type: ignore[arg-type]
    return summary


def sweep(
    scenario: Scenario,
    params: dict[str, list[Any]] | Sequence[str] | None = None,
    *,
    replications: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    until: StopRule | str | None = None,
    out: str | Path = "results",
    progress: ProgressCallback | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    metric: str | None = None,
    shards: int | None = None,
) -> SweepResult:
    """Run (or resume) a sweep. ``params`` defaults to the scenario's ``[sweep]`` table. The report reads
    ``metric`` (default: the lesson's first headline metric, else incremental_profit). ``shards`` splits each
    replication's customers into that many shards, with the same cells (docs/model.md §16); a cell that
    cannot run sharded raises ScenarioError before anything runs."""
    if metric is not None and metric not in REGISTRY:
        raise ScenarioError("unknown metric", file="--metric", value=metric, allowed="a metric of docs/model.md §7")
    if params is None:
        grid = dict(scenario.sweep or {})
    elif isinstance(params, dict):
        grid = {k: list(v) for k, v in params.items()}
    else:
        grid = parse_params(params)
    if not grid:
        raise ScenarioError("nothing to sweep", allowed="--param path=v1,v2,... or a [sweep] table in the scenario")
    base = scenario.model_copy(update={"sweep": None})
    cells = build_cells(base, grid)
    if shards is not None:
        for cell in cells:
            refuse_unshardable(cell.scenario, file=f"sweep cell {describe(cell.overrides)}")
    n = replications if replications is not None else scenario.replications
    rule = StopRule.parse(until) if isinstance(until, str) else until
    seed_given = seed if seed is not None else scenario.seed
    check_output_dir(out)  # before any simulation: a sweep that cannot save its cells must not start
    directory = Path(out) / scenario.name / _sweep_id(base, grid, n, seed_given, rule)
    cells_dir = directory / "cells"
    spec_path = directory / "spec.json"
    spec = _read_json(spec_path)
    resumed = spec is not None and _entropy_of(spec) is not None
    if spec is not None and resumed:
        entropy = int(spec["seed_entropy"])  # a resumed sweep keeps its (possibly fresh) entropy
    else:
        # A new sweep, or one whose spec.json was cut short: its cells' entropy is unknown, so none is reused.
        entropy = resolve_entropy(seed_given, None)
        spec = {
            "scenario": scenario.name,
            "grid": grid,
            "replications": n,
            "seed_entropy": str(entropy),
            "until": None if rule is None else {"metric": rule.metric, "relative_halfwidth": rule.relative_halfwidth},
            "cells": len(cells),
        }
        atomic_write_text(directory / "scenario.toml", tomli_w.dumps(base.to_toml_dict()))
        atomic_write_text(spec_path, dumps_json(spec))
    done: dict[int, dict[str, Any]] = _finished_cells(cells_dir, cells) if resumed else {}
    todo = [c for c in cells if c.index not in done]
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    baseline_arm = base.arms[0].name

    def finish(cell: Cell, reps: list[Replication]) -> None:
        summary = dumps_json(_cell_summary(cell, reps, baseline_arm))
        atomic_write_text(cells_dir / f"{cell.index:05d}.json", summary)
        done[cell.index] = json.loads(summary)

    with Executor(workers, engine=engine, scheduler=scheduler, shards=shards) as executor:
        if rule is None:
            _run_fixed(todo, entropy, n, executor, finish, progress, len(cells), len(done))
        else:
            for k, cell in enumerate(todo):
                share = (len(done) + k) / len(cells)
                report = None if progress is None else (lambda f, s=share: progress(s + f / len(cells)))
                (reps,) = replicate([cell.scenario], entropy, n, executor, until=rule, progress=report)
                finish(cell, reps)
    if progress is not None:
        progress(1.0)
    ordered = [done[c.index] for c in cells]
    manifest = build_manifest(
        scenario.name,
        entropy=entropy,
        replications=n,
        workers=workers,
        wall_time_s=time.perf_counter() - started,
        started_at=started_at,
        until=rule,
        engine=engine,
        shards=shards,
        kind="sweep",
        grid=grid,
        cells=len(cells),
        cells_computed_now=len(todo),
    )
    result = SweepResult(directory, grid, ordered, manifest)
    _write_outputs(result, base, metric)
    return result


def _read_json(path: Path) -> Any:
    """The JSON document in ``path``, or None when it is missing, unreadable or cut short."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # ValueError covers JSONDecodeError and UnicodeDecodeError
        return None


def _entropy_of(spec: Any) -> int | None:
    try:
        return int(spec["seed_entropy"])
    except (TypeError, KeyError, ValueError):
        return None


def _finished_cells(cells_dir: Path, cells: list[Cell]) -> dict[int, dict[str, Any]]:
    """The cells already written, by index. A file that is cut short, corrupt or not the cell its name says
    (a disk full, a copy gone wrong) does not count: that cell is computed again and the file replaced."""
    done: dict[int, dict[str, Any]] = {}
    for cell in cells:
        data = _read_json(cells_dir / f"{cell.index:05d}.json")
        expected_overrides = json.loads(dumps_json(cell.overrides))
        if (
            isinstance(data, dict)
            and data.get("index") == cell.index
            and data.get("overrides") == expected_overrides
            and isinstance(data.get("arms"), dict)
            and sorted(data["arms"]) == sorted(a.name for a in cell.scenario.arms)
            and all(isinstance(m, dict) and all(k in m for k in ALL) for m in data["arms"].values())
            and isinstance(data.get("differences_vs_baseline"), dict)
        ):
            done[cell.index] = data
    return done


def _run_fixed(
    todo: list[Cell],
    entropy: int,
    n: int,
    executor: Executor,
    finish: Any,
    progress: ProgressCallback | None,
    total_cells: int,
    already: int,
) -> None:
    """All (cell, replication) tasks on the pool at once; a cell is written when its last one lands."""
    pending: dict[int, dict[int, Replication]] = {i: {} for i in range(len(todo))}
    tasks = [(i, r) for i in range(len(todo)) for r in range(n)]
    total = max(1, len(tasks))

    def report(done: int, share: float) -> None:
        if progress is not None:
            progress((already + (done + share) / total * len(todo)) / total_cells)

    for (i, r), outcome in executor.map([c.scenario for c in todo], entropy, tasks, report):
        pending[i][r] = outcome
        if len(pending[i]) == n:
            finish(todo[i], [pending[i][k] for k in range(n)])
            del pending[i]


def _write_outputs(result: SweepResult, base: Scenario, metric: str | None = None) -> None:
    # plotly is imported only when a report is written (start-up speed)
    from masssim.reporting.report_sweep import render_sweep

    rows = result.rows()
    atomic_write_text(result.directory / "sweep.csv", table_csv(rows))
    atomic_write_text(result.directory / "manifest.json", dumps_json(result.manifest))
    atomic_write_text(result.directory / "report.html", render_sweep(result.grid, result.cells, base, metric))


def load_sweep(directory: str | Path) -> SweepResult:
    """Read a finished or partial sweep directory back."""
    directory = Path(directory)
    spec_path = directory / "spec.json"
    if not spec_path.is_file():
        raise ScenarioError("is not a sweep directory (spec.json is missing)", file=str(directory))
    spec = _read_json(spec_path)
    if not isinstance(spec, dict) or not isinstance(spec.get("grid"), dict):
        raise ScenarioError("is not valid JSON of a sweep specification", file=str(spec_path))
    cells = []
    for path in sorted((directory / "cells").glob("*.json")):
        data = _read_json(path)
        if not isinstance(data, dict):
            raise ScenarioError(
                "is not a complete sweep cell (cut short?); rerun the sweep to recompute it", file=str(path)
            )
        cells.append(data)
    return SweepResult(directory, spec["grid"], cells)
