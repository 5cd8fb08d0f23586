"""Gallery lessons: what each scenario teaches, the command that shows it, and whether it held in a run.

A gallery scenario's ``[lesson]`` table (masssim.config.schema.Lesson) declares its purpose, the kind of run
(run, compare or sweep; compare with its variants), the headline metrics and its claims. From that one
declaration this module builds the exact command (so the command printed by ``masssim scenarios`` is the
one ``masssim lessons check`` runs), checks names against the metric registry and the scenario's
strategies, reads a finished run claim by claim, and runs the whole gallery.

A claim holds when the paired 95% CI of ``metric(arm) - metric(versus)`` excludes 0 on the claimed side.
Strategies of one run, compare or sweep share their seeds, so replication r of one is paired with
replication r of the other, across sweep cells too. A market claim (``[[lesson.market_claims]]``, read by
:mod:`masssim.reporting.lesson_market`) is about the run's market section: every brand's buying.
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from masssim.config.errors import ScenarioError
from masssim.config.schema import Scenario
from masssim.experiments.compare import compare, parse_variant
from masssim.experiments.replications import run as run_scenario
from masssim.experiments.sweep import sweep
from masssim.model.metrics import REGISTRY
from masssim.reporting.lesson_market import MarketClaimResult, market_problems
from masssim.reporting.lesson_reading import ClaimResult, Source, evaluate
from masssim.reporting.results import atomic_write_text
from masssim.scenario.load import load_scenario

GALLERY = Path(__file__).parents[1] / "gallery"

# The lessons run with two worker processes: the check's time budget is set for a 2-core machine.
CHECK_WORKERS = 2


# ---------------------------------------------------------------- finding scenarios


def gallery_files() -> list[Path]:
    """The scenario files shipped with the package, by name."""
    return sorted(GALLERY.glob("*.toml"))


def resolve_scenario(text: str | Path) -> Path:
    """A path as given if it exists; else a gallery scenario by name (``quickstart`` or ``quickstart.toml``),
    so that gallery commands work from any directory. Unknown names are left for the loader to report."""
    path = Path(text)
    try:
        if path.exists() or len(path.parts) != 1:
            return path
        candidate = GALLERY / (path.name if path.suffix == ".toml" else f"{path.name}.toml")
        return candidate if candidate.is_file() else path
    except (OSError, ValueError):  # a name too long or with a NUL byte: the loader says what is wrong with it
        return path


# ---------------------------------------------------------------- the declaration


def strategies(scenario: Scenario) -> list[str]:
    """The strategy labels a lesson's run produces: arm names, or compare labels (``variant[/arm]``)."""
    lesson = scenario.lesson
    arms = [a.name for a in scenario.arms]
    if lesson is None or lesson.command != "compare":
        return arms
    names = [lesson.baseline or scenario.name, *(v.partition(":")[0].strip() for v in lesson.variants)]
    return names if len(arms) == 1 else [f"{n}/{a}" for n in names for a in arms]


def problems(scenario: Scenario, file: str | None = None) -> None:
    """Raise ScenarioError when the lesson names a metric, strategy or sweep cell that does not exist."""
    lesson = scenario.lesson
    if lesson is None:
        return
    known = strategies(scenario)

    def fail(field: str, value: Any, reason: str, allowed: str | None = None) -> None:
        raise ScenarioError(reason, file=file, field=f"lesson.{field}", value=value, allowed=allowed)

    if lesson.command == "sweep" and not scenario.sweep:
        fail("command", "sweep", "a sweep lesson needs a [sweep] table")
    if lesson.command != "sweep" and scenario.sweep:
        fail("command", lesson.command, "the scenario has a [sweep] table: its lesson is a sweep")
    if lesson.variants:
        for i, text in enumerate(lesson.variants):  # each variant is validated like a --variant option
            parse_variant(text, scenario, source=f"lesson.variants[{i}]")
    for i, metric in enumerate(lesson.headline):
        if metric not in REGISTRY:
            fail(f"headline[{i}]", metric, "unknown metric", "a metric of docs/model.md section 7")
    for i, claim in enumerate(lesson.claims):
        if claim.metric not in REGISTRY:
            fail(f"claims[{i}].metric", claim.metric, "unknown metric", "a metric of docs/model.md section 7")
        for key in ("arm", "versus"):
            if getattr(claim, key) not in known:
                fail(f"claims[{i}].{key}", getattr(claim, key), "unknown strategy", ", ".join(known))
        for key in ("at", "versus_at", "minus_at"):
            cell = getattr(claim, key)
            if cell is None:
                continue
            if lesson.command != "sweep":
                fail(f"claims[{i}].{key}", cell, "only a sweep lesson has cells")
            for path, value in cell.items():
                if value not in (scenario.sweep or {}).get(path, []):
                    fail(f"claims[{i}].{key}", f"{path}={value}", "not a cell of the [sweep] table")
    market_problems(lesson, [brand.name for brand in scenario.market.brands], fail)


