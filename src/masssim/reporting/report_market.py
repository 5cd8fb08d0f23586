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


def _finite_or_na(value: Any, render: Any) -> str:
    """``render(float(value))``, or "n/a" for a figure that is missing or not finite."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return str(render(float(value)))


def _pct(value: Any) -> str:
    return _finite_or_na(value, lambda v: f"{100 * v:.1f}%")


def _num(value: Any) -> str:
    return _finite_or_na(value, lambda v: f"{v:.2f}")


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


def _points(value: Any) -> str:
    """A change of a share, in percentage points with its sign."""
    return _finite_or_na(value, lambda v: f"{100 * v:+.1f} pts")


def _signed(value: Any) -> str:
    return _finite_or_na(value, lambda v: f"{v:+.3f}")


def _change_cell(stat: dict[str, Any], fmt: Any, change_fmt: Any) -> str:
    """The figure under the arm's marketing and, under it, its change from the world without marketing
    (paired over replications, with its 95% interval when there are several)."""
    change = stat.get("change") or {}
    low, high = change.get("ci_low"), change.get("ci_high")
    # The interval on its own line: the table must fit a narrow window (the sweep's labels are long).
    interval = ""
    if low is not None and high is not None:
        interval = f"<small>({esc(change_fmt(low))} to {esc(change_fmt(high))})</small>"
    return (
        f'<td class="num">{esc(fmt(stat.get("mean")))}<small>{esc(change_fmt(change.get("mean")))}</small>'
        f"{interval}</td>"
    )


def _rivals_cell(by_arm: dict[str, Any], rivals: list[str]) -> str:
    lines = [
        f"{esc(name)} {esc(_pct(by_arm['brands'][name]['share'].get('mean')))} "
        f"({esc(_points((by_arm['brands'][name]['share'].get('change') or {}).get('mean')))})"
        for name in rivals
    ]
    return f"<td>{'<br>'.join(lines)}</td>"


def market_by_arm_rows(entries: list[tuple[str, dict[str, Any], str]]) -> str:
    """A table, one row per (label, market section, arm): our brand's share and penetration without and with
    the arm's marketing, the category's purchases per customer, and every rival's share under the arm.
    "" when no entry has a per-arm market (a summary written before it existed)."""
    rows = []
    for label, market, arm in entries:
        by_arm = ((market or {}).get("by_arm") or {}).get("arms", {}).get(arm)
        if not by_arm:
            continue
        names = list(market["brands"])
        ours = names[0]
        base = market["brands"][ours]
        rows.append(
            f"<tr><td><b>{esc(label)}</b></td>"
            f'<td class="num">{esc(_pct(base["share"]["mean"]))}</td>'
            f"{_change_cell(by_arm['brands'][ours]['share'], _pct, _points)}"
            f'<td class="num">{esc(_pct(base["penetration"]["mean"]))}</td>'
            f"{_change_cell(by_arm['brands'][ours]['penetration'], _pct, _points)}"
            f"{_change_cell(by_arm['category']['purchases_per_customer'], lambda v: f'{float(v):.3f}', _signed)}"
            f"{_rivals_cell(by_arm, names[1:])}</tr>"
        )
    if not rows:
        return ""
    return (
        "<table><thead><tr><th></th><th>Our share, no marketing</th><th>Our share with it</th>"
        "<th>Our penetration, no marketing</th><th>Our penetration with it</th>"
        "<th>Category purchases per customer with it</th><th>Rivals' shares with it</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


BY_ARM_EXPLAIN = (
    "The same customers and purchase occasions under each arm's marketing. Marketing raises a customer's "
    "chance of choosing our brand at a purchase they would have made anyway, taking the same fraction of "
    "every rival's chance; a click can also start a purchase now (ours or, sometimes, a rival's), often one "
    "brought forward from later, so the category can grow as well. Under each figure: its change from the "
    "world without marketing (same replications, so the change is the marketing's alone), with a 95% interval "
    "over replications when there are several. Purchases started in conversations (inbound) are not counted "
    "here."
)


def _by_arm_html(market: dict[str, Any]) -> str:
    arms = list((market.get("by_arm") or {}).get("arms") or {})
    table = market_by_arm_rows([(arm, market, arm) for arm in arms])
    if not table:
        return ""
    return f'<h3>The market under each arm\'s marketing</h3><p class="explain">{esc(BY_ARM_EXPLAIN)}</p>{table}'


COMPARE_HEADING = "The market: our brand and its rivals under each strategy"


def compare_market_html(summary: dict[str, Any]) -> str:
    """The comparison report's market section: one row per compared strategy (variant, or variant/arm, as
    the comparison labels them), read from the summary's ``markets``; "" without them."""
    entries = []
    for variant, market in (summary.get("markets") or {}).items():
        arms = list((market.get("by_arm") or {}).get("arms") or {})
        entries += [(variant if len(arms) == 1 else f"{variant}/{arm}", market, arm) for arm in arms]
    table = market_by_arm_rows(entries)
    if not table:
        return ""
    return (
        f"<section><h2>{esc(COMPARE_HEADING)}</h2>"
        f'<p class="explain">{esc(BY_ARM_EXPLAIN)} "No marketing" is each variant\'s own market (a variant '
        "may change the market itself).</p>"
        f"{table}</section>"
    )


