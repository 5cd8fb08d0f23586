"""What every HTML report shares: escaping, number formatting with units, colours and the plotly figure style."""

from __future__ import annotations

import html
import math
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative

from masssim.model.metrics import REGISTRY
from masssim.reporting.narrative import count, duration, money

PALETTE: tuple[str, ...] = tuple(qualitative.D3)
FONT = "-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def finite(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def fmt_value(value: Any, unit: str) -> str:
    """A number as a reader expects it for its unit (money, percent, ratio or a count)."""
    v = finite(value)
    if v is None:
        return "n/a"
    if unit in ("currency", "seconds"):
        return money(v) if unit == "currency" else duration(v)
    if unit == "share":
        return f"{100 * v:.2f}%"
    if unit == "ratio":
        return f"{v:.2f}"
    if abs(v) < 100 and not float(v).is_integer():
        return f"{v:,.1f}"
    return count(v)


def fmt_ci(stat: dict[str, Any], unit: str) -> str:
    low, high = finite(stat.get("ci_low")), finite(stat.get("ci_high"))
    if low is None or high is None:
        return str(stat.get("note", "no interval (one replication)"))
    return f"95% CI {fmt_value(low, unit)} to {fmt_value(high, unit)}"


def arm_colors(arms: list[str]) -> dict[str, str]:
    return {arm: PALETTE[i % len(PALETTE)] for i, arm in enumerate(arms)}


def holdout_stat(summary: dict[str, Any], arm: str, metric: str) -> dict[str, Any]:
    """The figure's mean and interval as the reading gives them: for a holdout estimate, the bootstrap-t
    interval of the summary's ``holdout`` block (masssim.estimation.holdout) when there is one, else the
    metric's own."""
    stat = summary["arms"][arm].get(metric) or {}
    holdout = (summary.get("holdout") or {}).get(arm)
    if holdout is None or metric not in holdout:
        return stat
    if holdout["too_small"]:
        return {"mean": holdout[metric]["mean"], "note": "holdout too small for an interval"}
    return holdout[metric]


def summary_mean(summary: dict[str, Any], arm: str, metric: str) -> float:
    stat = summary["arms"][arm].get(metric) or {}
    v = finite(stat.get("mean"))
    return math.nan if v is None else v


def has_ci(stat: dict[str, Any]) -> bool:
    return finite(stat.get("ci_low")) is not None and finite(stat.get("ci_high")) is not None


def error_bars(stats: list[dict[str, Any]], scale: float = 1.0) -> dict[str, Any] | None:
    """Asymmetric error bars from ci_low/ci_high, or None when no interval exists (one replication)."""
    if not stats or not all(has_ci(s) for s in stats):
        return None
    means = [float(s["mean"]) for s in stats]
    return {
        "type": "data",
        "symmetric": False,
        "array": [(float(s["ci_high"]) - m) * scale for s, m in zip(stats, means, strict=True)],
        "arrayminus": [(m - float(s["ci_low"])) * scale for s, m in zip(stats, means, strict=True)],
        "thickness": 1.6,
        "width": 6,
        "color": "#333",
    }


def style_figure(fig: go.Figure, *, height: int, **layout: Any) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        font={"family": FONT, "size": 14, "color": "#1f2933"},
        margin={"l": 70, "r": 30, "t": 40, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        hoverlabel={"font": {"family": FONT}},
        **layout,
    )
    return fig


def figure_div(fig: go.Figure) -> str:
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        config={"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]},
    )
    return f'<div class="figure">{body}</div>'


def stat_cell(summary: dict[str, Any], arm: str, metric: str) -> str:
    """A table cell: the metric's mean for the arm, its interval under it."""
    unit = REGISTRY[metric].unit
    stat = summary["arms"][arm].get(metric) or {}
    return f'<td class="num">{esc(fmt_value(stat.get("mean"), unit))}<small>{esc(fmt_ci(stat, unit))}</small></td>'


def funnel_figure(
    arms: list[str], labels: list[str], values: dict[str, list[float]], colors: dict[str, str], of_what: str
) -> go.Figure:
    """Grouped funnel bars, one trace per arm, labelled with the count and its share of the first stage."""
    fig = go.Figure()
    for arm in arms:
        fig.add_trace(
            go.Funnel(
                name=arm,
                y=labels,
                x=values[arm],
                textinfo="value+percent initial",
                texttemplate="%{value:,.0f} (%{percentInitial:.1%})",
                textposition="auto",
                insidetextfont={"color": "#fff"},
                outsidetextfont={"color": "#1f2933"},
                constraintext="none",
                cliponaxis=False,
                marker={"color": colors[arm]},
                connector={"visible": False},
                hovertemplate=f"<b>{esc(arm)}</b><br>%{{y}}: %{{x:,.0f}}<br>%{{percentInitial:.2%}} of {of_what}"
                "<extra></extra>",
            )
        )
    style_figure(fig, height=170 + 60 * len(labels) * max(1, min(len(arms), 4)) // 2, funnelmode="group")
    fig.update_yaxes(title=None)
    return fig
