"""A run's results: the summary over replications, the daily time series, and writing them atomically.

Layout of a saved run (DESIGN §5)::

    <out>/<scenario>/<run-id>/
        scenario.toml    the fully resolved scenario (every default filled in)
        manifest.json    seed entropy, versions, git commit, wall time, command
        summary.json     per arm and metric: mean and 95% CI over replications; paired differences
        timeseries.csv   one row per replication, arm and day
        report.html      the plotly report, readable offline

The directory is built as ``<run-id>.partial`` and renamed when complete, and every file inside is
written to a temporary name and renamed, so an interrupted run never leaves something that looks done.
The ``.partial`` directories a killed run leaves behind are removed by the next save into the same folder
(:func:`publish_directory`). Nothing is written outside the output folder: the scenario name and the run id
are single folder names, checked when the scenario is loaded and again here.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from masssim.config.errors import ScenarioError
from masssim.config.schema import NAME_PATTERN, Scenario
from masssim.engine.outcome import ArmOutcome
from masssim.estimation.holdout import MIN_HOLDOUT_BUYERS, buyers, pooled_bootstrap_t_interval
from masssim.estimation.intervals import mean_ci, paired_difference
from masssim.model.market import arm_market_section, market_section
from masssim.model.metrics import ALL, REGISTRY, TIMESERIES, pool_bounds
from masssim.model.streams import generator, replication_sequence, root_sequence, run_level_sequence
from masssim.scenario.load import scenario_from_toml

HOLDOUT_PURPOSE = 3  # run-level stream of the pooled holdout interval (never renumber; 1, 2: inbound)

try:  # advisory locks tell a killed run's leftovers from a run still writing; without them nothing is removed
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

_SAFE_NAME = re.compile(NAME_PATTERN)


def check_output_dir(out: str | Path, *, option: str = "--out") -> Path:
    """Prove ``out`` can hold results, before any simulation; ScenarioError naming it if not.

    Folders created for the check are removed again, so a command that then fails on other input leaves
    nothing behind; saving creates them for real.
    """
    path = Path(out)
    allowed = "a folder you can write to (created if missing)"
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ScenarioError("is a file, not a folder", file=str(path), field=option, allowed=allowed) from None
    except NotADirectoryError:
        raise ScenarioError(
            "cannot be created: part of the path is a file", file=str(path), field=option, allowed=allowed
        ) from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScenarioError(f"cannot be created ({reason})", file=str(path), field=option, allowed=allowed) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".masssim-write-check.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ScenarioError(
            f"cannot be written to ({exc.strerror or exc})", file=str(path), field=option, allowed=allowed
        ) from None
    finally:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
    return path


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file readable by its owner only; results are meant to be shared like any file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def pool_summary(replications: list[dict[str, Any]], arms: list[str]) -> dict[str, Any]:
    """Per arm and responder pool (inbound): mean and CI of each pool figure over the replications."""
    out: dict[str, Any] = {}
    for arm in arms:
        names = getattr(replications[0][arm], "pools", {}) if replications else {}
        if not names:
            continue
        out[arm] = {}
        for pool, figures in names.items():
            out[arm][pool] = {}
            for figure in figures:
                values = [rep[arm].pools[pool][figure] for rep in replications]
                out[arm][pool][figure] = {**mean_ci(values, bounds=pool_bounds(figure)), "values": values}
    return out


def holdout_summary(
    replications: list[dict[str, Any]], arms: list[str], seed_entropy: int, scenario: Scenario
) -> dict[str, Any]:
    """Per arm: the mean holdout estimate over the replications with its bootstrap-t interval
    (masssim.estimation.holdout, every replication's customers resampled within their groups), in purchases,
    revenue and profit, and the holdout's buyers over all replications (``too_small`` below
    MIN_HOLDOUT_BUYERS). With one replication the interval is that replication's own
    (incremental_purchases_low/high). The profit interval subtracts the replications' mean cost, which is fixed
    given the replications, as the estimate's target is."""
    out: dict[str, Any] = {}
    for arm in arms:
        outcomes = [rep[arm] for rep in replications]
        found = [getattr(o, "purchase_histograms", None) for o in outcomes]
        groups = [g for g in found if g is not None]
        if not groups or len(groups) < len(found):
            continue
        if len(outcomes) == 1:
            m = outcomes[0].metrics
            mean, low, high = (
                m["incremental_purchases"],
                m["incremental_purchases_low"],
                m["incremental_purchases_high"],
            )
        else:
            rng = generator(run_level_sequence(replication_sequence(root_sequence(seed_entropy), 0), HOLDOUT_PURPOSE))
            mean, low, high = pooled_bootstrap_t_interval(groups, rng)
        cost = float(np.mean([o.metrics["cost_total"] for o in outcomes]))
        price, margin = scenario.market.price, scenario.market.gross_margin_share
        holdout_buyers = sum(buyers(h) for _, h in groups)
        out[arm] = {
            "incremental_purchases": {"mean": mean, "ci_low": low, "ci_high": high},
            "incremental_revenue": {"mean": mean * price, "ci_low": low * price, "ci_high": high * price},
            "incremental_profit": {
                "mean": mean * price * margin - cost,
                "ci_low": low * price * margin - cost,
                "ci_high": high * price * margin - cost,
            },
            "holdout_buyers": holdout_buyers,
            "too_small": holdout_buyers < MIN_HOLDOUT_BUYERS,
        }
    return out


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return _clean(value.item())
    return value


