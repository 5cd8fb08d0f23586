"""Gallery lessons: what each scenario teaches, the command that shows it, and whether it held in a run.

A gallery scenario's ``[lesson]`` table (masssim.scenario.Lesson) declares its purpose, the kind of run
(run, compare or sweep; compare with its variants), the headline metrics and its claims. From that one
declaration this module builds the exact command (so the command printed by ``masssim scenarios`` is the
one ``masssim lessons check`` runs), checks names against the metric registry and the scenario's
strategies, reads a finished run claim by claim, and runs the whole gallery.

A claim holds when the paired 95% CI of ``metric(arm) - metric(versus)`` excludes 0 on the claimed side.
Strategies of one run, compare or sweep share their seeds, so replication r of one is paired with
replication r of the other, across sweep cells too. A market claim (``[[lesson.market_claims]]``, read by
:mod:`masssim.lesson_market`) is about the run's market section: every brand's buying.
"""

from __future__ import annotations

import math
import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from masssim.errors import ScenarioError
from masssim.lesson_market import MarketClaimResult, evaluate_market, market_problems
from masssim.metrics import REGISTRY
from masssim.narrative import count, duration, money, percent
from masssim.scenario import Lesson, Scenario, load_scenario
from masssim.stats import paired_difference

GALLERY = Path(__file__).parent / "gallery"

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
        from masssim.compare import parse_variant

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


@dataclass(frozen=True)
class Source:
    """Per-replication values of a finished lesson run: ``values(strategy, metric, cell)``.

    ``arms`` is ``summary["arms"]`` of a run or comparison; ``cells`` the cells of a sweep (each with
    ``overrides`` and ``arms``).
    """

    arms: dict[str, Any] | None = None
    cells: Sequence[dict[str, Any]] = ()
    market: dict[str, Any] | None = None  # the run's market section (summary["market"])

    def values(self, strategy: str, metric: str, cell: dict[str, Any] | None = None) -> list[float] | None:
        arms = self.arms if cell is None or not self.cells else self._cell(cell)
        stat = ((arms or {}).get(strategy) or {}).get(metric) or {}
        values = stat.get("values")
        return None if values is None else [float(v) for v in values]

    def _cell(self, where: dict[str, Any]) -> dict[str, Any] | None:
        for cell in self.cells:
            if all(_same(cell["overrides"].get(path), value) for path, value in where.items()):
                arms: dict[str, Any] = cell["arms"]
                return arms
        return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return bool(a == b)


def fmt(metric: str, value: float | None, *, difference: bool = False) -> str:
    """A metric's value in the unit a reader uses (a share's difference in percentage points)."""
    if value is None:
        return "n/a"
    unit = REGISTRY[metric].unit
    sign = "+" if difference and value > 0 else ""
    if unit == "share":
        return f"{sign}{100 * value:.1f} points" if difference else percent(value)
    if unit == "seconds":
        return sign + duration(value)
    if unit == "currency":
        return sign + money(value)
    if unit == "ratio" or (abs(value) < 10 and not float(value).is_integer()):
        return f"{sign}{value:.3g}"  # small means (messages per customer, ratios) need their decimals
    return sign + count(value)


def _interval(metric: str, stat: dict[str, Any], *, difference: bool = False) -> str:
    low, high = stat.get("ci_low"), stat.get("ci_high")
    text = fmt(metric, stat.get("mean"), difference=difference)
    if low is None or high is None:
        return text + " (one replication: no interval)"
    return f"{text} (95% CI {fmt(metric, low, difference=difference)} to {fmt(metric, high, difference=difference)})"


def _where(cell: dict[str, Any] | None) -> str:
    return "" if not cell else " at " + ", ".join(f"{p} = {v}" for p, v in cell.items())


@dataclass(frozen=True)
class ClaimResult:
    """One claim read on one run: the paired difference, and whether it held."""

    index: int
    metric: str
    arm: str
    versus: str
    sign: str
    at: dict[str, Any] | None
    versus_at: dict[str, Any] | None
    minus_at: dict[str, Any] | None
    difference: dict[str, Any] | None  # paired_difference(...) or None when the run lacks the values
    held: bool

    @property
    def subject(self) -> str:
        versus_at = self.versus_at if self.versus_at is not None else self.at
        left = f"'{self.arm}'{_where(self.at)}"
        right = f"'{self.versus}'{_where(versus_at)}"
        if self.minus_at is not None:
            pair = f"('{self.arm}' minus '{self.versus}')"
            return f"{self.metric}: {pair}{_where(self.at)} minus the same{_where(self.minus_at)}"
        return f"{self.metric}: {left} minus {right}"

    @property
    def claimed(self) -> str:
        return "above 0" if self.sign == "positive" else "below 0"

    def difference_text(self) -> str:
        return "n/a" if self.difference is None else _interval(self.metric, self.difference, difference=True)

    def sentence(self) -> str:
        if self.difference is None:
            return f"Claim {self.index} not read: this run lacks {self.subject}."
        diff = _interval(self.metric, self.difference, difference=True)
        if self.held:
            return f"Claim {self.index} held: {self.subject} is {diff}, {self.claimed} as claimed."
        why = "its CI includes 0" if self.difference.get("excludes_zero") is False else "the sign is the other one"
        if self.difference.get("excludes_zero") is None:
            why = "one replication gives no interval"
        return f"Claim {self.index} did NOT hold: {self.subject} is {diff}; claimed {self.claimed}, but {why}."


