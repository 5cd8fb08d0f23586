"""The HTML report of a run: one standalone page, readable offline, written for a marketing strategist.

The page embeds plotly.js once, inline, and every chart as a ``<div>`` that draws itself with it, so the
file can be mailed or opened on a plane: it loads nothing from the network (no CDN, fonts or stylesheets).
Every figure has a sentence above it saying what it shows and how to read it. All text that comes from the
user (scenario name and description, arm names, policy parameters) is HTML-escaped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from masssim.config.schema import CHANNEL_NAMES, Scenario
from masssim.model.metrics import REGISTRY, channel_metric
from masssim.reporting.html import (
    PALETTE,
    arm_colors,
    error_bars,
    esc,
    figure_div,
    finite,
    fmt_ci,
    fmt_value,
    funnel_figure,
    holdout_stat,
    stat_cell,
    style_figure,
    summary_mean,
)
from masssim.reporting.lesson_reading import Source, read_lesson
from masssim.reporting.narrative import has_inbound, money, read_summary
from masssim.reporting.report_inbound import inbound_section
from masssim.reporting.report_market import market_html

KEY_FIGURES: tuple[tuple[str, str], ...] = (
    ("incremental_profit", "Incremental profit (holdout estimate)"),
    ("incremental_revenue", "Incremental revenue (holdout estimate)"),
    ("incremental_revenue_true", "Incremental revenue (simulator's true figure)"),
    ("cost_total", "Total cost"),
    ("roi", "Return on spend (ROI)"),
    ("click_rate", "Click rate (share of delivered messages)"),
    ("attributed_purchases", "Purchases attributed to a click"),
    ("incremental_purchases_true", "Truly extra purchases (simulator's true figure)"),
)

FUNNEL: tuple[tuple[str, str], ...] = (
    ("sends", "Sent"),
    ("delivered", "Delivered"),
    ("opens_recorded", "Opens recorded"),
    ("reads", "Actually read"),
    ("clicks", "Clicked"),
    ("attributed_purchases", "Attributed purchases"),
)

COSTS: tuple[tuple[str, str], ...] = (
    ("cost_sends", "Cost: sending"),
    ("cost_media", "Cost: paid media"),
    ("cost_creatives", "Cost: creatives"),
)
COST_COLORS = ("#9ecae1", "#4292c6", "#08519c")

DIFFERENCES: tuple[tuple[str, str], ...] = (
    ("incremental_profit", "Incremental profit"),
    ("incremental_revenue", "Incremental revenue"),
    ("click_rate", "Click rate (percentage points)"),
)

# Daily panels: a label and the time-series columns summed into it.
DAILY: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Messages sent", ("sends",)),
    ("Clicks", ("clicks",)),
    ("Purchases by treated customers", ("purchases_treated",)),
    ("Truly extra purchases (true figure)", ("incremental_purchases_true",)),
    ("Cost (sending + media + creatives)", ("cost_sends", "cost_media", "cost_creatives")),
)


CSS = """
:root { --ink: #1f2933; --muted: #52606d; --line: #d9e2ec; --accent: #1f5f99; --bg: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 16px/1.55 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 32px 28px 64px; background: #fff;
       box-shadow: 0 0 0 1px var(--line); }
