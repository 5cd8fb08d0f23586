"""The report's market section: every brand's buying in the run, beside the Dirichlet's predictions.

Reads only the ``market`` section of summary.json (masssim.model.market), so the report and the JSON cannot
disagree. Written for a reader who knows brands and buyers, not the model's notation.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from masssim.reporting.html import esc

HEADING = "The market: who buys every brand"


def _pct(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"{100 * float(value):.1f}%"


def _num(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"{float(value):.2f}"


def _days(value: float) -> str:
    return f"{value:g} days"


def _cell(stat: dict[str, Any], fmt: Any) -> str:
    """Observed (with its interval when there is one) and, under it, the Dirichlet's prediction."""
    low, high = stat.get("ci_low"), stat.get("ci_high")
    interval = f" ({fmt(low)} to {fmt(high)})" if low is not None and high is not None else ""
    return (
        f'<td class="num">{esc(fmt(stat.get("mean")))}{esc(interval)}'
        f"<small>Dirichlet {esc(fmt(stat.get('predicted')))}</small></td>"
    )


def _window_sentence(market: dict[str, Any]) -> str:
    period, window = float(market["period_days"]), float(market["window_days"])
    if window < period:
        return (
            f"The market's figures (category purchases per customer) are given per {_days(period)}; this run is "
            f"shorter, so the table covers its whole {_days(window)} and the Dirichlet is computed for "
            f"{_days(window)} too: penetrations are lower than over the full period."
        )
    return (
        f"The market's figures are given per {_days(period)}; the table covers the first {_days(window)} of the "
        "run, the period they refer to, and the Dirichlet is computed for the same period."
    )


def _duplication_figure(market: dict[str, Any]) -> str:
    """Duplication against the other brand's penetration, every pair: the duplication law is a straight line."""
    brands = market["brands"]
    xs, ys, labels = [], [], []
    for name, figures in brands.items():
        for other, stat in figures["duplication"].items():
            xs.append(brands[other]["penetration"]["mean"])
            ys.append(stat["mean"])
            labels.append(f"buyers of {name} who also bought {other}")
    fig = go.Figure(
        go.Scatter(x=xs, y=ys, mode="markers", text=labels, hovertemplate="%{text}: %{y:.1%}<extra></extra>")
    )
    top = max([*xs, 0.0]) * 1.05
    coefficients = [y / x for x, y in zip(xs, ys, strict=True) if x and math.isfinite(x) and math.isfinite(y)]
    if coefficients:
        d = sorted(coefficients)[len(coefficients) // 2]
        fig.add_trace(
            go.Scatter(x=[0, top], y=[0, d * top], mode="lines", name=f"{d:.2f} x penetration", line={"dash": "dot"})
        )
    fig.update_layout(
        template="plotly_white",
        height=380,
        xaxis={"title": "penetration of the other brand", "tickformat": ".0%"},
        yaxis={"title": "share of this brand's buyers who bought it", "tickformat": ".0%"},
        showlegend=bool(coefficients),
        margin={"l": 70, "r": 30, "t": 30, "b": 60},
    )
    body = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})
    return f'<div class="figure">{body}</div>'


def market_html(summary: dict[str, Any]) -> str:
    """The section, or "" for a summary without a market (a comparison or a sweep cell)."""
    market = summary.get("market")
    if not market:
        return ""
    brands: dict[str, Any] = market["brands"]
    names = list(brands)
    category = market["category"]
    rows = []
    for name in names:
        figures = brands[name]
        rows.append(
            f"<tr><td>{esc(name)}</td>{_cell(figures['share'], _pct)}{_cell(figures['penetration'], _pct)}"
            f"{_cell(figures['purchases_per_buyer'], _num)}{_cell(figures['bought_a_rival'], _pct)}</tr>"
        )
    head = "".join(f"<th>{esc(other)}</th>" for other in names)
    dup_rows = []
    for name in names:
        cells = "".join(
            "<td>—</td>" if other == name else _cell(brands[name]["duplication"][other], _pct) for other in names
        )
        dup_rows.append(f"<tr><td>buyers of {esc(name)}</td>{cells}</tr>")
    penetration_row = "".join(_cell(brands[other]["penetration"], _pct) for other in names)
    return (
        f"<section><h2>{esc(HEADING)}</h2>"
        '<p class="explain">Who bought which brand in the world <strong>without marketing</strong>: every '
        "customer's own purchase occasions, brand chosen from their own brand preferences, the same in every "
        "arm (what the campaigns changed is in the figures above). Each figure is the run's, with a 95% interval "
        "over replications when there are several, and under it what the NBD-Dirichlet model of the market "
        f"predicts. {esc(_window_sentence(market))} "
        f"{market['customers_per_replication']:,} customers per replication.</p>"
        f"<p>Bought in the category: {esc(_pct(category['penetration']['mean']))} of customers "
        f"(Dirichlet {esc(_pct(category['penetration']['predicted']))}), "
        f"{esc(_num(category['purchases_per_buyer']['mean']))} purchases each "
        f"(Dirichlet {esc(_num(category['purchases_per_buyer']['predicted']))}).</p>"
        "<table><thead><tr><th>Brand</th><th>Share of purchases</th><th>Penetration (bought it at least once)"
        "</th><th>Purchases per buyer</th><th>Of its buyers, bought another brand too</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        "<h3>Duplication of purchase: of one brand's buyers, the share who also bought another</h3>"
        '<p class="explain">Read across a row: the buyers of one brand. Read down a column: every brand\'s '
        "buyers buy that brand about equally often, roughly in proportion to its penetration (last row). "
        "That is the duplication of purchase law: a segment defined by the brand people bought is mostly "
        "the same people as everyone else's buyers.</p>"
        f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(dup_rows)}"
        f"<tr><td><em>all customers (penetration)</em></td>{penetration_row}</tr></tbody></table>"
        f"{_duplication_figure(market)}</section>"
    )


__all__ = ["HEADING", "market_html"]