def dumps_json(data: Any) -> str:
    return json.dumps(_clean(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


@dataclass
class RunResult:
    """The outcome of ``masssim.run``: ``.summary`` (dict), ``.timeseries`` (columns), ``.save(dir)``."""

    scenario: Scenario
    seed_entropy: int
    replications: list[dict[str, ArmOutcome]]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def arm_names(self) -> list[str]:
        return [arm.name for arm in self.scenario.arms]

    def values(self, arm: str, metric: str) -> list[float]:
        """The metric's value in each replication, in replication order."""
        return [rep[arm].metrics[metric] for rep in self.replications]

    @property
    def summary(self) -> dict[str, Any]:
        arms = self.arm_names
        baseline = arms[0]
        out: dict[str, Any] = {
            "scenario": self.scenario.name,
            "replications": len(self.replications),
            "seed_entropy": str(self.seed_entropy),
            "confidence": 0.95,
            "baseline_arm": baseline,
            "units": {name: REGISTRY[name].unit for name in ALL},
            "arms": {},
            "differences_vs_baseline": {},
        }
        for arm in arms:
            out["arms"][arm] = {}
            for metric in ALL:
                values = self.values(arm, metric)
                out["arms"][arm][metric] = {**mean_ci(values, bounds=REGISTRY[metric].bounds), "values": values}
        for arm in arms[1:]:
            out["differences_vs_baseline"][arm] = {
                metric: paired_difference(
                    self.values(arm, metric), self.values(baseline, metric), bounds=REGISTRY[metric].bounds
                )
                for metric in ALL
            }
        pools = pool_summary(self.replications, arms)
        if pools:
            out["pools"] = pools
        tallies = [rep[arms[0]].market for rep in self.replications] if self.replications else []
        if tallies and all(t is not None for t in tallies):
            out["market"] = market_section(self.scenario, tallies)  # type: ignore[arg-type]
            by_arm = {arm: [rep[arm].arm_market for rep in self.replications] for arm in arms}
            if all(t is not None for counts in by_arm.values() for t in counts):
                out["market"]["by_arm"] = arm_market_section(self.scenario, tallies, by_arm)  # type: ignore[arg-type]
        holdout = holdout_summary(self.replications, arms, self.seed_entropy, self.scenario)
        if holdout:
            out["holdout"] = holdout
        return _clean(out)

    @property
    def timeseries(self) -> dict[str, np.ndarray]:
        """Columns ``replication``, ``arm``, ``day`` and one per time-series metric; one row per day."""
        reps, arms, days, blocks = [], [], [], []
        for r, rep in enumerate(self.replications):
            for arm in self.arm_names:
                series = rep[arm].series
                n = series.shape[0]
                reps.append(np.full(n, r))
                arms.append(np.full(n, arm, dtype=object))
                days.append(np.arange(n))
                blocks.append(series)
        table = np.vstack(blocks) if blocks else np.zeros((0, len(TIMESERIES)))
        columns: dict[str, np.ndarray] = {
            "replication": np.concatenate(reps) if reps else np.zeros(0, int),
            "arm": np.concatenate(arms) if arms else np.zeros(0, object),
            "day": np.concatenate(days) if days else np.zeros(0, int),
        }
        for i, name in enumerate(TIMESERIES):
            columns[name] = table[:, i]
        return columns

    def timeseries_csv(self) -> str:
        cols = self.timeseries
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        names = list(cols)
        writer.writerow(names)
        for i in range(cols["day"].shape[0]):
            writer.writerow([_csv_cell(cols[name][i]) for name in names])
        return buffer.getvalue()

    def save(self, out_dir: str | Path = "results", run_id: str | None = None) -> Path:
        """Write the run under ``out_dir/<scenario>/<run-id>/`` atomically; returns the run directory."""
        # plotly is imported only when a report is written
        from masssim.reporting.report import render_report

        run_id = run_id or f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{self.seed_entropy % 16**6:06x}"

        def write(partial: Path) -> None:
            atomic_write_text(partial / "scenario.toml", tomli_w.dumps(self.scenario.to_toml_dict()))
            atomic_write_text(partial / "summary.json", dumps_json(self.summary))
            atomic_write_text(partial / "timeseries.csv", self.timeseries_csv())
            atomic_write_text(partial / "manifest.json", dumps_json(self.manifest))
            atomic_write_text(partial / "report.html", render_report(self.summary, self.timeseries, self.scenario))

        return publish_directory(Path(out_dir) / self.scenario.name, run_id, write)


def publish_directory(base: Path, run_id: str, write: Callable[[Path], None]) -> Path:
    """Build a result directory as ``<run_id>.partial`` with ``write``, then rename it into place.

    A run interrupted while writing leaves only the ``.partial`` directory, which never looks complete; the
    next save into ``base`` removes such leftovers once no other run is writing there. An existing run id
    gets a numbered suffix instead of being overwritten.
    """
    if not _SAFE_NAME.match(base.name) or not _SAFE_NAME.match(run_id):
        # the scenario name is checked at load time; this guards the Python API (a run_id of "../x")
        raise ScenarioError(
            "is not a single folder name",
            file=str(base / run_id),
            value=run_id if not _SAFE_NAME.match(run_id) else base.name,
            allowed="letters, digits, '_', '-' and '.', not starting with '.'",
        )
    base.mkdir(parents=True, exist_ok=True)
    with _writer_lock(base):
        final = base / run_id
        suffix = 1
        while final.exists() or final.with_name(final.name + ".partial").exists():
            suffix += 1
            final = base / f"{run_id}-{suffix}"
        partial = final.with_name(final.name + ".partial")
        partial.mkdir(exist_ok=False)
        write(partial)
        os.replace(partial, final)
    return final


@contextlib.contextmanager
def _writer_lock(base: Path) -> Any:
    """Held (shared) by every run writing into ``base``; whoever gets it exclusively first removes leftovers.

    The lock dies with its process, so an exclusive lock granted means no run is writing here now: every
    ``.partial`` directory is then the leftover of a killed run.
    """
    if fcntl is None:  # pragma: no cover - not on POSIX: nothing is removed
        yield
        return
    # The lock is on the folder itself (no lock file to clutter the results).
    fd = os.open(base, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another run is writing: its .partial is not a leftover
            pass
        else:
            for leftover in base.glob("*.partial"):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def table_csv(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts (same keys) as CSV text; None becomes an empty cell."""
    buffer = io.StringIO()
    if not rows:
        return ""
    writer = csv.writer(buffer, lineterminator="\n")
    names = list(rows[0])
    writer.writerow(names)
    for row in rows:
        writer.writerow(["" if row[name] is None else _csv_cell(row[name]) for name in names])
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        f = float(value)
        return int(f) if f.is_integer() else repr(f)
    return value


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], Scenario]:
    """Read a saved run back (summary, time series columns, scenario) to rebuild its report."""
    run_dir = Path(run_dir)
    needed = ["summary.json", "timeseries.csv", "scenario.toml"]
    for name in needed:
        if not (run_dir / name).is_file():
            raise ScenarioError(
                f"is not a complete run directory ({name} is missing)",
                file=str(run_dir),
                allowed="a directory written by `masssim run` (results/<scenario>/<run-id>)",
            )
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # ValueError covers JSONDecodeError and UnicodeDecodeError
        raise ScenarioError(f"is not valid JSON: {exc}", file=str(run_dir / "summary.json")) from None
    if not isinstance(summary, dict):
        raise ScenarioError("is not a run summary (a JSON object)", file=str(run_dir / "summary.json"))
    try:
        toml_text = (run_dir / "scenario.toml").read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScenarioError("is not UTF-8 text", file=str(run_dir / "scenario.toml")) from None
    scenario = scenario_from_toml(toml_text, file=str(run_dir / "scenario.toml"))
    series = run_dir / "timeseries.csv"
    try:
        with series.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        columns: dict[str, np.ndarray] = {}
        if rows:
            for name in rows[0]:
                raw = [row[name] for row in rows]
                if name == "arm":
                    columns[name] = np.array(raw, dtype=object)
                elif name in ("replication", "day"):
                    columns[name] = np.array([int(v) for v in raw])
                else:
                    columns[name] = np.array([float(v) for v in raw])
    except (ValueError, TypeError, csv.Error) as exc:  # a cell that is not a number, a row cut short, ...
        raise ScenarioError(
            f"is not a time series masssim wrote ({exc})",
            file=str(series),
            allowed="the timeseries.csv written by `masssim run`",
        ) from None
    return summary, columns, scenario