SWEEP_HEADING = "The market in each cell: our brand and its rivals"


def sweep_market_html(cells: list[dict[str, Any]], label: Any) -> str:
    """The sweep report's market section: one row per cell and arm, labelled by ``label(cell, arm)``; ""
    when no cell has a market (cells written before it existed)."""
    entries = [(label(cell, arm), cell.get("market") or {}, arm) for cell in cells for arm in (cell.get("arms") or {})]
    table = market_by_arm_rows(entries)
    if not table:
        return ""
    return (
        f"<section><h2>{esc(SWEEP_HEADING)}</h2>"
        f'<p class="explain">{esc(BY_ARM_EXPLAIN)} "No marketing" is each cell\'s own market (a cell may '
        "change the market itself). The full tables, with every brand's penetration and duplication, are in "
        "each cell's JSON.</p>"
        f"{table}</section>"
    )


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
        "arm (what each arm's marketing changed is at the end of this section). Each figure is the run's, with "
        "a 95% interval over replications when there are several, and under it what the NBD-Dirichlet model of "
        f"the market predicts. {esc(_window_sentence(market))} "
        f"{market['customers_per_replication']:,} customers per replication.</p>"
        f"<p>Bought in the category: {esc(_pct(category['penetration']['mean']))} of customers "
        f"(Dirichlet {esc(_pct(category['penetration']['predicted']))}), "
        f"{esc(_num(category['purchases_per_buyer']['mean']))} purchases each "
        f"(Dirichlet {esc(_num(category['purchases_per_buyer']['predicted']))}).</p>"
        "<table><thead><tr><th>Brand</th><th>Share of purchases</th><th>Penetration (bought it at least once)"
        "</th><th>Purchases per buyer</th><th>Of its buyers, bought another brand too</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        "<h3>Duplication of purchase: of one brand's buyers, the share who also bought another</h3>"
        '<p class="explain">Read across a row: the buyers of one brand. Read down a column: the duplication of '
        "purchase law says every brand's buyers buy that brand about equally often, roughly in proportion to "
        "its penetration (last row); compare the column with that row to see how closely this run follows it. "
        "Where it does, a segment defined by the brand people bought is mostly the same people as everyone "
        "else's buyers.</p>"
        f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(dup_rows)}"
        f"<tr><td><em>all customers (penetration)</em></td>{penetration_row}</tr></tbody></table>"
        f"{_duplication_figure(market)}{_by_arm_html(market)}</section>"
    )


__all__ = [
    "BY_ARM_EXPLAIN",
    "COMPARE_HEADING",
    "HEADING",
    "SWEEP_HEADING",
    "compare_market_html",
    "market_by_arm_rows",
    "market_html",
    "sweep_market_html",
]
