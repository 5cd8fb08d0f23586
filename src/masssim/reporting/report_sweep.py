"""The HTML report of ``masssim sweep``: one line per strategy across the swept values, a table of every cell.

Built like the comparison's (:mod:`masssim.reporting.report_compare`), whose page, scales and legends it reuses.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.colors import hex_to_rgb

from masssim.config.overrides import _show
from masssim.config.schema import Scenario
from masssim.model.metrics import REGISTRY
from masssim.reporting.html import PALETTE, esc, figure_div, finite, fmt_ci, fmt_value, has_ci, style_figure
from masssim.reporting.lesson_reading import Source, read_lesson
from masssim.reporting.narrative import read_sweep, read_sweep_arms
from masssim.reporting.report import lesson_section
from masssim.reporting.report_compare import _axis_title, _facts, _legend_below, _page, _scale
from masssim.reporting.report_market import sweep_market_html

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

FROM_ZERO = frozenset({"cost_total", "click_rate", "incremental_purchases_true"})
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
BEST_SYMBOL = "star"
DEFAULT_METRIC = "incremental_profit"
# A line whose largest |value| is this many times its smallest non-zero |value| spans orders of magnitude: it
# also gets a symmetric-log chart, where one extreme cell cannot flatten the others.
SPAN_FOR_SYMLOG = 100.0


def _rgba(color: str, alpha: float) -> str:
    r, g, b = hex_to_rgb(color)
    return f"rgba({r}, {g}, {b}, {alpha})"


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
        f"<tr><td><code>{esc(path)}</code></td><td>{len(values)}</td>"
        f"<td>{', '.join(f'<code>{esc(_show(v))}</code>' for v in values)}</td></tr>"
        for path, values in grid.items()
    )
    arm_rows = "".join(
        f"<tr><td><b>{esc(arm.name)}</b></td><td><code>{esc(arm.policy)}</code></td>"
        f"<td>{esc(', '.join(f'{k} = {v}' for k, v in sorted(arm.params.items())) or 'defaults')}</td></tr>"
        for arm in base.arms
    )
    description = base.description.strip()
    lead = f'<p class="lead">{esc(description)}</p>' if description else ""
    missing = (
        f'<p class="note">Only {len(cells)} of the {expected} cells have finished; running the same sweep again '
        "computes the missing ones.</p>"
        if len(cells) < expected
        else ""
    )
    return (
        f"<header><h1>{esc(base.name)}: sweep</h1>{lead}{_facts(facts)}"
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
        self.categories = [esc(_show(v)) for v in order]
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
                self.names[key] = esc(" · ".join(parts))
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
            means = [finite(self.stat(cell, line[0], metric).get("mean")) for _, cell in points]
            scored = [(m, cell["index"]) for m, (_, cell) in zip(means, points, strict=True) if m is not None]
            if scored:
                self.best[line] = max(scored, key=lambda item: item[0])[1]

    @staticmethod
    def stat(cell: dict[str, Any], arm: str, metric: str) -> dict[str, Any]:
        stat: dict[str, Any] = ((cell.get("arms") or {}).get(arm) or {}).get(metric) or {}
        return stat

    def x(self, value: Any) -> Any:
        return value if self.numeric else esc(_show(value))


def _symlog(y: float, c: float) -> float:
    """Symmetric log: linear within +-c, logarithmic beyond, sign kept (0 stays 0)."""
    return math.copysign(math.log10(1.0 + abs(y) / c), y)


def _symlog_ticks(lowest: float, highest: float, c: float, unit: str, scale: float) -> tuple[list[float], list[str]]:
    """Ticks for a symlog axis over [lowest, highest] (display units): 0 and +-c*10^k, labelled in the
    metric's unit (``scale`` converts display units back)."""
    low, high = min(lowest, 0.0), max(highest, 0.0)
    vals, texts = [0.0], [fmt_value(0.0, unit)]
    for k in range(16):
        step = c * 10**k
        if step > max(abs(low), abs(high)):
            break
        for v in (step, -step):
            if low <= v <= high:
                vals.append(_symlog(v, c))
                texts.append(fmt_value(v / scale, unit))
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
            if (v := finite(stat_of(cell, line[0]).get(key))) is not None
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
        means = [finite(s.get("mean")) for s in stats]
        ys = [math.nan if m is None else tr(m * scale) for m in means]
        if all(has_ci(s) for s in stats):
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
            f"<b>{name}</b><br>{esc(lines.first)} = {esc(_show(value))}<br>"
            f"{esc(fmt_value(m, unit))}, {esc(fmt_ci(s, unit))}<br>cell {cell['index']}"
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
                        hovertemplate=f"<b>{name}</b><br>highest {esc(metric)} on this line<extra></extra>",
                    )
                )
    if lines.best and difference is None:
        entries += 1
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=f"highest {esc(metric)} on the line",
                marker={"symbol": BEST_SYMBOL, "size": 15, "color": "#fff", "line": {"color": "#1f2933", "width": 1.2}},
                hoverinfo="skip",
            )
        )
    style_figure(fig, height=420)
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
        fig.update_xaxes(title_text=esc(lines.first), type="log" if lines.log else "linear")
        if len(lines.values) <= 15:  # label exactly the swept values (a log axis otherwise labels 8, 9, 1, 2...)
            fig.update_xaxes(tickmode="array", tickvals=lines.values, ticktext=lines.categories)
    else:
        fig.update_xaxes(
            title_text=esc(lines.first), type="category", categoryorder="array", categoryarray=lines.categories
        )
    band = "The shaded band around each line is its 95% confidence interval. " if any_band else ""
    if difference is not None:
        lead = (
            f"Each arm minus <b>{esc(difference)}</b> in the same cell, replication by replication (paired), for "
            f"<code>{esc(metric)}</code> against <code>{esc(lines.first)}</code>. {band}Where the band "
            "excludes 0 the arms differ clearly in that cell."
        )
    else:
        lead = (
            f"How {esc(what)} (<code>{esc(metric)}</code>, averaged over the replications) changes with "
            f"<code>{esc(lines.first)}</code>. {band}The star marks, on each line, the setting with the highest "
            f"<code>{esc(lines.metric)}</code>."
        )
    symlog_note = (
        " The vertical axis is symmetric-logarithmic (linear near 0, logarithmic beyond, sign kept): the values "
        "span orders of magnitude, and on a linear axis the largest would flatten the rest."
        if symlog
        else ""
    )
    return f'<h3>{esc(title)}</h3><p class="explain">{lead}{symlog_note}</p>{figure_div(fig)}'


