"""Reading a gallery lesson off finished results: each claim held or not, the headline metrics, in words.

The reports read lessons through this module; running and checking the gallery is :mod:`masssim.lessons.gallery`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from masssim.config.schema import Lesson
from masssim.estimation.intervals import paired_difference
from masssim.model.metrics import REGISTRY
from masssim.reporting.lesson_market import MarketClaimResult, evaluate_market
from masssim.reporting.narrative import count, duration, money, percent


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
