"""Saved results read back: ``masssim report`` rebuilds the report of a run, a comparison or a sweep, and
``masssim.load_results`` turns any of them into tidy tables (rows of plain values; ``.to_pandas()`` when
pandas is installed).

The folder says what it holds: a sweep has ``spec.json``; a comparison's ``summary.json`` has
``"kind": "comparison"``; anything else with ``summary.json`` is a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from masssim.config.errors import ScenarioError
from masssim.experiments.sweep import load_sweep
from masssim.model.metrics import REGISTRY
from masssim.reporting.results import atomic_write_text, load_run
from masssim.scenario.load import scenario_from_toml

Kind = Literal["run", "comparison", "sweep"]


def kind_of(folder: str | Path) -> Kind:
    folder = Path(folder)
    if (folder / "spec.json").is_file():
        return "sweep"
    summary = folder / "summary.json"
    if not summary.is_file():
        raise ScenarioError(
            "is not a results folder (no summary.json or spec.json)",
            file=str(folder),
            allowed="a folder written by masssim run, compare or sweep",
        )
    data = _read_json(summary)  # not an object: read as a run, whose loader names what is wrong
    return "comparison" if isinstance(data, dict) and data.get("kind") == "comparison" else "run"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"is not valid JSON: {exc}", file=str(path)) from None
    return data


def rebuild_report(folder: str | Path, metric: str | None = None) -> Path:
    """Write ``report.html`` of a saved run, comparison or sweep again from what was saved; its path.
    ``metric``: the metric a sweep report is read on (default as in masssim sweep)."""
    folder = Path(folder)
    kind = kind_of(folder)
    if metric is not None and metric not in REGISTRY:
        raise ScenarioError("unknown metric", file="--metric", value=metric, allowed="a metric of docs/model.md §7")
    try:
        if kind == "sweep":
            # plotly is imported only when a report is written (start-up speed)
            from masssim.reporting.report_sweep import render_sweep

            swept = load_sweep(folder)
            toml = folder / "scenario.toml"
            base = scenario_from_toml(toml.read_text(encoding="utf-8"), file=str(toml))
            page = render_sweep(swept.grid, swept.cells, base, metric)
        elif kind == "comparison":
            # plotly is imported only when a report is written (start-up speed)
            from masssim.reporting.report_compare import render_comparison

            page = render_comparison(_read_json(folder / "summary.json"))
        else:
            # plotly is imported only when a report is written (start-up speed)
            from masssim.reporting.report import render_report

            summary, columns, scenario = load_run(folder)
            page = render_report(summary, columns, scenario)
    except ScenarioError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:  # a summary.json edited by hand
        raise ScenarioError(
            f"does not hold a summary masssim can read ({type(exc).__name__}: {exc})",
            file=str(folder / "summary.json"),
            allowed="the summary.json written by masssim run, compare or sweep",
        ) from None
    atomic_write_text(folder / "report.html", page)
    return folder / "report.html"


@dataclass
class Results:
    """Saved results as tidy tables.

    ``summary``: one row per strategy (arm, compared label) and metric [and sweep cell] with mean, CI, n and
    unit. ``replications``: one row per strategy, metric [, cell] and replication with its value. ``timeseries``
    (runs only): one row per replication, arm and day. Swept parameters are columns of their own.
    """

    kind: Kind
    folder: Path
    summary: list[dict[str, Any]] = field(default_factory=list)
    replications: list[dict[str, Any]] = field(default_factory=list)
    timeseries: list[dict[str, Any]] = field(default_factory=list)

    def to_pandas(self) -> dict[str, Any]:
        """The tables as pandas DataFrames (``pip install 'masssim[pandas]'``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install 'masssim[pandas]'") from None
        tables = {"summary": self.summary, "replications": self.replications, "timeseries": self.timeseries}
        return {name: pd.DataFrame(rows) for name, rows in tables.items()}


def _rows(arms: dict[str, Any], extra: dict[str, Any], into: Results) -> None:
    for strategy, metrics in arms.items():
        for metric, stat in metrics.items():
            if metric not in REGISTRY:
                continue
            into.summary.append(
                {
                    **extra,
                    "strategy": strategy,
                    "metric": metric,
                    "unit": REGISTRY[metric].unit,
                    "mean": stat.get("mean"),
                    "ci_low": stat.get("ci_low"),
                    "ci_high": stat.get("ci_high"),
                    "n": stat.get("n"),
                }
            )
            for r, value in enumerate(stat.get("values") or []):
                into.replications.append(
                    {**extra, "strategy": strategy, "metric": metric, "replication": r, "value": value}
                )


def _plain(value: Any) -> Any:
    # numpy scalars become Python numbers (the arm column already holds str).
    return value.item() if hasattr(value, "item") else value


def load_results(folder: str | Path) -> Results:
    """Any saved run, comparison or sweep folder as tidy tables (see :class:`Results`)."""
    folder = Path(folder)
    kind = kind_of(folder)
    out = Results(kind, folder)
    if kind == "sweep":
        swept = load_sweep(folder)
        for cell in swept.cells:
            extra = {"cell": cell["index"], **{path: cell["overrides"][path] for path in swept.grid}}
            _rows(cell["arms"], extra, out)
        return out
    _rows(_read_json(folder / "summary.json").get("arms") or {}, {}, out)
    if kind == "run":
        _, columns, _ = load_run(folder)
        names = list(columns)
        length = len(columns[names[0]]) if names else 0
        out.timeseries = [{name: _plain(columns[name][i]) for name in names} for i in range(length)]
    return out