def _sweep_charts(grid: dict[str, list[Any]], lines: _Lines, cells: list[dict[str, Any]]) -> str:
    first = lines.first
    notes = []
    if not lines.numeric:
        notes.append(
            f"The values of <code>{esc(first)}</code> are not all numbers, so they are shown as categories in "
            "the order they were given; the lines between them only guide the eye."
        )
    elif lines.log:
        notes.append(
            f"The values of <code>{esc(first)}</code> span more than a factor of 20, so the horizontal axis is "
            "logarithmic: equal steps are equal ratios."
        )
    if len(grid[first]) == 1:
        notes.append(f"<code>{esc(first)}</code> has a single value, so each line is a single point.")
    if cells and all(int(cell.get("replications", 0)) < 2 for cell in cells):
        notes.append("Each cell has a single replication, so there are no confidence bands.")
    several_arms = len({arm for arm, _ in lines.keys}) > 1
    others = ", ".join(f"<code>{esc(p)}</code>" for p in lines.others)
    if not lines.others:
        lines_text = "one line per arm" if several_arms else "one line"
    elif several_arms:
        lines_text = f"one line per arm and combination of {others} (colour: the combination; line style: the arm)"
    else:
        lines_text = (
            f"one line per value of {others}" if len(lines.others) == 1 else f"one line per combination of {others}"
        )
    banded = any(int(cell.get("replications", 0)) >= 2 for cell in cells)
    if any(p.startswith("population.") for p in grid):  # another population in each cell: the seed is shared,
        shared = (  # the customers are not
            "All cells share the seed, but the sweep changes the population, so the cells do not meet the same "
            "customers: a curve's neighbouring points differ by chance as well as by the setting."
        )
    else:
        shared = (
            "All cells share the seed, so they meet the same customers: the shape of a curve (which setting is "
            "better than its neighbour) is more reliable than the width of its band suggests, because the chance "
            "variation is largely common to all points."
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
        if (v := finite(lines.stat(cell, line[0], metric).get("mean"))) is not None
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
        f'<p class="explain">Each chart puts the first swept parameter, <code>{esc(first)}</code>, across '
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
    head = "".join(f"<th><code>{esc(path)}</code></th>" for path in grid)
    rows = []
    for cell in cells:
        overrides = cell.get("overrides") or {}
        params = "".join(f"<td>{esc(_show(overrides.get(path)))}</td>" for path in grid)
        for arm in cell.get("arms") or {}:
            stat = lines.stat(cell, arm, metric)
            best = (arm, cell["index"]) in best_cells
            tag = '<span class="tag">highest of its line</span>' if best else ""
            rows.append(
                f"<tr><td>{cell['index']}</td>{params}<td><b>{esc(arm)}</b></td>"
                f'<td class="num{" best" if best else ""}">{esc(fmt_value(stat.get("mean"), unit))}{tag}'
                f"<small>{esc(fmt_ci(stat, unit))}</small></td>"
                f'<td class="num">{int(cell.get("replications", 0))}</td></tr>'
            )
    return (
        "<section><h2>All cells</h2>"
        f'<p class="explain">Every cell and arm with its <code>{esc(metric)}</code> (the average over the '
        'replications, with its 95% confidence interval underneath). "Highest of its line" is the star of the '
        "charts above. Every metric is in <code>sweep.csv</code>.</p>"
        f'<table><thead><tr><th>Cell</th>{head}<th>Arm</th><th class="num">{esc(_title(metric))}</th>'
        f'<th class="num">Replications</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>'
    )


def _cell_label(grid: dict[str, list[Any]], cell: dict[str, Any], arm: str) -> str:
    """ "cell 3 (path=value, ...), arm" for the market table."""
    overrides = cell.get("overrides") or {}
    values = ", ".join(f"{path}={_show(overrides.get(path))}" for path in grid)
    return f"cell {cell['index']} ({values}), {arm}"


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
        items = "".join(f"<li>{esc(line)}</li>" for line in findings)
        sections.append(
            "<section><h2>What this sweep says</h2>"
            '<p class="explain">Every cell used the same seeds, so cells with the same number of replications are '
            "compared replication by replication (paired 95% confidence intervals); cells with different numbers "
            "(a sweep with --until) by Welch's interval for two independent means.</p>"
            f'<ul class="findings">{items}</ul></section>'
        )
    if grid and cells:
        lines = _Lines(grid, cells, arms, metric)
        sections += [
            _sweep_charts(grid, lines, cells),
            _sweep_table(grid, cells, lines),
            sweep_market_html(cells, lambda cell, arm: _cell_label(grid, cell, arm)),
        ]
    else:
        sections.append('<p class="note">No cell has finished yet, so there is nothing to chart.</p>')
    return _page(f"{base.name} - masssim sweep", sections)