def command(scenario: Scenario, workers: int = CHECK_WORKERS, path: Path | None = None) -> str:
    """The command that runs the lesson as shipped: a gallery scenario by name (found from any directory),
    another by ``path``."""
    lesson = scenario.lesson
    kind = lesson.command if lesson else ("sweep" if scenario.sweep else "run")
    in_gallery = path is None or path.resolve().parent == GALLERY.resolve()
    parts = ["masssim", kind, scenario.name if in_gallery else str(path)]
    if lesson is not None:
        for variant in lesson.variants:
            parts += ["--variant", variant]
    parts += ["--workers", str(workers)]
    return shlex.join(parts)


# ---------------------------------------------------------------- reading a finished run


@dataclass
class LessonRun:
    name: str
    command: str
    purpose: str
    claims: list[ClaimResult | MarketClaimResult]
    wall_time_s: float

    @property
    def held(self) -> bool:
        return all(c.held for c in self.claims)


def execute(scenario: Scenario, *, workers: int, out: Path, progress: Any = None) -> Source:
    """Run a lesson as its command does (the scenario's own seed and replications) and save its results."""
    lesson = scenario.lesson
    kind = lesson.command if lesson else "run"
    if kind == "compare":
        variants = list(lesson.variants) if lesson else []
        result = compare(scenario, variants=variants, workers=workers, progress=progress)
        result.save(out)
        return Source(arms=result.summary["arms"])
    if kind == "sweep":
        swept = sweep(scenario, None, out=out, workers=workers, progress=progress)
        return Source(cells=swept.cells)
    run = run_scenario(scenario, workers=workers, progress=progress)
    run.save(out)
    return Source(arms=run.summary["arms"], market=run.summary.get("market"))


def check(
    files: Sequence[Path] | None = None,
    *,
    workers: int = CHECK_WORKERS,
    out: Path | None = None,
    on_done: Callable[[LessonRun], None] | None = None,
) -> list[LessonRun]:
    """Run every gallery lesson as shipped and read its claims. Results go to ``out`` (default: a fresh
    temporary folder, so that a sweep never resumes cells of an earlier version)."""
    import time

    runs = []
    with tempfile.TemporaryDirectory(prefix="masssim-lessons-") as tmp:
        folder = out if out is not None else Path(tmp)
        for path in files if files is not None else gallery_files():
            scenario = load_scenario(path)
            if scenario.lesson is None:
                continue
            problems(scenario, str(path))
            started = time.perf_counter()
            source = execute(scenario, workers=workers, out=folder)
            run = LessonRun(
                scenario.name,
                command(scenario, workers, Path(path)),
                scenario.lesson.purpose,
                evaluate(scenario.lesson, source),
                time.perf_counter() - started,
            )
            runs.append(run)
            if on_done is not None:
                on_done(run)
    return runs


DOCS_BEGIN = "<!-- begin: generated by `masssim lessons check --write-docs docs/model.md`; do not edit -->"
DOCS_END = "<!-- end: generated by masssim lessons check -->"


def markdown(runs: Sequence[LessonRun]) -> str:
    """The check's results as Markdown: per lesson its command and a table of its claims."""
    lines = []
    for run in runs:
        verdict = "every claim held" if run.held else "NOT every claim held"
        lines += [f"**`{run.name}`** — {run.purpose} ({verdict}; {run.wall_time_s:.0f} s)", ""]
        lines += [f"    {run.command}", ""]
        lines += ["| # | claim | paired difference (95% CI) | held |", "| --- | --- | --- | --- |"]
        for c in run.claims:
            held = "yes" if c.held else "NO"
            lines.append(f"| {c.index} | {c.subject} {c.claimed} | {c.difference_text()} | {held} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_docs(path: Path, runs: Sequence[LessonRun]) -> None:
    """Replace the generated section of ``path`` (between DOCS_BEGIN and DOCS_END) with ``markdown(runs)``."""
    text = path.read_text(encoding="utf-8")
    if DOCS_BEGIN not in text or DOCS_END not in text:
        raise ScenarioError("has no generated lessons section", file=str(path), allowed=f"a file with {DOCS_BEGIN}")
    head, rest = text.split(DOCS_BEGIN, 1)
    _, tail = rest.split(DOCS_END, 1)
    atomic_write_text(path, f"{head}{DOCS_BEGIN}\n{markdown(runs)}{DOCS_END}{tail}")
