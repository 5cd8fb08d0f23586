"""The HTML reports of ``masssim compare`` and ``masssim sweep``: standalone pages, readable offline.

They follow the single-run report (:mod:`masssim.reporting.report`) and reuse its style sheet, number formatting,
escaping and figure helpers: plotly.js is embedded once, inline, every chart is a ``<div>`` drawn with it,
each chart has a sentence above it saying how to read it, and all text that comes from the user (labels,
arm names, override values, the scenario description) is HTML-escaped, in the page and inside the charts
(plotly renders a small subset of HTML in trace names and tick labels, so those are escaped too).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.colors import hex_to_rgb
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from masssim.config.overrides import _show
from masssim.config.schema import Scenario
from masssim.estimation.intervals import welch_difference
from masssim.model.metrics import REGISTRY
from masssim.reporting.lesson_reading import Source, read_lesson
from masssim.reporting.narrative import (
    has_inbound,
    inbound_first,
    money,
    read_comparison,
    read_sweep,
    read_sweep_arms,
)
from masssim.reporting.report import (
    CSS,
    DIFFERENCES,
    KEY_FIGURES,
    PALETTE,
    _div,
    _error_bars,
    _esc,
    _finite,
    _fmt,
    _fmt_ci,
    _has_ci,
    _style,
    channels_section,
    holdout_stat,
    inbound_section,
    lesson_section,
)

# The per-strategy charts of a comparison: metric and subplot title (the differences use DIFFERENCES).
COMPARE_CHARTS: tuple[tuple[str, str], ...] = (
    ("incremental_profit", "Incremental profit"),
    ("incremental_revenue", "Incremental revenue"),
    ("click_rate", "Click rate (%)"),
)

# The curves of a sweep: metric, chart title, and what the figure is, for the sentence above the chart.
SWEEP_CHARTS: tuple[tuple[str, str, str], ...] = (
    (
        "incremental_profit",
        "Incremental profit",
        "the extra gross margin the marketing caused (measured against the holdout) minus everything it cost",
    ),
    (
        "incremental_revenue",
        "Incremental revenue (holdout estimate)",
        "the extra revenue measured against the holdout group that was never contacted",
    ),
    ("cost_total", "Total cost", "what the campaign cost: sending, paid media and creative production"),
    ("click_rate", "Click rate", "clicks as a share of delivered messages"),
    (
        "incremental_purchases_true",
        "Truly extra purchases (simulator's true figure)",
        "the purchases that would not have happened without the marketing, as only the simulator can know",
    ),
)

# The paired differences of the inbound desk: metric, title, and whether more is better (for abandonment,
# waiting, misses, false alarms and cost, less is better, and the verdicts say so).
INBOUND_DIFFERENCES: tuple[tuple[str, str, bool], ...] = (
    ("sla_attainment", "Answered within the SLA", True),
    ("needle_sla_attainment", "Needles answered within the SLA", True),
    ("abandonment_share", "Gave up waiting", False),
    ("response_time_p90_s", "Response time (90th pct.)", False),
    ("missed_needles", "Missed needles", False),
    ("false_alarms", "False alarms", False),
    ("false_alarm_cost", "What false alarms cost", False),
    ("satisfaction", "Satisfaction", True),
    ("conversation_revenue", "Conversation revenue", True),
    ("cost_inbound", "Inbound desk cost", False),
)
# Legend texts when "better" may lie on either side of zero.
INBOUND_VERDICTS: dict[str, str] = {
    "better": "Clearly better than the baseline (95% CI excludes zero)",
    "worse": "Clearly worse than the baseline (95% CI excludes zero)",
    "unclear": "Could be chance (95% CI includes zero)",
    "none": "No interval (one replication)",
}

VERDICTS: dict[str, tuple[str, str, str]] = {
    # verdict -> (legend text, colour, marker symbol)
    "better": ("Clearly better than the baseline (95% CI above zero)", "#1a7f37", "triangle-right"),
    "worse": ("Clearly worse than the baseline (95% CI below zero)", "#c0392b", "triangle-left"),
    "unclear": ("Could be chance (95% CI includes zero)", "#7b8794", "circle-open"),
    "none": ("No interval (one replication)", "#7b8794", "diamond-open"),
}
VERDICT_WORDS = {
    "better": "clearly better",
    "worse": "clearly worse",
    "unclear": "could be chance",
    "none": "cannot be judged (one replication)",
}
FROM_ZERO = frozenset({"cost_total", "click_rate", "incremental_purchases_true"})
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
BEST_SYMBOL = "star"
DEFAULT_METRIC = "incremental_profit"
# A line whose largest |value| is this many times its smallest non-zero |value| spans orders of magnitude: it
# also gets a symmetric-log chart, where one extreme cell cannot flatten the others.
SPAN_FOR_SYMLOG = 100.0

EXTRA_CSS = """
.tag { display: inline-block; margin-left: 6px; padding: 0 7px; border-radius: 9px; font-size: 0.75em;
       font-weight: 600; background: #e1ecf7; color: var(--accent); vertical-align: 1px; white-space: nowrap; }
.better { color: #1a7f37; font-weight: 600; }
.worse { color: #c0392b; font-weight: 600; }
.unclear { color: var(--muted); }
ul.pairing li { margin: 0.25em 0; }
td.best { font-weight: 600; }
td.best small { font-weight: 400; }
h3 { font-size: 1.1em; margin: 1.8em 0 0.3em; }
"""


# ---------------------------------------------------------------- shared pieces


def _page(title: str, sections: Sequence[str]) -> str:
    """The page shell: the report's style sheet, plotly.js inlined once, the sections and a footer."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}{EXTRA_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body><main>{''.join(sections)}"
        "<footer>Generated by masssim. This page works offline: everything it needs is inside the file."
        "</footer></main></body></html>\n"
    )


def _facts(facts: Sequence[tuple[str, str]]) -> str:
    items = "".join(f"<li><b>{_esc(value)}</b><span>{_esc(label)}</span></li>" for value, label in facts)
    return f'<ul class="facts">{items}</ul>'


def _scale(metric: str) -> float:
    """Shares are drawn in percent (or percentage points for differences), durations in minutes."""
    unit = REGISTRY[metric].unit
    return 100.0 if unit == "share" else 1 / 60 if unit == "seconds" else 1.0


def _axis_title(metric: str, *, difference: bool = False) -> str:
    unit = REGISTRY[metric].unit
    if unit == "share":
        return "percentage points" if difference else "%"
    if unit == "currency":
        return "currency units"
    return "minutes" if unit == "seconds" else unit


def _fmt_signed(value: Any, unit: str) -> str:
    """A difference, always with its sign; shares in percentage points."""
    v = _finite(value)
    if v is None:
        return "n/a"
    if unit == "share":
        return f"{100 * v:+.2f} pp"
    text = _fmt(abs(v), unit)
    return ("-" if v < 0 else "+" if v > 0 else "") + text


def _diff_ci(stat: dict[str, Any], unit: str) -> str:
    if not _has_ci(stat):
        return "no interval (one replication)"
    return f"95% CI {_fmt_signed(stat['ci_low'], unit)} to {_fmt_signed(stat['ci_high'], unit)}"


def _verdict(stat: dict[str, Any], *, more_is_better: bool = True) -> str:
    excludes = stat.get("excludes_zero")
    mean = _finite(stat.get("mean"))
    if excludes is None or mean is None:
        return "none"
    if not excludes:
        return "unclear"
    return "better" if (mean > 0) == more_is_better else "worse"


def _rgba(color: str, alpha: float) -> str:
    r, g, b = hex_to_rgb(color)
    return f"rgba({r}, {g}, {b}, {alpha})"


def _legend_below(fig: go.Figure, entries: int, *, height: int, per_row: int = 3, top: int = 40) -> None:
    """Long legends go under the chart (below the axis title), where they cannot collide with the toolbar."""
    rows = max(1, math.ceil(entries / per_row))
    bottom = 78 + 24 * rows
    plot_height = height - top - 60  # the plotting area keeps the height it would have without a legend
    fig.update_layout(
        height=plot_height + top + bottom,
        legend={"orientation": "h", "yanchor": "top", "y": -66 / plot_height, "xanchor": "left", "x": 0},
        margin={"l": 80, "r": 30, "t": top, "b": bottom},
    )


# ---------------------------------------------------------------- comparison


def _compare_header(summary: dict[str, Any], labels: list[str]) -> str:
    variants: dict[str, Any] = summary.get("variants") or {}
    baseline = summary.get("baseline_arm")
    scenarios = list(dict.fromkeys(str(v.get("scenario", "")) for v in variants.values() if v.get("scenario")))
    n = summary.get("replications", 0)
    seed = summary.get("seed_entropy")
    facts = [
        (str(len(labels)), "strategies compared"),
        (str(n), "replication" + ("s" if n != 1 else "") + " of each (independent re-runs)"),
        ("n/a" if seed is None else str(seed), "seed (re-run with it to get the same numbers)"),
        (f"{100 * float(summary.get('confidence') or 0.95):g}%", "confidence of the intervals"),
    ]
    rows = []
    for label in labels:
        info = variants.get(label, {})
        overrides = str(info.get("overrides") or "")
        changes = f"<code>{_esc(overrides)}</code>" if overrides else "none (as in the scenario file)"
        tag = '<span class="tag">baseline</span>' if label == baseline else ""
        rows.append(
            f"<tr><td><b>{_esc(label)}</b>{tag}</td><td>{_esc(info.get('scenario', ''))}</td>"
            f"<td>{_esc(info.get('arm', ''))}</td><td><code>{_esc(info.get('policy', ''))}</code></td>"
            f"<td>{changes}</td></tr>"
        )
    title = "Comparison" + (f": {', '.join(scenarios)}" if scenarios else "")
    return (
        f"<header><h1>{_esc(title)}</h1>"
        f'<p class="lead">{len(labels)} strategies simulated on the same seed, each compared with the baseline '
        f"<b>{_esc(baseline)}</b>.</p>{_facts(facts)}"
        "<h2>What was compared</h2>"
        '<p class="explain">Each row is one compared strategy: a scenario (or a variant of it, with the settings '
        'listed under "Changes") and the targeting policy of its arm.</p>'
        "<table><thead><tr><th>Label</th><th>Scenario</th><th>Arm</th><th>Policy</th><th>Changes</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></header>"
    )


def _compare_findings(summary: dict[str, Any]) -> str:
    items = "".join(f"<li>{_esc(line)}</li>" for line in read_comparison(summary))
    extra = ""
    if summary.get("replications", 0) < 2:
        extra = (
            '<p class="note">This comparison has a single replication, so no confidence intervals can be given: '
            "the charts below have no error bars and no difference can be called real. Run more replications.</p>"
        )
    return (
        "<section><h2>What this comparison says</h2>"
        '<p class="explain">"Incremental" means caused by the marketing: the extra purchases compared with '
        "what customers would have bought anyway, measured against a holdout group that was never contacted "
        "(the simulator also knows the true figure). A 95% confidence interval (CI) is the range in which the "
        f'average would most likely fall if the comparison were repeated many times.</p><ul class="findings">'
        f"{items}</ul>{extra}</section>"
    )


_BASE_NOTE = "<br><small>(baseline)</small>"


def _compare_head(summary: dict[str, Any], labels: list[str]) -> str:
    """Column headings of a table with one column per strategy (the baseline marked)."""
    baseline = summary.get("baseline_arm")
    return "".join(
        f'<th class="num">{_esc(label)}{_BASE_NOTE if label == baseline and label.lower() != "baseline" else ""}</th>'
        for label in labels
    )


def _compare_table(summary: dict[str, Any], labels: list[str]) -> str:
    head = _compare_head(summary, labels)
    rows = []
    for metric, title in KEY_FIGURES:
        unit = REGISTRY[metric].unit
        cells = []
        for label in labels:
            stat = holdout_stat(summary, label, metric)
            mean, ci = _esc(_fmt(stat.get("mean"), unit)), _esc(_fmt_ci(stat, unit))
            cells.append(f'<td class="num">{mean}<small>{ci}</small></td>')
        rows.append(f"<tr><td>{_esc(title)}<br><code>{_esc(metric)}</code></td>{''.join(cells)}</tr>")
    return (
        "<section><h2>Key figures</h2>"
        '<p class="explain">The average over all replications for each compared strategy, with its 95% '
        "confidence interval underneath. Money is in the scenario's currency units; ROI is incremental profit "
        "divided by cost (0 means the marketing paid for itself, below 0 it lost money).</p>"
        f"<table><thead><tr><th>Figure</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _tick(label: str, baseline: str) -> str:
    """A strategy's name as a tick label (escaped: plotly reads tick text as HTML)."""
    return _esc(label) + (" (baseline)" if label == baseline and label.lower() != "baseline" else "")


def _means_chart(summary: dict[str, Any], labels: list[str], colors: dict[str, str]) -> str:
    baseline = summary["baseline_arm"]
    fig = make_subplots(
        rows=1,
        cols=len(COMPARE_CHARTS),
        subplot_titles=[title for _, title in COMPARE_CHARTS],
        shared_yaxes=True,
        horizontal_spacing=0.05,
    )
    any_ci = False
    for col, (metric, _) in enumerate(COMPARE_CHARTS, start=1):
        scale, unit = _scale(metric), REGISTRY[metric].unit
        for label in labels:
            stat = summary["arms"][label].get(metric) or {}
            mean = _finite(stat.get("mean"))
            bars = _error_bars([stat], scale) if mean is not None else None
            any_ci = any_ci or bars is not None
            fig.add_trace(
                go.Scatter(
                    x=[math.nan if mean is None else mean * scale],
                    y=[_tick(label, baseline)],
                    mode="markers",
                    name=_esc(label),
                    showlegend=False,
                    marker={"size": 13, "color": colors[label], "symbol": "diamond" if label == baseline else "circle"},
                    error_x=bars,
                    hovertemplate=f"<b>{_esc(label)}</b><br>{_esc(_fmt(mean, unit))}, {_esc(_fmt_ci(stat, unit))}"
                    "<extra></extra>",
                ),
                row=1,
                col=col,
            )
        base = _finite((summary["arms"][baseline].get(metric) or {}).get("mean"))
        if base is not None:
            fig.add_vline(x=base * scale, line={"color": "#9aa5b1", "width": 1.5, "dash": "dot"}, row=1, col=col)
        fig.update_xaxes(title_text=_axis_title(metric), row=1, col=col)
    _style(fig, height=max(280, 150 + 60 * len(labels)))
    fig.update_yaxes(type="category", range=[len(labels) - 0.4, -0.6])
    fig.update_xaxes(zeroline=True, zerolinecolor="#888", zerolinewidth=1)
    fig.update_layout(margin={"l": 150, "r": 30, "t": 50, "b": 60})
    ci_note = (
        "The horizontal lines are the 95% confidence intervals. Overlapping intervals do not mean that two "
        "strategies are alike: the next section compares each one with the baseline replication by "
        "replication, which is much more precise."
        if any_ci
        else "There are no error bars because the comparison has a single replication."
    )
    return (
        "<section><h2>Each strategy on its own</h2>"
        '<p class="explain">Each dot is the average of one strategy over the replications (the baseline is '
        f"the diamond, and its average is repeated as a dotted vertical line in each panel). {_esc(ci_note)}</p>"
        f"{_div(fig)}</section>"
    )


def _legend_marker(name: str, color: str, symbol: str) -> go.Scatter:
    """A legend entry for a verdict's marker (no data point)."""
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        name=name,
        marker={"size": 12, "color": color, "symbol": symbol, "line": {"width": 2, "color": color}},
        hoverinfo="skip",
    )


def _inbound_symbol(verdict: str) -> str:
    """Inbound verdicts say better or worse (direction-aware): a star or a cross; others as VERDICTS."""
    return {"better": "star", "worse": "x"}.get(verdict, VERDICTS[verdict][2])


def _difference_marker(
    label: str, baseline: str, stat: dict[str, Any], scale: float, unit: str, verdict: str, color: str, symbol: str
) -> go.Scatter:
    """One strategy's paired difference from the baseline: a marker with its CI as error bars."""
    mean = _finite(stat.get("mean"))
    return go.Scatter(
        x=[math.nan if mean is None else mean * scale],
        y=[_esc(label)],
        mode="markers",
        name=_esc(label),
        showlegend=False,
        marker={"size": 14, "color": color, "symbol": symbol, "line": {"width": 2, "color": color}},
        error_x=_error_bars([stat], scale) if mean is not None else None,
        hovertemplate=f"<b>{_esc(label)}</b> minus <b>{_esc(baseline)}</b><br>"
        f"{_esc(_fmt_signed(mean, unit))}, {_esc(_diff_ci(stat, unit))}<br>"
        f"{_esc(VERDICT_WORDS[verdict])}<extra></extra>",
    )


def _differences_chart(summary: dict[str, Any], others: list[str]) -> str:
    baseline = summary["baseline_arm"]
    diffs: dict[str, Any] = summary["differences_vs_baseline"]
    fig = make_subplots(
        rows=1,
        cols=len(DIFFERENCES),
        subplot_titles=[title for _, title in DIFFERENCES],
        shared_yaxes=True,
        horizontal_spacing=0.05,
    )
    seen: list[str] = []
    for col, (metric, _) in enumerate(DIFFERENCES, start=1):
        scale, unit = _scale(metric), REGISTRY[metric].unit
        for label in others:
            stat = diffs[label].get(metric) or {}
            verdict = _verdict(stat)
            seen.append(verdict)
            _, color, symbol = VERDICTS[verdict]
            fig.add_trace(
                _difference_marker(label, baseline, stat, scale, unit, verdict, color, symbol),
                row=1,
                col=col,
            )
        fig.add_vline(x=0, line={"color": "#52606d", "width": 1.5, "dash": "dash"}, row=1, col=col)
        fig.update_xaxes(title_text=_axis_title(metric, difference=True), row=1, col=col)
    for verdict, (text, color, symbol) in VERDICTS.items():
        if verdict in seen:
            fig.add_trace(_legend_marker(text, color, symbol), row=1, col=1)
    _style(fig, height=max(260, 130 + 60 * len(others)))
    fig.update_yaxes(type="category", range=[len(others) - 0.4, -0.6])
    _legend_below(fig, len(set(seen)), height=max(260, 130 + 60 * len(others)), per_row=2, top=50)
    fig.update_layout(margin={"l": 150, "r": 30})
    any_ci = any(v != "none" for v in seen)
    ci_note = (
        "If a horizontal line crosses the dashed zero line, the difference could be chance (grey open "
        "circle); if the whole line lies right of zero the strategy is clearly better than the baseline "
        "(green), left of zero clearly worse (red)."
        if any_ci
        else "With a single replication there are no confidence intervals, so these differences cannot be "
        "judged: they could be chance."
    )
    return (
        f'<p class="explain">Each marker is how much more (right of zero) or less (left of zero) a strategy '
        f"achieved than <b>{_esc(baseline)}</b>, averaged over the replications. {_esc(ci_note)} Click rates "
        f"differ in percentage points.</p>{_div(fig)}"
    )


def _differences_table(summary: dict[str, Any], others: list[str]) -> str:
    diffs: dict[str, Any] = summary["differences_vs_baseline"]
    head = "".join(f'<th class="num">{_esc(title)}</th>' for _, title in DIFFERENCES)
    rows = []
    for label in others:
        cells = []
        for metric, _ in DIFFERENCES:
            stat = diffs[label].get(metric) or {}
            unit = REGISTRY[metric].unit
            verdict = _verdict(stat)
            cells.append(
                f'<td class="num"><span class="{"unclear" if verdict == "none" else verdict}">'
                f"{_esc(_fmt_signed(stat.get('mean'), unit))}</span>"
                f"<small>{_esc(_diff_ci(stat, unit))}</small><small>{_esc(VERDICT_WORDS[verdict])}</small></td>"
            )
        rows.append(f"<tr><td><b>{_esc(label)}</b></td>{''.join(cells)}</tr>")
    return (
        f"<table><thead><tr><th>Strategy minus baseline</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _pairing(summary: dict[str, Any], others: list[str]) -> str:
    """Why paired intervals are narrow, with this comparison's own numbers as the example."""
    baseline = summary["baseline_arm"]
    variants: dict[str, Any] = summary.get("variants") or {}
    examples = []
    for label in others:
        stat = summary["differences_vs_baseline"][label].get("incremental_profit") or {}
        paired = _finite(stat.get("halfwidth"))
        a = (summary["arms"][label].get("incremental_profit") or {}).get("values")
        b = (summary["arms"][baseline].get("incremental_profit") or {}).get("values")
        if paired is None or not a or not b or len(a) != len(b):
            continue
        unpaired = _finite(welch_difference(a, b).get("halfwidth"))
        if unpaired is None:
            continue
        examples.append(
            f"<li><b>{_esc(label)}</b>: plus or minus {_esc(money(paired))} paired, plus or minus "
            f"{_esc(money(unpaired))} if the two sets of runs were treated as independent.</li>"
        )
    listing = (
        '<p class="explain">Half-widths of the 95% CI of the incremental profit difference in this comparison:'
        f'</p><ul class="pairing">{"".join(examples)}</ul>'
        if examples
        else ""
    )
    population = [
        label
        for label in [baseline, *others]
        if "population." in str((variants.get(label) or {}).get("overrides") or "")
    ]
    caveat = (
        '<p class="note">Pairing needs the same customers: '
        + ", ".join(f"<b>{_esc(label)}</b>" for label in population)
        + " changes the population settings, so its customers may not all be the baseline's; the "
        "half-widths above show how much the pairing still helps.</p>"
        if population
        else '<p class="note">When strategies come from different scenario files, they share customers only '
        "if their population settings are the same.</p>"
        if len({(variants.get(label) or {}).get("scenario") for label in [baseline, *others]}) > 1
        else ""
    )
    return (
        '<h3>Why these intervals are narrower than comparing the averages</h3><p class="explain">The differences '
        "are <b>paired</b>: in each replication every strategy met the same customers, the same holdout and the "
        "same purchase occasions, so the difference is computed replication by replication and the luck they "
        "share (a good week, a big-spending customer) cancels out. Their confidence intervals are therefore "
        "narrower than what comparing the two averages and their own intervals (the previous chart) would "
        f"suggest.</p>{listing}{caveat}"
    )


def _baseline_heading(baseline: str) -> str:
    if baseline.lower() == "baseline":
        return "Compared with the baseline"
    return f"Compared with the baseline ({baseline})"


def _compare_differences(summary: dict[str, Any], labels: list[str]) -> str:
    diffs: dict[str, Any] = summary.get("differences_vs_baseline") or {}
    others = [label for label in labels if label in diffs]
    if not others:
        return ""
    return (
        f"<section><h2>{_esc(_baseline_heading(summary['baseline_arm']))}</h2>"
        f"{_differences_chart(summary, others)}{_differences_table(summary, others)}"
        f"{_pairing(summary, others)}</section>"
    )


def _inbound_differences_chart(summary: dict[str, Any], others: list[str]) -> str:
    baseline = summary["baseline_arm"]
    diffs: dict[str, Any] = summary["differences_vs_baseline"]
    cols = 4
    rows = math.ceil(len(INBOUND_DIFFERENCES) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[
            f"{_esc(title)}<br>({'more' if more else 'less'} is better)" for _, title, more in INBOUND_DIFFERENCES
        ],
        shared_yaxes=True,
        horizontal_spacing=0.05,
        vertical_spacing=0.32 if rows > 1 else 0.0,
    )
    seen: list[str] = []
    for i, (metric, _, more_is_better) in enumerate(INBOUND_DIFFERENCES):
        row, col = divmod(i, cols)
        scale, unit = _scale(metric), REGISTRY[metric].unit
        for label in others:
            stat = diffs[label].get(metric) or {}
            verdict = _verdict(stat, more_is_better=more_is_better)
            seen.append(verdict)
            color, symbol = VERDICTS[verdict][1], _inbound_symbol(verdict)
            fig.add_trace(
                _difference_marker(label, baseline, stat, scale, unit, verdict, color, symbol),
                row=row + 1,
                col=col + 1,
            )
        fig.add_vline(x=0, line={"color": "#52606d", "width": 1.5, "dash": "dash"}, row=row + 1, col=col + 1)
        fig.update_xaxes(
            title_text=_axis_title(metric, difference=True), title_font={"size": 12}, row=row + 1, col=col + 1
        )
    for verdict, text in INBOUND_VERDICTS.items():
        if verdict in seen:
            fig.add_trace(_legend_marker(text, VERDICTS[verdict][1], _inbound_symbol(verdict)), row=1, col=1)
    height = rows * max(230, 120 + 50 * len(others)) + 60
    _style(fig, height=height)
    fig.update_yaxes(type="category", range=[len(others) - 0.4, -0.6])
    fig.update_annotations(font={"size": 12})
    _legend_below(fig, len(set(seen)), height=height, per_row=2, top=75)
    fig.update_layout(margin={"l": 150, "r": 30})
    return (
        "<h3>Compared with the baseline: the inbound desk</h3>"
        '<p class="explain">Each marker is the paired difference of a strategy minus '
        f"<b>{_esc(baseline)}</b>, replication by replication, with its 95% confidence interval. For the "
        "share answered within the SLA, satisfaction and revenue more is better; for giving up, waiting, "
        "missed needles, false alarms and cost less is better, and the colours take that into account: "
        "green (a star) is clearly better, red (a cross) clearly worse, grey could be chance. Shares differ "
        f"in percentage points, response times in minutes.</p>{_div(fig)}"
    )


def _inbound_differences_table(summary: dict[str, Any], others: list[str]) -> str:
    diffs: dict[str, Any] = summary["differences_vs_baseline"]
    rows = []
    for metric, title, more_is_better in INBOUND_DIFFERENCES:
        unit = REGISTRY[metric].unit
        cells = []
        for label in others:
            stat = diffs[label].get(metric) or {}
            verdict = _verdict(stat, more_is_better=more_is_better)
            cells.append(
                f'<td class="num"><span class="{"unclear" if verdict == "none" else verdict}">'
                f"{_esc(_fmt_signed(stat.get('mean'), unit))}</span>"
                f"<small>{_esc(_diff_ci(stat, unit))}</small><small>{_esc(VERDICT_WORDS[verdict])}</small></td>"
            )
        direction = "more is better" if more_is_better else "less is better"
        rows.append(f"<tr><td>{_esc(title)} ({direction})<br><code>{_esc(metric)}</code></td>{''.join(cells)}</tr>")
    base = _esc(summary["baseline_arm"])
    head = "".join(f'<th class="num">{_esc(label)} minus {base}</th>' for label in others)
    return f"<table><thead><tr><th>Figure</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _compare_inbound(summary: dict[str, Any], labels: list[str], colors: dict[str, str]) -> str:
    """The run report's inbound section for the compared strategies, plus their paired differences."""
    if not has_inbound(summary):
        return ""
    diffs: dict[str, Any] = summary.get("differences_vs_baseline") or {}
    others = [label for label in labels if label in diffs]
    extra = _inbound_differences_chart(summary, others) + _inbound_differences_table(summary, others) if others else ""
    return inbound_section(summary, labels, colors, head=_compare_head(summary, labels), extra=extra)


def render_comparison(summary: dict[str, Any]) -> str:
    """One standalone HTML page (plotly.js inline, no network needed) reporting ``masssim compare``."""
    labels = list(summary["arms"])
    colors = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    outbound = [
        _compare_table(summary, labels),
        _means_chart(summary, labels, colors),
        _compare_differences(summary, labels),
        channels_section(summary, labels, colors),
    ]
    inbound = [_compare_inbound(summary, labels, colors)]
    # A comparison of inbound settings shows the desk first: that is what it compares.
    lesson = read_lesson(summary["lesson"], Source(arms=summary["arms"])) if summary.get("lesson") else []
    sections = [
        _compare_header(summary, labels),
        lesson_section(lesson),
        _compare_findings(summary),
        *((inbound + outbound) if inbound_first(summary) else (outbound + inbound)),
    ]
    scenarios = list(dict.fromkeys(str(v.get("scenario")) for v in (summary.get("variants") or {}).values()))
    return _page(f"{', '.join(scenarios) or 'comparison'} - masssim comparison", sections)


# ---------------------------------------------------------------- sweep


def _key(value: Any) -> str:
    """A hashable identity for a swept value (values may be lists or tables)."""
    return json.dumps(value, sort_keys=True, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _sweep_header(grid: dict[str, list[Any]], cells: list[dict[str, Any]], base: Scenario, arms: list[str]) -> str:
    expected = math.prod(len(values) for values in grid.values())
    reps = sorted({int(cell.get("replications", 0)) for cell in cells})
    rep_text = "n/a" if not reps else str(reps[0]) if len(reps) == 1 else f"{reps[0]} to {reps[-1]}"
    facts = [
        (f"{len(cells)}" if len(cells) == expected else f"{len(cells)} of {expected}", "cells (scenario variants)"),
        (rep_text, "replications per cell"),
        (str(len(grid)), "swept parameter" + ("s" if len(grid) != 1 else "")),
        (str(len(arms)), "arm" + ("s" if len(arms) != 1 else "") + " in each cell"),
        (f"{base.horizon_days:g} days", "simulated period"),
        (f"{base.population.customers:,}", "customers (unless swept)"),
        ("fresh" if base.seed is None else str(base.seed), "seed"),
    ]
    grid_rows = "".join(
        f"<tr><td><code>{_esc(path)}</code></td><td>{len(values)}</td>"
        f"<td>{', '.join(f'<code>{_esc(_show(v))}</code>' for v in values)}</td></tr>"
        for path, values in grid.items()
    )
    arm_rows = "".join(
        f"<tr><td><b>{_esc(arm.name)}</b></td><td><code>{_esc(arm.policy)}</code></td>"
        f"<td>{_esc(', '.join(f'{k} = {v}' for k, v in sorted(arm.params.items())) or 'defaults')}</td></tr>"
        for arm in base.arms
    )
    description = base.description.strip()
    lead = f'<p class="lead">{_esc(description)}</p>' if description else ""
    missing = (
        f'<p class="note">Only {len(cells)} of the {expected} cells have finished; running the same sweep again '
        "computes the missing ones.</p>"
        if len(cells) < expected
        else ""
    )
    return (
        f"<header><h1>{_esc(base.name)}: sweep</h1>{lead}{_facts(facts)}"
        "<h2>The grid</h2>"
        '<p class="explain">Every combination of the values below is one cell: a variant of the scenario with '
        "those settings, run with the same seed so that all cells meet the same customers and purchase "
        f"occasions.</p><table><thead><tr><th>Parameter</th><th>Number of values</th><th>Values</th></tr></thead>"
        f"<tbody>{grid_rows}</tbody></table>{missing}"
        '<p class="explain">Strategies (arms) run in each cell:</p>'
        "<table><thead><tr><th>Arm</th><th>Policy</th><th>Settings</th></tr></thead>"
        f"<tbody>{arm_rows}</tbody></table></header>"
    )


class _Lines:
    """The curves of a sweep: one per arm and combination of the other swept parameters."""

    def __init__(
        self, grid: dict[str, list[Any]], cells: list[dict[str, Any]], arms: list[str], metric: str = DEFAULT_METRIC
    ) -> None:
        self.metric = metric
        paths = list(grid)
        self.first = paths[0]
        self.others = paths[1:]
        values = grid[self.first]
        self.numeric = bool(values) and all(_is_number(v) for v in values)
        positive = self.numeric and all(float(v) > 0 for v in values)
        self.log = positive and max(float(v) for v in values) / min(float(v) for v in values) > 20
        # x positions: numbers in increasing order, categories in the order given (escaped text).
        order = sorted(values, key=float) if self.numeric else list(values)
        self.rank = {_key(v): i for i, v in enumerate(order)}
        self.categories = [_esc(_show(v)) for v in order]
        self.values = order
        combos = list(itertools.product(*(grid[p] for p in self.others)))
        self.combos = combos
        self.keys: list[tuple[str, tuple[str, ...]]] = [
            (arm, tuple(_key(v) for v in combo)) for arm in arms for combo in combos
        ]
        self.names: dict[tuple[str, tuple[str, ...]], str] = {}
        self.styles: dict[tuple[str, tuple[str, ...]], tuple[str, str]] = {}
        for a, arm in enumerate(arms):
            for c, combo in enumerate(combos):
                key = (arm, tuple(_key(v) for v in combo))
                setting = ", ".join(f"{p}={_show(v)}" for p, v in zip(self.others, combo, strict=True))
                parts = ([arm] if len(arms) > 1 or not setting else []) + ([setting] if setting else [])
                self.names[key] = _esc(" · ".join(parts))
                if len(combos) > 1:
                    color = PALETTE[c % len(PALETTE)]
                    dash = DASHES[a % len(DASHES)] if len(arms) > 1 else "solid"
                else:
                    color, dash = PALETTE[a % len(PALETTE)], "solid"
                self.styles[key] = (color, dash)
        # Per line, its cells in x order: (x value, cell).
        self.points: dict[tuple[str, tuple[str, ...]], list[tuple[Any, dict[str, Any]]]] = {k: [] for k in self.keys}
        for cell in cells:
            overrides = cell.get("overrides") or {}
            if self.first not in overrides or _key(overrides[self.first]) not in self.rank:
                continue
            combo_key = tuple(_key(overrides.get(p)) for p in self.others)
            for arm in cell.get("arms") or {}:
                line = (arm, combo_key)
                if line in self.points:
                    self.points[line].append((overrides[self.first], cell))
        for points in self.points.values():
            points.sort(key=lambda item: self.rank[_key(item[0])])
        self.best: dict[tuple[str, tuple[str, ...]], int] = {}
        for line, points in self.points.items():
            means = [_finite(self.stat(cell, line[0], metric).get("mean")) for _, cell in points]
            scored = [(m, cell["index"]) for m, (_, cell) in zip(means, points, strict=True) if m is not None]
            if scored:
                self.best[line] = max(scored, key=lambda item: item[0])[1]

    @staticmethod
    def stat(cell: dict[str, Any], arm: str, metric: str) -> dict[str, Any]:
        stat: dict[str, Any] = ((cell.get("arms") or {}).get(arm) or {}).get(metric) or {}
        return stat

    def x(self, value: Any) -> Any:
        return value if self.numeric else _esc(_show(value))


def _symlog(y: float, c: float) -> float:
    """Symmetric log: linear within +-c, logarithmic beyond, sign kept (0 stays 0)."""
    return math.copysign(math.log10(1.0 + abs(y) / c), y)


def _symlog_ticks(lowest: float, highest: float, c: float, unit: str, scale: float) -> tuple[list[float], list[str]]:
    """Ticks for a symlog axis over [lowest, highest] (display units): 0 and +-c*10^k, labelled in the
    metric's unit (``scale`` converts display units back)."""
    low, high = min(lowest, 0.0), max(highest, 0.0)
    vals, texts = [0.0], [_fmt(0.0, unit)]
    for k in range(16):
        step = c * 10**k
        if step > max(abs(low), abs(high)):
            break
        for v in (step, -step):
            if low <= v <= high:
                vals.append(_symlog(v, c))
                texts.append(_fmt(v / scale, unit))
    return vals, texts


def spans_orders(values: Sequence[float]) -> bool:
    """Whether values (some far from 0) span more than SPAN_FOR_SYMLOG times between smallest and largest |v|."""
    nonzero = [abs(v) for v in values if v and math.isfinite(v)]
    return len(nonzero) >= 2 and max(nonzero) / min(nonzero) > SPAN_FOR_SYMLOG


def _sweep_chart(
    lines: _Lines, metric: str, title: str, what: str, *, symlog: bool = False, difference: str | None = None
) -> str:
    """One chart of ``metric`` against the first swept parameter, a line per arm (and combination of the other
    parameters). With ``difference`` (the baseline arm's name), each other arm's paired difference from it."""
    scale, unit = _scale(metric), REGISTRY[metric].unit

    def stat_of(cell: dict[str, Any], arm: str) -> dict[str, Any]:
        if difference is None:
            return lines.stat(cell, arm, metric)
        found: dict[str, Any] = ((cell.get("differences_vs_baseline") or {}).get(arm) or {}).get(metric) or {}
        return found

    if symlog:
        everything = [
            float(v) * scale
            for line in lines.keys
            for _, cell in lines.points[line]
            for key in ("mean", "ci_low", "ci_high")
            if (v := _finite(stat_of(cell, line[0]).get(key))) is not None
        ]
        nonzero = sorted(abs(v) for v in everything if v)
        c = nonzero[len(nonzero) // 2] / 10 if nonzero else 1.0  # linear below a tenth of the median size
    else:
        c = 1.0

    def tr(v: float) -> float:
        return _symlog(v, c) if symlog else v

    fig = go.Figure()
    any_band = False
    entries = 0
    for line in lines.keys:
        points = lines.points[line]
        if not points or line[0] == difference:
            continue
        color, dash = lines.styles[line]
        name = lines.names[line]
        stats = [stat_of(cell, line[0]) for _, cell in points]
        xs = [lines.x(value) for value, _ in points]
        means = [_finite(s.get("mean")) for s in stats]
        ys = [math.nan if m is None else tr(m * scale) for m in means]
        if all(_has_ci(s) for s in stats):
            any_band = True
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[tr(float(s["ci_high"]) * scale) for s in stats],
                    mode="lines",
                    line={"width": 0, "color": color},
                    legendgroup=name,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[tr(float(s["ci_low"]) * scale) for s in stats],
                    mode="lines",
                    line={"width": 0, "color": color},
                    fill="tonexty",
                    fillcolor=_rgba(color, 0.12),
                    legendgroup=name,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        hover = [
            f"<b>{name}</b><br>{_esc(lines.first)} = {_esc(_show(value))}<br>"
            f"{_esc(_fmt(m, unit))}, {_esc(_fmt_ci(s, unit))}<br>cell {cell['index']}"
            for (value, cell), m, s in zip(points, means, stats, strict=True)
        ]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                name=name,
                legendgroup=name,
                line={"color": color, "width": 2.4, "dash": dash},
                marker={"size": 7, "color": color},
                text=hover,
                hovertemplate="%{text}<extra></extra>",
            )
        )
        entries += 1
        best = lines.best.get(line) if difference is None else None
        for (value, cell), y in zip(points, ys, strict=True):
            if cell["index"] == best:
                fig.add_trace(
                    go.Scatter(
                        x=[lines.x(value)],
                        y=[y],
                        mode="markers",
                        name=name,
                        legendgroup=name,
                        showlegend=False,
                        marker={
                            "symbol": BEST_SYMBOL,
                            "size": 19,
                            "color": color,
                            "line": {"color": "#1f2933", "width": 1.2},
                        },
                        hovertemplate=f"<b>{name}</b><br>highest {_esc(metric)} on this line<extra></extra>",
                    )
                )
    if lines.best and difference is None:
        entries += 1
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=f"highest {_esc(metric)} on the line",
                marker={"symbol": BEST_SYMBOL, "size": 15, "color": "#fff", "line": {"color": "#1f2933", "width": 1.2}},
                hoverinfo="skip",
            )
        )
    _style(fig, height=420)
    _legend_below(fig, entries, height=420)
    fig.update_yaxes(
        title_text=_axis_title(metric, difference=difference is not None),
        zeroline=True,
        zerolinecolor="#888",
        zerolinewidth=1.2,
    )
    if symlog and everything:
        vals, texts = _symlog_ticks(min(everything), max(everything), c, unit, scale)
        fig.update_yaxes(
            title_text=_axis_title(metric) + " (symmetric log scale)", tickmode="array", tickvals=vals, ticktext=texts
        )
    elif not difference and (metric in FROM_ZERO or REGISTRY[metric].bounds[0] == 0.0):
        # a small change in a cost, a rate or a count should not fill the whole chart
        fig.update_yaxes(rangemode="tozero")
    if lines.numeric:
        fig.update_xaxes(title_text=_esc(lines.first), type="log" if lines.log else "linear")
        if len(lines.values) <= 15:  # label exactly the swept values (a log axis otherwise labels 8, 9, 1, 2...)
            fig.update_xaxes(tickmode="array", tickvals=lines.values, ticktext=lines.categories)
    else:
        fig.update_xaxes(
            title_text=_esc(lines.first), type="category", categoryorder="array", categoryarray=lines.categories
        )
    band = "The shaded band around each line is its 95% confidence interval. " if any_band else ""
    if difference is not None:
        lead = (
            f"Each arm minus <b>{_esc(difference)}</b> in the same cell, replication by replication (paired), for "
            f"<code>{_esc(metric)}</code> against <code>{_esc(lines.first)}</code>. {band}Where the band "
            "excludes 0 the arms differ clearly in that cell."
        )
    else:
        lead = (
            f"How {_esc(what)} (<code>{_esc(metric)}</code>, averaged over the replications) changes with "
            f"<code>{_esc(lines.first)}</code>. {band}The star marks, on each line, the setting with the highest "
            f"<code>{_esc(lines.metric)}</code>."
        )
    symlog_note = (
        " The vertical axis is symmetric-logarithmic (linear near 0, logarithmic beyond, sign kept): the values "
        "span orders of magnitude, and on a linear axis the largest would flatten the rest."
        if symlog
        else ""
    )
    return f'<h3>{_esc(title)}</h3><p class="explain">{lead}{symlog_note}</p>{_div(fig)}'


def _sweep_charts(grid: dict[str, list[Any]], lines: _Lines, cells: list[dict[str, Any]]) -> str:
    first = lines.first
    notes = []
    if not lines.numeric:
        notes.append(
            f"The values of <code>{_esc(first)}</code> are not all numbers, so they are shown as categories in "
            "the order they were given; the lines between them only guide the eye."
        )
    elif lines.log:
        notes.append(
            f"The values of <code>{_esc(first)}</code> span more than a factor of 20, so the horizontal axis is "
            "logarithmic: equal steps are equal ratios."
        )
    if len(grid[first]) == 1:
        notes.append(f"<code>{_esc(first)}</code> has a single value, so each line is a single point.")
    if cells and all(int(cell.get("replications", 0)) < 2 for cell in cells):
        notes.append("Each cell has a single replication, so there are no confidence bands.")
    several_arms = len({arm for arm, _ in lines.keys}) > 1
    others = ", ".join(f"<code>{_esc(p)}</code>" for p in lines.others)
    if not lines.others:
        lines_text = "one line per arm" if several_arms else "one line"
    elif several_arms:
        lines_text = f"one line per arm and combination of {others} (colour: the combination; line style: the arm)"
    else:
        lines_text = (
            f"one line per value of {others}" if len(lines.others) == 1 else f"one line per combination of {others}"
        )
    banded = any(int(cell.get("replications", 0)) >= 2 for cell in cells)
    shared = (
        "All cells share the seed, so they meet the same customers: the shape of a curve (which setting is better "
        "than its neighbour) is more reliable than the width of its band suggests, because the chance variation "
        "is largely common to all points."
        if banded
        else "All cells share the seed, so they meet the same customers and the lines are smooth rather than "
        "jagged by chance."
    )
    metric = lines.metric
    arms = list(dict.fromkeys(arm for arm, _ in lines.keys))
    chosen = _sweep_chart(lines, metric, _title(metric), REGISTRY[metric].definition)
    values = [
        float(v)
        for line in lines.keys
        for _, cell in lines.points[line]
        if (v := _finite(lines.stat(cell, line[0], metric).get("mean"))) is not None
    ]
    if spans_orders(values):
        chosen += _sweep_chart(
            lines, metric, f"{_title(metric)} (symmetric log scale)", REGISTRY[metric].definition, symlog=True
        )
    if len(arms) > 1:
        chosen += _sweep_chart(lines, metric, f"{_title(metric)}: each arm minus {arms[0]}", "", difference=arms[0])
    charts = chosen + "".join(_sweep_chart(lines, m, title, what) for m, title, what in SWEEP_CHARTS if m != metric)
    note_html = "".join(f'<p class="note">{text}</p>' for text in notes)
    return (
        "<section><h2>How the results change across the grid</h2>"
        f'<p class="explain">Each chart puts the first swept parameter, <code>{_esc(first)}</code>, across '
        f"the bottom, with {lines_text}. {shared} Where lines lie on top of each other, only the last one "
        f"drawn is visible.</p>{note_html}{charts}</section>"
    )


def _title(metric: str) -> str:
    """A chart title from a metric name (the registry has no display names): 'needle_sla_attainment' ->
    'Needle sla attainment'."""
    text = metric.replace("_", " ")
    return text[0].upper() + text[1:]


def _sweep_table(grid: dict[str, list[Any]], cells: list[dict[str, Any]], lines: _Lines) -> str:
    metric = lines.metric
    unit = REGISTRY[metric].unit
    best_cells = {(arm, index) for (arm, _), index in lines.best.items()}
    head = "".join(f"<th><code>{_esc(path)}</code></th>" for path in grid)
    rows = []
    for cell in cells:
        overrides = cell.get("overrides") or {}
        params = "".join(f"<td>{_esc(_show(overrides.get(path)))}</td>" for path in grid)
        for arm in cell.get("arms") or {}:
            stat = lines.stat(cell, arm, metric)
            best = (arm, cell["index"]) in best_cells
            tag = '<span class="tag">highest of its line</span>' if best else ""
            rows.append(
                f"<tr><td>{cell['index']}</td>{params}<td><b>{_esc(arm)}</b></td>"
                f'<td class="num{" best" if best else ""}">{_esc(_fmt(stat.get("mean"), unit))}{tag}'
                f"<small>{_esc(_fmt_ci(stat, unit))}</small></td>"
                f'<td class="num">{int(cell.get("replications", 0))}</td></tr>'
            )
    return (
        "<section><h2>All cells</h2>"
        f'<p class="explain">Every cell and arm with its <code>{_esc(metric)}</code> (the average over the '
        'replications, with its 95% confidence interval underneath). "Highest of its line" is the star of the '
        "charts above. Every metric is in <code>sweep.csv</code>.</p>"
        f'<table><thead><tr><th>Cell</th>{head}<th>Arm</th><th class="num">{_esc(_title(metric))}</th>'
        f'<th class="num">Replications</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>'
    )


def sweep_metric(base: Scenario, metric: str | None = None) -> str:
    """The metric a sweep is read on: the one asked for, else the lesson's first headline, else profit."""
    if metric is not None:
        return metric
    return base.lesson.headline[0] if base.lesson is not None else DEFAULT_METRIC


def render_sweep(
    grid: dict[str, list[Any]], cells: list[dict[str, Any]], base: Scenario, metric: str | None = None
) -> str:
    """One standalone HTML page (plotly.js inline, no network needed) reporting ``masssim sweep``, read on
    ``metric`` (see sweep_metric)."""
    metric = sweep_metric(base, metric)
    arms = list(dict.fromkeys(arm for cell in cells for arm in (cell.get("arms") or {})))
    if not arms:
        arms = [arm.name for arm in base.arms]
    sections = [_sweep_header(grid, cells, base, arms)]
    if base.lesson is not None and cells:
        sections.append(lesson_section(read_lesson(base.lesson, Source(cells=cells))))
    findings = read_sweep(grid, cells, metric) + read_sweep_arms(grid, cells, metric)
    if findings:
        items = "".join(f"<li>{_esc(line)}</li>" for line in findings)
        sections.append(
            "<section><h2>What this sweep says</h2>"
            '<p class="explain">Every cell used the same simulated customers and purchase occasions, so cells are '
            "compared replication by replication (paired 95% confidence intervals).</p>"
            f'<ul class="findings">{items}</ul></section>'
        )
    if grid and cells:
        lines = _Lines(grid, cells, arms, metric)
        sections += [_sweep_charts(grid, lines, cells), _sweep_table(grid, cells, lines)]
    else:
        sections.append('<p class="note">No cell has finished yet, so there is nothing to chart.</p>')
    return _page(f"{base.name} - masssim sweep", sections)
