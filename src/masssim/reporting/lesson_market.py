"""Lesson claims about the market section: what a run says about every brand's buying.

A market claim (masssim.config.schema.MarketClaim) names a figure of the run's market section per replication
(``duplication.ours.rival_a``: the share of our buyers who also bought rival_a) and compares it with another
figure or a number, replication by replication. With ``sign`` it holds when the 95% CI of the difference
excludes 0 on that side; with ``within`` when the whole 95% CI lies inside (-within, +within). The values
are the replications' own (``values`` in summary.json), so the interval is the one every other claim uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from masssim.config.schema import Lesson, MarketClaim
from masssim.estimation.intervals import paired_difference

BRAND_KINDS = ("penetration", "purchases_per_buyer", "share", "bought_a_rival")
PAIR_KINDS = ("duplication", "duplication_coefficient")
WORDS = {
    "penetration": "penetration of {0}",
    "purchases_per_buyer": "purchases per buyer of {0}",
    "share": "share of purchases of {0}",
    "bought_a_rival": "share of the buyers of {0} who bought another brand",
    "duplication": "share of the buyers of {0} who also bought {1}",
    "duplication_coefficient": "how many times as often the buyers of {0} bought {1} as all customers did",
}


def _parse(figure: str) -> tuple[str, list[str]]:
    kind, _, rest = figure.partition(".")
    return kind, rest.split(".") if rest else []


def figure_problem(figure: str, brands: Sequence[str]) -> str | None:
    """Why ``figure`` does not name a market figure of a scenario with these brands, or None."""
    kind, names = _parse(figure)
    if kind in BRAND_KINDS:
        wanted = 1
    elif kind in PAIR_KINDS:
        wanted = 2
    else:
        return f"unknown market figure; allowed: {', '.join(BRAND_KINDS + PAIR_KINDS)} (KIND.BRAND[.OTHER])"
    if len(names) != wanted:
        shape = "KIND.BRAND" if wanted == 1 else "KIND.BRAND.OTHER"
        return f"{kind} is written {shape}"
    unknown = [n for n in names if n not in brands]
    if unknown:
        return f"unknown brand {unknown[0]!r}; brands: {', '.join(brands)}"
    if wanted == 2 and names[0] == names[1]:
        return "name two different brands"
    return None


def market_problems(lesson: Lesson, brands: Sequence[str], fail: Callable[..., None]) -> None:
    """Call ``fail(field, value, reason)`` for the first market claim naming something that does not exist."""
    for i, claim in enumerate(lesson.market_claims):
        for key in ("figure", "versus"):
            value = getattr(claim, key)
            if isinstance(value, str):
                problem = figure_problem(value, brands)
                if problem is not None:
                    fail(f"market_claims[{i}].{key}", value, problem)


def figure_values(market: dict[str, Any], figure: str) -> list[float] | None:
    """The figure's value in each replication, or None when the section lacks it."""
    kind, names = _parse(figure)
    brands = market.get("brands") or {}
    try:
        if kind in BRAND_KINDS:
            return [float(v) for v in brands[names[0]][kind]["values"]]
        duplication = [float(v) for v in brands[names[0]]["duplication"][names[1]]["values"]]
        if kind == "duplication":
            return duplication
        penetration = [float(v) for v in brands[names[1]]["penetration"]["values"]]
        return [d / b if b > 0 else math.nan for d, b in zip(duplication, penetration, strict=True)]
    except (KeyError, IndexError, TypeError):
        return None


def describe(figure: str | float, share: bool = False) -> str:
    """A figure in words, or a number (as a percentage when compared with a share)."""
    if not isinstance(figure, str):
        return _pct_or_number(float(figure), share=share)
    kind, names = _parse(figure)
    return WORDS.get(kind, figure).format(*names, "")


def _is_share(figure: str | float) -> bool:
    return isinstance(figure, str) and _parse(figure)[0] in ("penetration", "share", "bought_a_rival", "duplication")


def _pct_or_number(value: float | None, share: bool = False, difference: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    sign = "+" if difference and value > 0 else ""
    if share:
        return f"{sign}{100 * value:.1f} points" if difference else f"{100 * value:.1f}%"
    return f"{sign}{value:.3g}"


@dataclass(frozen=True)
class MarketClaimResult:
    """One market claim read on one run."""

    index: int
    figure: str
    versus: str | float
    sign: str | None
    within: float | None
    difference: dict[str, Any] | None  # paired_difference of the two series, or None when the run lacks them
    held: bool

    @property
    def _share(self) -> bool:
        """Both sides are shares of customers: differences read in percentage points."""
        return _is_share(self.figure) and (not isinstance(self.versus, str) or _is_share(self.versus))

    @property
    def subject(self) -> str:
        return f"market: ({describe(self.figure)}) minus ({describe(self.versus, self._share)})"

    @property
    def claimed(self) -> str:
        if self.within is not None:
            return f"within ±{self._fmt(self.within, difference=False).removesuffix('%')}" + (
                " points" if self._share else ""
            )
        return "above 0" if self.sign == "positive" else "below 0"

    def _fmt(self, value: Any, difference: bool = True) -> str:
        return _pct_or_number(None if value is None else float(value), share=self._share, difference=difference)

    def difference_text(self) -> str:
        if self.difference is None:
            return "n/a"
        low, high = self.difference.get("ci_low"), self.difference.get("ci_high")
        text = self._fmt(self.difference.get("mean"))
        if low is None or high is None:
            return text + " (one replication: no interval)"
        return f"{text} (95% CI {self._fmt(low)} to {self._fmt(high)})"

    def sentence(self) -> str:
        if self.difference is None:
            return f"Claim {self.index} not read: this run lacks {self.subject}."
        diff = self.difference_text()
        if self.held:
            return f"Claim {self.index} held: {self.subject} is {diff}, {self.claimed} as claimed."
        if self.difference.get("ci_low") is None:
            why = "one replication gives no interval"
        elif self.within is not None:
            why = "its CI reaches beyond the margin"
        elif self.difference.get("excludes_zero") is False:
            why = "its CI includes 0"
        else:
            why = "the sign is the other one"
        return f"Claim {self.index} did NOT hold: {self.subject} is {diff}; claimed {self.claimed}, but {why}."


def _read(claim: MarketClaim, market: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
    if market is None:
        return None, False
    left = figure_values(market, claim.figure)
    right = (
        figure_values(market, claim.versus)
        if isinstance(claim.versus, str)
        else [float(claim.versus)] * len(left or [])
    )
    if left is None or right is None or len(left) != len(right) or not left:
        return None, False
    diff = paired_difference(left, right)
    low, high, mean = diff.get("ci_low"), diff.get("ci_high"), diff.get("mean")
    if low is None or high is None or mean is None:
        return diff, False
    if claim.within is not None:
        return diff, bool(-claim.within < float(low) and float(high) < claim.within)
    return diff, bool(diff.get("excludes_zero") and (float(mean) > 0) == (claim.sign == "positive"))


def evaluate_market(
    claims: Sequence[MarketClaim], market: dict[str, Any] | None, *, first_index: int = 1
) -> list[MarketClaimResult]:
    """Every market claim read on the run's market section (numbered from ``first_index``)."""
    out = []
    for i, claim in enumerate(claims, start=first_index):
        diff, held = _read(claim, market)
        out.append(MarketClaimResult(i, claim.figure, claim.versus, claim.sign, claim.within, diff, held))
    return out


__all__ = ["MarketClaimResult", "evaluate_market", "figure_problem", "figure_values", "market_problems"]
