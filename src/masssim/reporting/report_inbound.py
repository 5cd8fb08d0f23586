"""The run report's inbound section: find -> classify -> respond, per arm (tables, funnel, shares, response
times and the responder pools)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from masssim.model.messages import SOURCES
from masssim.reporting.html import (
    error_bars,
    esc,
    figure_div,
    finite,
    fmt_ci,
    fmt_value,
    funnel_figure,
    stat_cell,
    style_figure,
    summary_mean,
)
from masssim.reporting.narrative import has_inbound, read_inbound

INBOUND_HEADING = "Inbound: find → classify → respond"

# The inbound table: groups of (metric, label).
INBOUND_ROWS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Find",
        (
            ("inbound_volume", "Mentions found"),
            ("inbound_needles", "Needles: mentions truly about the brand"),
            ("inbound_replies", "Replies to our messages that entered the stream"),
        ),
    ),
    (
        "Classify",
        (
            ("classifier_precision", "Precision: flags that were right"),
            ("classifier_recall", "Recall: needles the core flagged"),
            ("classifier_f1", "F1 (precision and recall together)"),
            ("classification_delay_p50_s", "Classification delay, median"),
            ("classification_delay_p90_s", "Classification delay, 90th percentile"),
            ("classification_delay_p99_s", "Classification delay, 99th percentile"),
        ),
    ),
    (
        "Respond",
        (
            ("response_time_p50_s", "Response time, median (answered only)"),
            ("response_time_p90_s", "Response time, 90th percentile (answered only)"),
            ("response_time_p99_s", "Response time, 99th percentile (answered only)"),
            ("sla_attainment", "Answered within the SLA (of mentions sent to a pool)"),
            ("needle_response_time_p50_s", "Needles: response time, median (answered only)"),
            ("needle_response_time_p90_s", "Needles: response time, 90th percentile (answered only)"),
            ("needle_sla_attainment", "Needles answered within the SLA (of all needles)"),
            ("abandonment_share", "Gave up waiting (of mentions sent to a pool)"),
            ("missed_needles", "Missed needles: never answered"),
            ("missed_purchase_intents", "Missed purchase intents (sales that could not be won)"),
            ("missed_complaints", "Missed complaints (each may cost a customer)"),
            ("false_alarms", "False alarms: irrelevant mentions answered"),
            ("false_alarm_cost", "What the false alarms cost (agents' time and charges)"),
            ("escalations", "Passed on from the bot to another pool"),
        ),
    ),
    (
        "What it led to",
        (
            ("satisfaction", "Satisfied (of settled needles)"),
            ("conversation_conversions", "Purchases won in conversations"),
            ("conversation_revenue", "Revenue from those purchases"),
            ("churned_customers", "Customers lost after an unanswered complaint"),
            ("purchases_lost_to_churn", "Purchase occasions lost with them"),
            ("declarations_captured", "Customers whose taste a conversation captured"),
            ("customers_with_declared_taste", "Customers with declared taste at the end"),
        ),
    ),
    (
        "Staffing and cost",
        (
            ("utilisation_bots", "Bots: busy share of time on shift"),
            ("utilisation_humans", "Human agents: busy share of time on shift"),
            ("agent_hours", "Human agent-hours on shift"),
            ("cost_inbound", "Cost of the inbound desk"),
        ),
    ),
)

# The shares chart: metric and bar label.
INBOUND_SHARES: tuple[tuple[str, str], ...] = (
    ("classifier_precision", "Precision"),
    ("classifier_recall", "Recall"),
    ("sla_attainment", "Within SLA"),
    ("abandonment_share", "Gave up"),
    ("satisfaction", "Satisfied"),
    ("utilisation_humans", "Humans busy"),
    ("utilisation_bots", "Bots busy"),
)
QUANTILES: tuple[tuple[str, str, str], ...] = (
    ("p50", "median", "#9ecae1"),
    ("p90", "90th percentile", "#4292c6"),
    ("p99", "99th percentile", "#08519c"),
)


def _values(summary: dict[str, Any], arm: str, metric: str) -> list[float]:
    """The per-replication values of a metric (the mean alone when the summary has none)."""
    stat = summary["arms"][arm].get(metric) or {}
    values = stat.get("values")
    if values:
        return [float(v) for v in values]
    mean = finite(stat.get("mean"))
    return [] if mean is None else [mean]


def _funnel_stages(summary: dict[str, Any], arm: str) -> list[float]:
    """Mentions found, flagged relevant, answered and answered needles: means over replications.

    Flagged = recall x needles / precision (the core's true plus false positives); answered = needles -
    missed needles + false alarms (every answered mention is either a needle or a false alarm).
    """
    volume = _values(summary, arm, "inbound_volume")
    needles = _values(summary, arm, "inbound_needles")
    precision = _values(summary, arm, "classifier_precision")
    recall = _values(summary, arm, "classifier_recall")
    missed = _values(summary, arm, "missed_needles")
    alarms = _values(summary, arm, "false_alarms")
    rows = list(zip(volume, needles, precision, recall, missed, alarms, strict=False))
    if not rows:
        return [math.nan] * 4
    flagged = [r * n / p if p > 0 else 0.0 for _, n, p, r, _, _ in rows]
    answered = [n - m + a for _, n, _, _, m, a in rows]
    hits = [n - m for _, n, _, _, m, _ in rows]
    return [float(np.mean(col)) for col in ([v for v, *_ in rows], flagged, answered, hits)]


def _inbound_sources(summary: dict[str, Any], arms: list[str]) -> list[str]:
    """Sources with answered messages in some arm (a source without volume has every percentile at 0)."""
    return [
        source
        for source in SOURCES
        if any((summary_mean(summary, arm, f"response_time_p90_s_{source}") or 0) > 0 for arm in arms)
    ]


POOL_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("utilisation", "Busy (share of the agent-hours on shift)", "share"),
    ("agent_hours", "Agent-hours on shift", "hours"),
    ("conversations", "Conversations taken", "conversations"),
    ("false_alarm_conversations", "of which false alarms", "conversations"),
    ("cost", "Cost (agent-hours and per-conversation charges)", "currency"),
)


def _pools_table(summary: dict[str, Any], arms: list[str], head: str | None = None) -> str:
    """Per responder pool (summary.json "pools"): how busy it was, what it took and what it cost."""
    pools = summary.get("pools") or {}
    if not pools:
        return ""
    head = head if head is not None else "".join(f'<th class="num">{esc(arm)}</th>' for arm in arms)
    names = list(next(iter(pools.values())))
    rows = []
    for name in names:
        rows.append(f'<tr><th class="group" colspan="{len(arms) + 1}">Pool {esc(name)}</th></tr>')
        for figure, label, unit in POOL_FIGURES:
            cells = ""
            for arm in arms:
                stat = pools.get(arm, {}).get(name, {}).get(figure) or {}
                mean, ci = esc(fmt_value(stat.get("mean"), unit)), esc(fmt_ci(stat, unit))
                cells += f'<td class="num">{mean}<small>{ci}</small></td>'
            rows.append(f"<tr><td>{esc(label)}</td>{cells}</tr>")
    return (
        "<details><summary>Responder pools (table)</summary>"
        f"<table><thead><tr><th>Pool and figure</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</details>"
    )


def inbound_table(summary: dict[str, Any], arms: list[str], head: str | None = None) -> str:
    """The inbound figures per arm (mean over replications, 95% CI underneath), grouped by stage."""
    head = head if head is not None else "".join(f'<th class="num">{esc(arm)}</th>' for arm in arms)
    rows = []
    for group, metrics in INBOUND_ROWS:
        rows.append(f'<tr><th class="group" colspan="{len(arms) + 1}">{esc(group)}</th></tr>')
        for metric, label in metrics:
            cells = "".join(stat_cell(summary, arm, metric) for arm in arms)
            rows.append(f"<tr><td>{esc(label)}<br><code>{esc(metric)}</code></td>{cells}</tr>")
    return f"<table><thead><tr><th>Figure</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _sources_table(summary: dict[str, Any], arms: list[str], sources: list[str]) -> str:
    head = "".join(f'<th class="num">{esc(arm)}</th>' for arm in arms)
    rows = []
    for source in sources:
        rows.append(f'<tr><th class="group" colspan="{len(arms) + 1}">{esc(source)}</th></tr>')
        for q, label, _ in QUANTILES:
            metric = f"response_time_{q}_s_{source}"
            cells = "".join(stat_cell(summary, arm, metric) for arm in arms)
            rows.append(f"<tr><td>{esc(label)}<br><code>{esc(metric)}</code></td>{cells}</tr>")
    return (
        "<details><summary>Response times by source (table)</summary>"
        f"<table><thead><tr><th>Source and percentile</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></details>"
    )


def _inbound_funnel(summary: dict[str, Any], arms: list[str], colors: dict[str, str]) -> str:
    labels = ["Mentions found", "Flagged relevant by the core", "Answered", "Answered needles"]
    fig = funnel_figure(arms, labels, {arm: _funnel_stages(summary, arm) for arm in arms}, colors, "found")
    fig.update_layout(margin={"l": 200, "r": 40, "t": 40, "b": 30})
    return (
        "<h3>From mention to answer</h3>"
        '<p class="explain">How many mentions the desk found, how many the classification core flagged as '
        "relevant, how many were answered, and how many of the answered ones were needles (averages over "
        "replications; in brackets, the share of the mentions found). Flagged is worked out from the core's "
        "precision and recall; answered is the answered needles plus the false alarms. A response policy may "
        "answer mentions the core did not flag, so the answered bar can be longer than the flagged one.</p>"
        f"{figure_div(fig)}"
    )


def _inbound_shares(summary: dict[str, Any], arms: list[str], colors: dict[str, str]) -> str:
    shown = [
        (metric, label)
        for metric, label in INBOUND_SHARES
        if metric != "utilisation_bots" or any(summary_mean(summary, arm, metric) > 0 for arm in arms)
    ]
    fig = go.Figure()
    any_ci = False
    for arm in arms:
        stats = [summary["arms"][arm].get(metric) or {} for metric, _ in shown]
        bars = error_bars(stats, 100.0)
        any_ci = any_ci or bars is not None
        fig.add_trace(
            go.Bar(
                name=arm,
                x=[label for _, label in shown],
                y=[summary_mean(summary, arm, metric) * 100 for metric, _ in shown],
                marker={"color": colors[arm]},
                error_y=bars,
                hovertemplate=f"<b>{esc(arm)}</b><br>%{{x}}: %{{y:.1f}}%<extra></extra>",
            )
        )
    style_figure(fig, height=400, barmode="group", bargap=0.3)
    fig.update_yaxes(title="%", rangemode="tozero")
    ci = " The black lines are the 95% confidence intervals." if any_ci else ""
    return (
        "<h3>How well the desk worked</h3>"
        '<p class="explain">Precision: of the mentions the core flagged, the share that truly concerned the brand. '
        "Recall: of the needles, the share the core flagged. Within SLA and gave up: shares of the mentions sent "
        "to a responder pool. Satisfied: share of the settled needles whose author left satisfied. Busy: the "
        f"share of their time on shift that agents (or bots) spent on conversations.{ci}</p>{figure_div(fig)}"
    )


def _response_times(summary: dict[str, Any], arms: list[str], sources: list[str], sla_minutes: float | None) -> str:
    columns = [("All sources", "")] + [(source, f"_{source}") for source in sources]
    fig = make_subplots(
        rows=len(arms),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[esc(arm) for arm in arms] if len(arms) > 1 else None,
        vertical_spacing=min(0.12, 0.3 / max(1, len(arms) - 1)) if len(arms) > 1 else 0.0,
    )
    any_ci = False
    for row, arm in enumerate(arms, start=1):
        for q, label, color in QUANTILES:
            metrics = [f"response_time_{q}_s{suffix}" for _, suffix in columns]
            stats = [summary["arms"][arm].get(metric) or {} for metric in metrics]
            bars = error_bars(stats, 1 / 60)
            any_ci = any_ci or bars is not None
            fig.add_trace(
                go.Bar(
                    name=label,
                    legendgroup=q,
                    showlegend=row == 1,
                    x=[name for name, _ in columns],
                    y=[summary_mean(summary, arm, metric) / 60 for metric in metrics],
                    marker={"color": color},
                    error_y=bars,
                    text=[esc(fmt_value(s.get("mean"), "seconds")) for s in stats],
                    hovertemplate=f"<b>{esc(arm)}</b><br>%{{x}}, {label}: %{{text}}<extra></extra>",
                ),
                row=row,
                col=1,
            )
        if sla_minutes is not None and sla_minutes > 0:
            fig.add_hline(y=sla_minutes, line={"color": "#c0392b", "width": 1.5, "dash": "dash"}, row=row, col=1)
        fig.update_yaxes(title_text="minutes", rangemode="tozero", row=row, col=1)
    style_figure(fig, height=120 + 300 * len(arms), barmode="group", bargap=0.25)
    fig.update_traces(textposition="none")
    sla = (
        f" The dashed red line is the SLA ({sla_minutes:g} minutes from arrival): bars above it are answers "
        "that came late."
        if sla_minutes is not None and sla_minutes > 0
        else ""
    )
    ci = " The black lines are the 95% confidence intervals." if any_ci else ""
    sources_note = "" if len(sources) == len(SOURCES) else " Sources with no answered message are left out."
    return (
        "<h3>How long customers waited for an answer</h3>"
        '<p class="explain">The time from a mention\'s arrival to the start of its answer, overall and by the '
        "source it came from: half of the answered mentions waited less than the median, nine in ten less than "
        f"the 90th percentile, 99 in 100 less than the 99th.{sla}{ci}{sources_note}</p>"
        f"{figure_div(fig)}"
        '<p class="note">Response times count answered messages only: a desk that lets its slowest cases give '
        "up can show short response times. Read them beside the share that gave up waiting.</p>"
    )


def inbound_section(
    summary: dict[str, Any],
    arms: list[str],
    colors: dict[str, str],
    sla_minutes: float | None = None,
    *,
    head: str | None = None,
    extra: str = "",
) -> str:
    """The inbound section (find -> classify -> respond), or "" when the run found no mention.

    ``head``: the table's column headings (the arms, escaped, by default); ``extra``: HTML appended inside
    the section (the compare report adds the paired differences).
    """
    if not has_inbound(summary):
        return ""
    sources = _inbound_sources(summary, arms)
    reading = "".join(f"<li>{esc(line)}</li>" for line in read_inbound(summary, sla_minutes))
    shared = (
        " The organic mentions are the same for every arm; only the replies to an arm's own messages differ, "
        "so arms differ here only through those replies."
        if len(arms) > 1
        else ""
    )
    return (
        f"<section><h2>{esc(INBOUND_HEADING)}</h2>"
        '<p class="explain">Beside the campaigns, a desk listens for mentions of the brand (social posts, forum '
        "threads, messages, e-mails, chats and calls, plus replies to our own messages), a classification core "
        "decides which ones truly concern the brand (the <b>needles</b> in a haystack of everyday words), and "
        "bots and human agents answer them. The simulator knows which mentions are needles, so it can score the "
        f"core and count what was missed.{shared}</p>"
        f'<ul class="findings">{reading}</ul>'
        "<h3>Inbound figures</h3>"
        '<p class="explain">The average over all replications for each arm, with its 95% confidence interval '
        "underneath.</p>"
        f"{inbound_table(summary, arms, head)}"
        f"{_sources_table(summary, arms, sources) if sources else ''}"
        f"{_pools_table(summary, arms, head)}"
        f"{_inbound_funnel(summary, arms, colors)}"
        f"{_inbound_shares(summary, arms, colors)}"
        f"{_response_times(summary, arms, sources, sla_minutes)}"
        f"{extra}</section>"
    )