def evaluate(lesson: Lesson | dict[str, Any], source: Source) -> list[ClaimResult | MarketClaimResult]:
    """Every claim of ``lesson`` read on ``source``: the arms' claims, then the market claims."""
    spec = lesson if isinstance(lesson, Lesson) else Lesson.model_validate(lesson, strict=False)
    out: list[ClaimResult | MarketClaimResult] = []
    for i, claim in enumerate(spec.claims, start=1):
        versus_at = claim.versus_at if claim.versus_at is not None else claim.at
        a = source.values(claim.arm, claim.metric, claim.at)
        b = source.values(claim.versus, claim.metric, versus_at)
        diff = None
        if a is not None and b is not None and len(a) == len(b):
            diff = paired_difference(a, b, bounds=REGISTRY[claim.metric].bounds)
            if claim.minus_at is not None:
                a2 = source.values(claim.arm, claim.metric, claim.minus_at)
                b2 = source.values(claim.versus, claim.metric, claim.minus_at)
                diff = None
                if a2 is not None and b2 is not None and len(a2) == len(b2) == len(a):
                    # Every cell shares the seeds: the two differences pair replication by replication too.
                    first = [x - y for x, y in zip(a, b, strict=True)]
                    diff = paired_difference(first, [x - y for x, y in zip(a2, b2, strict=True)])
        held = bool(
            diff is not None
            and diff.get("excludes_zero")
            and (float(diff["mean"] or 0.0) > 0) == (claim.sign == "positive")
        )
        out.append(
            ClaimResult(
                i,
                claim.metric,
                claim.arm,
                claim.versus,
                claim.sign,
                claim.at,
                claim.versus_at,
                claim.minus_at,
                diff,
                held,
            )
        )
    out += evaluate_market(spec.market_claims, source.market, first_index=len(spec.claims) + 1)
    return out


def read_headline(lesson: Lesson | dict[str, Any], arms: dict[str, Any]) -> list[str]:
    """One sentence per headline metric: each strategy's mean and 95% CI (a run or a comparison)."""
    spec = lesson if isinstance(lesson, Lesson) else Lesson.model_validate(lesson, strict=False)
    lines = []
    for metric in spec.headline:
        parts = [f"'{label}' {_interval(metric, m[metric])}" for label, m in arms.items() if metric in m]
        lines.append(f"{metric} ({REGISTRY[metric].definition}): " + "; ".join(parts) + ".")
    return lines


def read_headline_sweep(lesson: Lesson | dict[str, Any], cells: Sequence[dict[str, Any]]) -> list[str]:
    """One sentence per headline metric and arm: its mean in each cell, in the order of the grid."""
    spec = lesson if isinstance(lesson, Lesson) else Lesson.model_validate(lesson, strict=False)
    lines = []
    arms = list(cells[0]["arms"]) if cells else []
    for metric in spec.headline:
        for arm in arms:
            parts = []
            for cell in cells:
                where = ", ".join(f"{p} = {v}" for p, v in cell["overrides"].items())
                stat = cell["arms"][arm][metric]
                parts.append(f"{fmt(metric, stat.get('mean'))} at {where}")
            who = f" of '{arm}'" if len(arms) > 1 else ""
            lines.append(f"{metric}{who}: " + "; ".join(parts) + ".")
    return lines


def read_lesson(lesson: Lesson | dict[str, Any], source: Source) -> list[str]:
    """What a reading of a lesson run opens with: its purpose, headline metrics and each claim's verdict."""
    spec = lesson if isinstance(lesson, Lesson) else Lesson.model_validate(lesson, strict=False)
    lines = [f"Lesson: {spec.purpose}"]
    if source.cells:
        lines += read_headline_sweep(spec, source.cells)
    elif source.arms:
        lines += read_headline(spec, source.arms)
    lines += [result.sentence() for result in evaluate(spec, source)]
    return lines


# ---------------------------------------------------------------- running the gallery


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
    import masssim

    lesson = scenario.lesson
    kind = lesson.command if lesson else "run"
    if kind == "compare":
        variants = list(lesson.variants) if lesson else []
        result = masssim.compare(scenario, variants=variants, workers=workers, progress=progress)
        result.save(out)
        return Source(arms=result.summary["arms"])
    if kind == "sweep":
        swept = masssim.sweep(scenario, None, out=out, workers=workers, progress=progress)
        return Source(cells=swept.cells)
    run = masssim.run(scenario, workers=workers, progress=progress)
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
    from masssim.results import atomic_write_text

    text = path.read_text(encoding="utf-8")
    if DOCS_BEGIN not in text or DOCS_END not in text:
        raise ScenarioError("has no generated lessons section", file=str(path), allowed=f"a file with {DOCS_BEGIN}")
    head, rest = text.split(DOCS_BEGIN, 1)
    _, tail = rest.split(DOCS_END, 1)
    atomic_write_text(path, f"{head}{DOCS_BEGIN}\n{markdown(runs)}{DOCS_END}{tail}")
