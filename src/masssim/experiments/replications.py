"""Executors and replication schedules: run, compare and sweep all come down to "simulate replication r of
scenario s", each with the r-th child of the run's root seed.

* Results are always gathered by (scenario, replication) index, never by completion order, so a summary is
  byte-identical whatever the number of workers.
* Scenarios simulated together with one root seed share each replication's population, holdout and
  purchase occasions whenever their population settings agree (common random numbers): their differences
  are paired.
* Sequential replications (``until``) add replications until a metric's 95% CI half-width is under a
  relative target for every compared arm; the stopping point is checked after each replication in order,
  so it does not depend on how many were computing at once.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from masssim.config.errors import ScenarioError
from masssim.config.schema import Scenario
from masssim.engine.allocator import worker_environment
from masssim.engine.sharded import ShardGroup, in_process, sharding_problem, simulate_sharded_replication
from masssim.engine.sim import ArmOutcome, simulate_replication
from masssim.estimation.intervals import mean_ci, relative_halfwidth
from masssim.model.metrics import REGISTRY
from masssim.model.streams import replication_sequence, root_sequence
from masssim.reporting.results import RunResult

ProgressCallback = Callable[[float], None]  # called with the completed share of the whole job, 0..1
Replication = dict[str, ArmOutcome]  # arm name -> outcome, for one replication of one scenario


@dataclass(frozen=True)
class StopRule:
    """Keep adding replications until ``metric``'s CI half-width / |mean| <= ``relative_halfwidth`` for
    every arm, or ``max_replications`` is reached."""

    metric: str
    relative_halfwidth: float
    max_replications: int = 200

    @classmethod
    def parse(cls, text: str, max_replications: int = 200) -> StopRule:
        """``metric:0.05`` -> StopRule; a one-line ScenarioError otherwise."""
        metric, sep, target = text.partition(":")
        if not sep or metric not in REGISTRY:
            raise ScenarioError(
                "expected metric:relative_halfwidth with a known metric",
                file="--until",
                value=text,
                allowed="e.g. incremental_revenue:0.05; metrics: " + ", ".join(REGISTRY),
            )
        try:
            value = float(target)
        except ValueError:
            value = -1.0
        if not 0 < value < 10:
            raise ScenarioError(
                "the relative half-width must be a number above 0", file="--until", value=text, allowed="(0, 10)"
            )
        return cls(metric, value, max_replications)

    def satisfied(self, per_arm_values: Sequence[Sequence[float]]) -> bool:
        bounds = REGISTRY[self.metric].bounds
        return all(
            relative_halfwidth(mean_ci(values, bounds=bounds)) <= self.relative_halfwidth for values in per_arm_values
        )


def _simulate(scenario: Scenario, entropy: int, replication: int) -> Replication:
    return simulate_replication(scenario, replication_sequence(root_sequence(entropy), replication))


ENGINES = ("local", "dask")
SCHEDULER_TIMEOUT_S = 10.0
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)  # how long to wait for a Dask scheduler before saying it cannot be reached


class Executor:
    """Runs (scenario index, replication) tasks: in this process, on a local process pool, or on a Dask
    cluster (``engine="dask"``: the scheduler at ``scheduler``, or a LocalCluster of ``workers`` processes).
    """

    def __init__(
        self, workers: int = 1, *, engine: str = "local", scheduler: str | None = None, shards: int | None = None
    ) -> None:
        """``shards``: split each replication's customers into this many shards (on the Dask workers with
        ``engine="dask"``, else in this process) and run the replications one after another."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if shards is not None and shards < 1:
            raise ScenarioError("must be at least 1", file="--shards", value=shards)
        self.shards = shards
        if engine not in ENGINES:
            raise ScenarioError("unknown engine", file="--engine", value=engine, allowed=", ".join(ENGINES))
        if scheduler is not None and engine != "dask":
            raise ScenarioError("a scheduler address needs --engine dask", file="--scheduler", value=scheduler)
        self.workers = workers
        self.engine = engine
        self.scheduler = scheduler
        self._pool: ProcessPoolExecutor | None = None
        self._client: Any = None
        self._cluster: Any = None

    def __enter__(self) -> Executor:
        if self.engine == "dask" or self.workers > 1:
            # Each worker process runs one replication at a time: BLAS thread pools inside them would only
            # fight over the cores. Workers read these variables when they start (spawn), so they are set
            # for the executor's lifetime and restored after.
            # The allocator's settings (engine/allocator.py) are passed the same way.
            worker_env = dict.fromkeys(_THREAD_VARIABLES, "1") | worker_environment()
            self._saved_env = {name: os.environ.get(name) for name in worker_env}
            os.environ.update(worker_env)
        if self.engine == "dask":
            self._start_dask()
        elif self.workers > 1 and self.shards is None:
            # 'spawn' gives each worker a clean interpreter: no inherited locks or thread state.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self

    def _start_dask(self) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ScenarioError(
                "Dask is not installed", file="--engine", value="dask", allowed="pip install 'masssim[dask]'"
            ) from None
        if self.scheduler is None:
            import dask

            from masssim.engine.dask_shards import QUIET_DASK

            with dask.config.set(QUIET_DASK):  # the workers take the settings they start with
                # The dashboard on any free port: None does not turn it off but asks for 8787, and warns
                # ("Port 8787 is already in use") whenever another cluster holds that port.
                self._cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
                )
                self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(self.scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
            except OSError as exc:
                raise ScenarioError(
                    f"cannot reach the Dask scheduler ({exc})", file="--scheduler", value=self.scheduler
                ) from None
            except (ValueError, TypeError) as exc:  # Dask's own words for an address it cannot parse
                raise ScenarioError(
                    f"not a scheduler address ({exc})",
                    file="--scheduler",
                    value=self.scheduler,
                    allowed="e.g. tcp://host:8786",
                ) from None
        # The scheduler's workers may be fewer or more than asked: grow sequential batches by what is there.
        self.workers = max(1, len(self._client.scheduler_info().get("workers", {})) or self.workers)

    def __exit__(self, *exc: object) -> None:
        for name, value in getattr(self, "_saved_env", {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def map(
        self,
        scenarios: Sequence[Scenario],
        entropy: int,
        tasks: Sequence[tuple[int, int]],
        progress: Callable[[int, float], None] | None = None,
    ) -> Iterator[tuple[tuple[int, int], Replication]]:
        """Yield ((scenario index, replication), outcome) as tasks finish (any order).

        ``progress(done_tasks, share_of_current_task)`` is called as work advances.
        """
        if self.shards is not None:
            for done, (s, r) in enumerate(tasks):
                report = None if progress is None else (lambda f, d=done: progress(d, f))
                seq = replication_sequence(root_sequence(entropy), r)
                yield (s, r), simulate_sharded_replication(scenarios[s], seq, self._open_shards, self.shards, report)
            return
        if self._client is not None:
            yield from self._map_dask(scenarios, entropy, tasks, progress)
            return
        if self._pool is None:
            for done, (s, r) in enumerate(tasks):
                report = None if progress is None else (lambda f, d=done: progress(d, f))
                yield (
                    (s, r),
                    simulate_replication(scenarios[s], replication_sequence(root_sequence(entropy), r), report),
                )
            return
        futures: dict[Future[Replication], tuple[int, int]] = {
            self._pool.submit(_simulate, scenarios[s], entropy, r): (s, r) for s, r in tasks
        }
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                if progress is not None:
                    progress(done, 0.0)
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()

    def _open_shards(
        self, scenario: Scenario, replication_seq: Any, ranges: list[range], chunk_size: int
    ) -> ShardGroup:
        if self._client is None:
            return in_process(scenario, replication_seq, ranges, chunk_size, threads=self.workers)
        from masssim.engine.dask_shards import DaskShards

        return DaskShards(self._client, scenario, replication_seq, ranges, chunk_size)

    def _map_dask(
        self,
        scenarios: Sequence[Scenario],
        entropy: int,
        tasks: Sequence[tuple[int, int]],
        progress: Callable[[int, float], None] | None,
    ) -> Iterator[tuple[tuple[int, int], Replication]]:
        from dask.distributed import as_completed as dask_completed

        # pure=False: identical arguments must still run (and a rerun must not be served from a cache).
        futures = {self._client.submit(_simulate, scenarios[s], entropy, r, pure=False): (s, r) for s, r in tasks}
        try:
            for done, future in enumerate(dask_completed(list(futures)), start=1):
                if progress is not None:
                    progress(done, 0.0)
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()


def replicate(
    scenarios: Sequence[Scenario],
    entropy: int,
    replications: int,
    executor: Executor,
    *,
    until: StopRule | None = None,
    progress: ProgressCallback | None = None,
) -> list[list[Replication]]:
    """Replications 0, 1, ... of every scenario, the same count for each (paired); per scenario a list."""
    n = len(scenarios)
    results: list[dict[int, Replication]] = [{} for _ in range(n)]
    target = replications
    cap = max(replications, until.max_replications) if until else replications

    def report(done_before: int) -> Callable[[int, float], None] | None:
        if progress is None:
            return None
        total = n * (cap if until else target)
        return lambda done, share: progress(min(1.0, (done_before + done + share) / total))

    computed = 0
    while True:
        tasks = [(s, r) for r in range(target) for s in range(n) if r not in results[s]]
        for (s, r), outcome in executor.map(scenarios, entropy, tasks, report(computed)):
            results[s][r] = outcome
        computed += len(tasks)
        if until is None:
            break
        stop_at = _first_satisfying(results, until, replications, target)
        if stop_at is not None:
            target = stop_at
            break
        if target >= cap:
            break
        # Grow by the number of workers (at least one): the stopping point is still judged in order.
        target = min(cap, target + max(1, executor.workers))
    if progress is not None:
        progress(1.0)
    return [[results[s][r] for r in range(target)] for s in range(n)]


def _first_satisfying(results: list[dict[int, Replication]], rule: StopRule, first: int, available: int) -> int | None:
    """The smallest replication count (>= first) at which the rule holds for every scenario and arm."""
    for count in range(max(first, 2), available + 1):
        per_arm: list[list[float]] = []
        for per_scenario in results:
            arms = per_scenario[0].keys()
            for arm in arms:
                per_arm.append([per_scenario[r][arm].metrics[rule.metric] for r in range(count)])
        if rule.satisfied(per_arm):
            return count
    return None


def refuse_unshardable(scenario: Scenario, *, file: str | None = None) -> None:
    """A one-line ScenarioError when ``scenario`` cannot run sharded (docs/model.md §16.5), else nothing.
    ``file`` names where the scenario came from (a file, or the option that changed it)."""
    problem = sharding_problem(scenario)
    if problem is not None:
        field, _, reason = problem.partition(": ")
        raise ScenarioError(reason, file=file, field=field, allowed="run it without --shards")


def resolve_entropy(seed: int | None, scenario_seed: int | None) -> int:
    """The run's root entropy: the given seed, else the scenario's, else fresh OS entropy."""
    chosen = seed if seed is not None else scenario_seed
    return int(root_sequence(chosen).entropy)  # type: ignore[arg-type]


def run(
    scenario: Scenario,
    *,
    replications: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    until: StopRule | str | None = None,
    progress: ProgressCallback | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    shards: int | None = None,
) -> RunResult:
    """Simulate ``replications`` replications of every arm of ``scenario``.

    ``seed`` overrides the scenario's own; with neither, fresh entropy is drawn and recorded in the
    manifest (``seed_entropy``) so the run can be repeated exactly with ``seed=<that number>``.
    ``until`` ("metric:relative_halfwidth" or a StopRule) keeps adding replications until every arm's CI
    on that metric is that tight (``replications`` is then the minimum). ``shards`` splits each replication's
    customers into that many shards (on the Dask workers with ``engine="dask"``), with the same results
    (docs/model.md §16); a scenario that cannot run sharded raises ScenarioError before anything runs.
    """
    n = replications if replications is not None else scenario.replications
    if n < 1:
        raise ValueError("replications must be at least 1")
    rule = StopRule.parse(until) if isinstance(until, str) else until
    if shards is not None:
        refuse_unshardable(scenario)  # said before any worker starts
    entropy = resolve_entropy(seed, scenario.seed)
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with Executor(workers, engine=engine, scheduler=scheduler, shards=shards) as executor:
        (results,) = replicate([scenario], entropy, n, executor, until=rule, progress=progress)
    manifest = build_manifest(
        scenario.name,
        entropy=entropy,
        replications=len(results),
        workers=workers,
        wall_time_s=time.perf_counter() - started,
        started_at=started_at,
        until=rule,
        engine=engine,
        scheduler=scheduler,
        shards=shards,
    )
    return RunResult(scenario=scenario, seed_entropy=entropy, replications=results, manifest=manifest)


def build_manifest(
    name: str,
    *,
    entropy: int,
    replications: int,
    workers: int,
    wall_time_s: float,
    started_at: str,
    until: StopRule | None = None,
    engine: str = "local",
    **extra: Any,
) -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for package in ("masssim", "numpy", "scipy", "simpy", "plotly", "pydantic", "click", "rich"):
        try:
            packages[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            packages[package] = None
    return {
        "scenario": name,
        "seed_entropy": str(entropy),
        "replications": replications,
        "until": None
        if until is None
        else {"metric": until.metric, "relative_halfwidth": until.relative_halfwidth, "max": until.max_replications},
        "workers": workers,
        "started_at": started_at,
        "wall_time_s": round(wall_time_s, 3),
        "engine": engine,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": packages,
        "git_commit": git_commit(),
        "command": sys.argv,
        **extra,
    }


def git_commit() -> str | None:
    """The commit of the masssim source tree in use, when it is a git checkout (None otherwise)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
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
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty.stdout.strip() else "")
