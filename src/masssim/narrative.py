"""Plain-language reading of a run's summary: a few sentences a strategist can forward.

Every sentence is computed from the summary (never written in advance), and a difference is called real
only when its paired 95% confidence interval excludes zero.
"""

from __future__ import annotations

from typing import Any


def money(value: float | None) -> str:
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1e6:
        return f"{sign}{value / 1e6:,.2f}M"
    if value >= 1e4:
        return f"{sign}{value / 1e3:,.1f}k"
    return f"{sign}{value:,.0f}"


def count(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.2f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:,.1f}k"
    return f"{value:,.0f}"


def _ci(stat: dict[str, Any], fmt: Any = money) -> str:
    if stat.get("ci_low") is None:
        return fmt(stat["mean"]) + " (one replication: no interval)"
    return f"{fmt(stat['mean'])} (95% CI {fmt(stat['ci_low'])} to {fmt(stat['ci_high'])})"


def read_summary(summary: dict[str, Any]) -> list[str]:
    """Sentences that read the result, best arm first."""
    arms: dict[str, Any] = summary["arms"]
    n = summary["replications"]
    lines: list[str] = []
    ranked = sorted(arms, key=lambda a: arms[a]["incremental_profit"]["mean"], reverse=True)
    best = ranked[0]
    lines.append(
        f"Over {n} replication{'s' if n != 1 else ''}, '{best}' earned the most incremental profit: "
        f"{_ci(arms[best]['incremental_profit'])}, on {money(arms[best]['cost_total']['mean'])} of spend."
    )
    for arm in ranked:
        m = arms[arm]
        lines.append(
            f"'{arm}': incremental revenue {_ci(m['incremental_revenue'])} measured against the holdout "
            f"(the simulator's true figure: {money(m['incremental_revenue_true']['mean'])}); "
            f"ROI {m['roi']['mean']:.2f}; click rate {100 * m['click_rate']['mean']:.2f}% of delivered."
        )
    baseline = summary["baseline_arm"]
    for arm, diffs in summary.get("differences_vs_baseline", {}).items():
        d = diffs["incremental_profit"]
        if d.get("excludes_zero") is None:
            verdict = "cannot be judged from one replication"
        elif d["excludes_zero"]:
            verdict = "is better" if d["mean"] > 0 else "is worse"
            verdict += " and the difference is statistically clear (its 95% CI excludes zero)"
        else:
            verdict = "is not distinguishable from it with this many replications (the 95% CI includes zero)"
        lines.append(f"Against '{baseline}', '{arm}' {verdict}: paired difference in incremental profit {_ci(d)}.")
    over = [
        arm
        for arm in arms
        if arms[arm]["attributed_purchases"]["mean"] > 1.2 * max(arms[arm]["incremental_purchases_true"]["mean"], 0)
    ]
    if over:
        a = over[0]
        attributed = count(arms[a]["attributed_purchases"]["mean"])
        caused = count(arms[a]["incremental_purchases_true"]["mean"])
        lines.append(
            f"Attribution overstates what marketing caused: for '{a}', {attributed} purchases were attributed to "
            f"clicks but only {caused} were truly incremental, because many clickers would have bought anyway."
        )
    return lines