h1 { font-size: 2em; margin: 0 0 0.2em; color: var(--accent); }
h2 { font-size: 1.35em; margin: 2.2em 0 0.5em; padding-bottom: 0.25em; border-bottom: 2px solid var(--line); }
p { margin: 0.5em 0; }
.lead { font-size: 1.1em; color: var(--muted); margin-bottom: 1.2em; white-space: pre-line; }
.explain { color: var(--muted); max-width: 60em; }
.note { color: var(--muted); font-size: 0.92em; font-style: italic; }
.facts { display: flex; flex-wrap: wrap; gap: 12px; margin: 1em 0; padding: 0; list-style: none; }
.facts li { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; }
.facts b { display: block; font-size: 1.15em; color: var(--ink); }
.facts span { font-size: 0.85em; color: var(--muted); }
ul.findings li { margin: 0.45em 0; }
ul.findings li.held::marker { content: "✔ "; color: #2f855a; }
ul.findings li.failed::marker { content: "✘ "; color: #c53030; }
section.lesson { border-left: 4px solid var(--accent); padding-left: 1em; }
table { border-collapse: collapse; width: 100%; margin: 0.8em 0; font-size: 0.95em; }
th, td { border-bottom: 1px solid var(--line); padding: 7px 10px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.num small { display: block; color: var(--muted); font-size: 0.82em; }
th.num { text-align: right; }
code { font-family: Menlo, Consolas, monospace; font-size: 0.9em; background: var(--bg); padding: 1px 4px;
       border-radius: 3px; }
.figure { margin: 0.6em 0 0.4em; }
h3 { font-size: 1.1em; margin: 1.8em 0 0.3em; }
th.group { background: #e9eff5; color: var(--accent); }
details { margin: 0.8em 0; }
details summary { cursor: pointer; color: var(--accent); font-weight: 600; }
footer { margin-top: 3em; color: var(--muted); font-size: 0.85em; }
"""


# ---------------------------------------------------------------- sections


def _header(summary: dict[str, Any], scenario: Scenario) -> str:
    name = summary.get("scenario") or scenario.name
    n = summary.get("replications", scenario.replications)
    seed = summary.get("seed_entropy", scenario.seed)
    facts = [
        (str(n), "replication" + ("s" if n != 1 else "") + " (independent re-runs)"),
        ("n/a" if seed is None else str(seed), "seed (re-run with it to get the same numbers)"),
        (f"{scenario.horizon_days:g} days", "simulated period"),
        (f"{scenario.population.customers:,}", "customers"),
        (f"{100 * scenario.holdout.share:g}%", "held out, never contacted"),
        (f"{money(scenario.market.price)}", "revenue per purchase"),
        (f"{100 * scenario.market.gross_margin_share:g}%", "gross margin"),
    ]
    if scenario.budget_total is not None:
        facts.append((money(scenario.budget_total), "budget per arm"))
    fact_items = "".join(f"<li><b>{esc(v)}</b><span>{esc(label)}</span></li>" for v, label in facts)
    baseline = summary.get("baseline_arm")
    rows = []
    for arm in scenario.arms:
        params = ", ".join(f"{k} = {v}" for k, v in sorted(arm.params.items())) or "defaults"
        role = " (baseline for comparisons)" if arm.name == baseline and len(scenario.arms) > 1 else ""
        rows.append(
            f"<tr><td><b>{esc(arm.name)}</b>{esc(role)}</td><td><code>{esc(arm.policy)}</code></td>"
            f"<td>{esc(params)}</td></tr>"
        )
    description = scenario.description.strip()
    lead = f'<p class="lead">{esc(description)}</p>' if description else ""
    return (
        f"<header><h1>{esc(name)}</h1>{lead}"
        f'<ul class="facts">{fact_items}</ul>'
        "<h2>Strategies compared (arms)</h2>"
        '<p class="explain">Each arm is one targeting strategy, run on the same simulated customers so that '
        "the arms can be compared fairly.</p>"
        "<table><thead><tr><th>Arm</th><th>Policy</th><th>Settings</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></header>"
    )


def lesson_section(lines: list[str]) -> str:
    """A gallery lesson's reading (masssim.reporting.lesson_reading.read_lesson): purpose, headline metrics
    and each claim's verdict, ahead of everything else; empty for a scenario without a [lesson] table."""
    if not lines:
        return ""
    purpose, rest = lines[0], lines[1:]
    items = []
    for line in rest:
        kind = "held" if " held:" in line else "failed" if "did NOT hold" in line else ""
        items.append(f'<li class="{kind}">{esc(line)}</li>' if kind else f"<li>{esc(line)}</li>")
    return (
        f'<section class="lesson"><h2>What this lesson shows</h2><p class="lead">{esc(purpose)}</p>'
        '<p class="explain">The headline figures of the lesson (mean and 95% confidence interval), then each '
        "thing the lesson claims, checked on this run: a claim holds when the paired 95% interval of the "
        f'difference excludes 0 on the claimed side.</p><ul class="findings">{"".join(items)}</ul></section>'
    )


def _findings(summary: dict[str, Any]) -> str:
    items = "".join(f"<li>{esc(line)}</li>" for line in read_summary(summary))
    extra = ""
    if summary.get("replications", 0) < 2:
        extra = (
            '<p class="note">This run has a single replication, so no confidence intervals can be given: '
            "the figures below have no error bars. Run more replications to see how much they vary.</p>"
        )
    return (
        "<section><h2>What this run says</h2>"
        '<p class="explain">"Incremental" means caused by the marketing: the extra purchases compared '
        "with what customers would have bought anyway. It is measured against a holdout group that was never "
        "contacted; the simulator also knows the true figure, shown for comparison. A 95% confidence "
        "interval (CI) is built so that, over many runs, 95% of such intervals contain the true value: over "
        "replications for most figures (a t interval), and for estimates against the holdout a bootstrap-t "
        "interval that keeps each replication's customers fixed.</p>"
        f'<ul class="findings">{items}</ul>{extra}</section>'
    )


def _key_figures(summary: dict[str, Any], arms: list[str]) -> str:
    head = "".join(f'<th class="num">{esc(arm)}</th>' for arm in arms)
    rows = []
    for metric, label in KEY_FIGURES:
        unit = REGISTRY[metric].unit
        cells = []
        for arm in arms:
            stat = holdout_stat(summary, arm, metric)
            mean, ci = esc(fmt_value(stat.get("mean"), unit)), esc(fmt_ci(stat, unit))
            cells.append(f'<td class="num">{mean}<small>{ci}</small></td>')
        rows.append(f"<tr><td>{esc(label)}<br><code>{esc(metric)}</code></td>{''.join(cells)}</tr>")
    return (
        "<section><h2>Key figures</h2>"
        '<p class="explain">The average over all replications for each arm, with its 95% confidence interval '
        "underneath (for the figures measured against the holdout, a bootstrap interval that does not "
        "overstate a gain when the holdout is small). Money is in the scenario's currency units; ROI is "
        "incremental profit divided by cost (0 means the marketing paid for itself, below 0 it lost money).</p>"
        f"<table><thead><tr><th>Figure</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _funnel(summary: dict[str, Any], arms: list[str], colors: dict[str, str]) -> str:
    labels = [label for _, label in FUNNEL]
    values = {arm: [summary_mean(summary, arm, metric) for metric, _ in FUNNEL] for arm in arms}
    fig = funnel_figure(arms, labels, values, colors, "sent")
    fig.update_layout(margin={"l": 160, "r": 40, "t": 40, "b": 30})
    return (
        "<section><h2>The funnel: from message to purchase</h2>"
        '<p class="explain">How many messages each arm sent, and how many of them were delivered, opened, '
        "read, clicked, and followed by a purchase credited to the click (averages over replications). Each "
        "bar's label gives the number and, in brackets, its share of the messages sent.</p>"
        f"{figure_div(fig)}"
        '<p class="note">Recorded opens include privacy pre-fetch: some mail apps load every message '
        'automatically, which the channel counts as an open although nobody read it. "Actually read" is '
        "the simulator's true count, which a real marketer cannot observe.</p></section>"
    )


def _costs(summary: dict[str, Any], scenario: Scenario, arms: list[str]) -> str:
    fig = go.Figure()
    base = np.zeros(len(arms))
    inbound = has_inbound(summary)
    costs: tuple[tuple[str, str], ...] = COSTS
    cost_colors: tuple[str, ...] = COST_COLORS
    if inbound:  # the inbound desk's staffing and classification are part of cost_total
        costs, cost_colors = (*COSTS, ("cost_inbound", "Cost: inbound desk")), (*COST_COLORS, "#fd8d3c")
    for (metric, label), color in zip(costs, cost_colors, strict=True):
        values = np.array([summary_mean(summary, arm, metric) for arm in arms])
        fig.add_trace(
            go.Bar(
                name=label,
                x=arms,
                y=values,
                base=base.copy(),
                offsetgroup="cost",
                marker={"color": color},
                hovertemplate=f"%{{x}}<br>{label}: %{{y:,.0f}}<extra></extra>",
            )
        )
        base += np.nan_to_num(values)
    revenue = [holdout_stat(summary, arm, "incremental_revenue") for arm in arms]
    fig.add_trace(
        go.Bar(
            name="Incremental revenue (holdout estimate)",
            x=arms,
            y=[summary_mean(summary, arm, "incremental_revenue") for arm in arms],
            offsetgroup="revenue",
            marker={"color": "#41ab5d"},
            error_y=error_bars(revenue),
            hovertemplate="%{x}<br>Incremental revenue: %{y:,.0f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            name="Incremental revenue (true figure)",
            x=arms,
            y=[summary_mean(summary, arm, "incremental_revenue_true") for arm in arms],
            mode="markers",
            offsetgroup="revenue",
            marker={
                "symbol": "diamond",
                "size": 14,
                "color": "#111",
                "line": {"color": "#fff", "width": 1.5},
            },
            hovertemplate="%{x}<br>True incremental revenue: %{y:,.0f}<extra></extra>",
        )
    )
    style_figure(fig, height=480, barmode="group", scattermode="group", bargap=0.35, bargroupgap=0.08)
    # Five legend entries are wide: below the chart they cannot collide with the toolbar.
    fig.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "xanchor": "left", "x": 0},
        margin={"l": 70, "r": 30, "t": 30, "b": 90},
    )
    fig.update_yaxes(title="currency units", zeroline=True, zerolinecolor="#888", zerolinewidth=1.5)
    margin = scenario.market.gross_margin_share
    paid_for = "sending, paid media" + (
        ", creative production and the inbound desk" if inbound else " and creative production"
    )
    ci_note = (
        "The black lines on the green bars show the 95% confidence interval."
        if error_bars(revenue) is not None
        else "There are no error bars because the run has a single replication."
    )
    return (
        "<section><h2>What it cost and what it brought in</h2>"
        f'<p class="explain">For each arm, the left bar stacks what the campaign cost ({paid_for}); '
        "the green bar beside it is the extra revenue measured against the "
        "holdout, "
        "and the black diamond is the simulator's true extra revenue. "
        f"{ci_note} Only the gross margin ({100 * margin:g}% of revenue) is profit, so an arm makes money "
        f"only when its green bar is more than {1 / margin:.3g} times as tall as its cost bar.</p>"
        f"{figure_div(fig)}</section>"
    )


CHANNEL_ROWS: tuple[tuple[str, str], ...] = (
    ("sends", "Sent"),
    ("delivered", "Delivered"),
    ("reads", "Actually read"),
    ("clicks", "Clicked"),
    ("unsubscribes", "Unsubscribed"),
    ("replies", "Replied"),
    ("cost", "Cost (sending or media)"),
)


def channels_section(summary: dict[str, Any], arms: list[str], colors: dict[str, str]) -> str:
    """Per channel: what each arm sent there and what came back (the arms' channel mixes side by side).
    Shown when the run used more than one channel; with one, the totals above say it all."""
    used = [c for c in CHANNEL_NAMES if any(summary_mean(summary, arm, channel_metric("sends", c)) > 0 for arm in arms)]
    if len(used) < 2:
        return ""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Messages sent", "Clicks"], horizontal_spacing=0.12)
    for i, c in enumerate(used):
        for col, figure in enumerate(("sends", "clicks"), start=1):
            fig.add_trace(
                go.Bar(
                    name=c,
                    x=arms,
                    y=[summary_mean(summary, arm, channel_metric(figure, c)) for arm in arms],
                    marker={"color": PALETTE[(i + 3) % len(PALETTE)]},
                    legendgroup=c,
                    showlegend=col == 1,
                    hovertemplate=f"%{{x}}<br>{c}: %{{y:,.0f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    style_figure(fig, height=380, barmode="stack")
    head = "".join(f'<th class="num">{esc(arm)}</th>' for arm in arms)
    rows = []
    for c in used:
        rows.append(f'<tr><th class="group" colspan="{len(arms) + 1}">{esc(c)}</th></tr>')
        for figure, label in CHANNEL_ROWS:
            metric = channel_metric(figure, c)
            cells = "".join(stat_cell(summary, arm, metric) for arm in arms)
            rows.append(f"<tr><td>{esc(label)}<br><code>{esc(metric)}</code></td>{cells}</tr>")
    return (
        "<section><h2>By channel</h2>"
        '<p class="explain">Where each arm\'s messages went and what came back, channel by channel. An arm with '
        "a channel order sends each customer on the first channel of the order that can take them (opted in, "
        "under its weekly cap, with capacity and budget left) and falls back to the next otherwise; the bars "
        "show the mix that resulted. The channels add up to the totals above.</p>"
        f"{figure_div(fig)}"
        f"<details><summary>Per-channel figures (table)</summary><table><thead><tr><th>Channel and figure</th>"
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></details></section>"
    )


def _differences(summary: dict[str, Any], arms: list[str], colors: dict[str, str]) -> str:
    baseline = summary["baseline_arm"]
    diffs: dict[str, Any] = summary.get("differences_vs_baseline") or {}
    others = [arm for arm in arms if arm in diffs]
    fig = make_subplots(
        rows=1,
        cols=len(DIFFERENCES),
        subplot_titles=[label for _, label in DIFFERENCES],
        shared_yaxes=True,
        horizontal_spacing=0.06,
    )
    any_ci = False
    for col, (metric, _) in enumerate(DIFFERENCES, start=1):
        scale = 100.0 if REGISTRY[metric].unit == "share" else 1.0
        unit = REGISTRY[metric].unit
        for arm in others:
            stat = diffs[arm].get(metric) or {}
            mean = finite(stat.get("mean"))
            bars = error_bars([stat], scale) if mean is not None else None
            any_ci = any_ci or bars is not None
            fig.add_trace(
                go.Scatter(
                    x=[math.nan if mean is None else mean * scale],
                    y=[arm],
                    mode="markers",
                    name=arm,
                    showlegend=False,
                    marker={"size": 13, "color": colors[arm]},
                    error_x=bars,
                    hovertemplate=f"<b>{esc(arm)}</b> minus <b>{esc(baseline)}</b><br>"
                    f"{esc(fmt_value(mean, unit))}, {esc(fmt_ci(stat, unit))}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.add_vline(x=0, line={"color": "#c0392b", "width": 2, "dash": "dash"}, row=1, col=col)
    style_figure(fig, height=max(260, 140 + 70 * len(others)))
    # Reversed so the arms read top-down in scenario order; padded so the dots are not at the edges.
    fig.update_yaxes(type="category", range=[len(others) - 0.4, -0.6])
    fig.update_layout(margin={"l": 110, "r": 30, "t": 60, "b": 40})
    ci_note = (
        "If an arm's horizontal line crosses the red zero line, the difference could be chance; if the "
        "whole line is to the right, the arm is clearly better than the baseline, to the left clearly worse."
        if any_ci
        else "With a single replication there are no confidence intervals, so these differences cannot be "
        "judged: they could be chance."
    )
    return (
        f"<section><h2>Compared with the baseline ({esc(baseline)})</h2>"
        f'<p class="explain">Each dot is how much more (right of zero) or less (left of zero) an arm '
        f"achieved than <b>{esc(baseline)}</b>, compared replication by replication on the same customers. "
        f"{esc(ci_note)}</p>{figure_div(fig)}</section>"
    )


def _daily_means(timeseries: dict[str, np.ndarray], arm: str, columns: tuple[str, ...]) -> tuple[Any, Any]:
    """Days and the mean over replications of the summed columns, for one arm."""
    mask = np.asarray(timeseries["arm"]).astype(str) == arm
    days = np.asarray(timeseries["day"])[mask].astype(int)
    if days.size == 0:
        return np.zeros(0, int), np.zeros(0)
    total = np.zeros(days.size)
    for column in columns:
        if column in timeseries:
            total += np.asarray(timeseries[column], dtype=float)[mask]
    counts = np.bincount(days)
    sums = np.bincount(days, weights=total)
    present = counts > 0
    return np.flatnonzero(present), sums[present] / counts[present]


def _timeseries(timeseries: dict[str, np.ndarray], arms: list[str], colors: dict[str, str]) -> str:
    intro = (
        "<section><h2>Day by day</h2>"
        '<p class="explain">Each small chart follows one figure over the simulated period, with one line '
        "per arm (the average over replications); where lines lie on top of each other the arms did the "
        "same, and only the last one drawn is visible. Day 0 is the first day. Cost includes creative "
        "production, which is paid when a creative is first used, so it usually shows as a spike at the "
        "start.</p>"
    )
    if "day" not in timeseries or np.asarray(timeseries["day"]).size == 0:
        return intro + '<p class="note">No daily figures were recorded for this run.</p></section>'
    cols = 2
    rows = math.ceil(len(DAILY) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[label for label, _ in DAILY],
        shared_xaxes=True,
        vertical_spacing=0.11,
        horizontal_spacing=0.09,
    )
    for i, (_, columns) in enumerate(DAILY):
        row, col = divmod(i, cols)
        for arm in arms:
            days, values = _daily_means(timeseries, arm, columns)
            fig.add_trace(
                go.Scatter(
                    x=days,
                    y=values,
                    mode="lines+markers" if days.size <= 31 else "lines",
                    name=arm,
                    legendgroup=arm,
                    showlegend=i == 0,
                    line={"color": colors[arm], "width": 2},
                    marker={"size": 5},
                    hovertemplate=f"<b>{esc(arm)}</b><br>day %{{x}}: %{{y:,.1f}}<extra></extra>",
                ),
                row=row + 1,
                col=col + 1,
            )
    style_figure(fig, height=260 * rows + 80)
    fig.update_xaxes(title_text="day", showticklabels=True)
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(margin={"l": 70, "r": 30, "t": 70, "b": 50})
    return intro + figure_div(fig) + "</section>"


def _definitions() -> str:
    rows = "".join(
        f"<tr><td><code>{esc(m.name)}</code></td><td>{esc(m.unit)}</td><td>{esc(m.definition)}</td></tr>"
        for m in REGISTRY.values()
    )
    return (
        "<section><h2>What each figure means</h2>"
        '<p class="explain">Definitions of every figure the simulator reports (the same names are used in '
        "<code>summary.json</code> and <code>timeseries.csv</code>).</p>"
        f"<table><thead><tr><th>Figure</th><th>Unit</th><th>Definition</th></tr></thead><tbody>{rows}</tbody>"
        "</table></section>"
    )


# ---------------------------------------------------------------- page


def render_report(summary: dict[str, Any], timeseries: dict[str, np.ndarray], scenario: Scenario) -> str:
    """One standalone HTML page (plotly.js inline, no network needed) reporting a run."""
    arms = list(summary["arms"])
    colors = arm_colors(arms)
    source = Source(arms=summary["arms"], market=summary.get("market"))
    lesson = read_lesson(scenario.lesson, source) if scenario.lesson else []
    sections = [
        _header(summary, scenario),
        lesson_section(lesson),
        _findings(summary),
        _key_figures(summary, arms),
        _funnel(summary, arms, colors),
        _costs(summary, scenario, arms),
        channels_section(summary, arms, colors),
    ]
    if len(arms) > 1 and summary.get("differences_vs_baseline"):
        sections.append(_differences(summary, arms, colors))
    sla = scenario.inbound.sla_minutes if scenario.inbound is not None else None
    sections.append(inbound_section(summary, arms, colors, sla))
    sections += [_timeseries(timeseries, arms, colors), market_html(summary), _definitions()]
    title = esc(summary.get("scenario") or scenario.name)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} - masssim report</title><style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body><main>{''.join(sections)}"
        "<footer>Generated by masssim. This page works offline: everything it needs is inside the file."
        "</footer></main></body></html>\n"
    )
