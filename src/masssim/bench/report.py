"""What a benchmark shows a person: a terminal summary, and a standalone HTML page (plotly inline, offline).

The page has the verdict with its reasons first, then the latency percentiles and histogram, throughput and
latency over time, the generator's issue lateness, the peak search or calibration when there was one, and
the quality of the answers. Everything that came from the user is HTML-escaped.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from masssim.bench.metrics import PERCENTILES, pkey
from masssim.reporting.html import esc, figure_div, style_figure
from masssim.reporting.report import CSS

VERDICT_COLORS = {"PASS": "#1a7f37", "FAIL": "#b42318", "INVALID": "#b54708"}


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{1e3 * float(value):.2f} ms"


def _num(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{float(value):,.{digits}f}"


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The terminal summary, one line each (plain text)."""
    run = summary["run"]
    lines = [f"verdict: {summary['verdict']}"]
    lines += [f"  - {reason}" for reason in summary["reasons"]]
    lines.append(f"scenario {summary['scenario']} against {summary['target']['description']}")
    peak = summary.get("peak")
    if peak:
        lines.append(f"peak rate: {_num(peak['rate_qps'], 1)} q/s ({len(peak['trials'])} trials)")
        for t in peak["trials"]:
            p = next((v for k, v in t.items() if k.startswith("p") and k.endswith("_s")), None)
            lines.append(
                f"  {t['rate_qps']:10.1f} q/s  {t['verdict']:<7}  p{summary['config']['percentile']:g} {_ms(p)}"
                f"  lateness p99 {_ms(t['lateness_p99_s'])}"
            )
    cal = summary.get("calibration")
    if cal:
        for p in cal.get("points", []):
            lines.append(f"  batch {p['batch']:>6}: median {_ms(p['median_s'])} over {p['n']} batches")
        if "a_s" in cal:
            lines.append(f"fit: a_s = {cal['a_s']:.6g} s, b_s = {cal['b_s']:.6g} s per message, R² = {cal['r2']:.4f}")
    if "throughput_qps" in run:
        q = run["queries"]
        failed = sum(q["failed"].values())
        lines.append(
            f"queries: {q['measured']} measured ({q['answered']} answered, {failed} failed, "
            f"{q['not_issued']} not issued), {q['warmup']} warm-up; measured {run['measured_duration_s']:.2f} s"
        )
        if run.get("target_rate_qps") is not None:
            lines.append(
                f"rate: target {_num(run['target_rate_qps'])} q/s, scheduled {_num(run['scheduled_rate_qps'])}, "
                f"issued {_num(run['achieved_issue_rate_qps'])}, answered {_num(run['throughput_qps'])}"
            )
        else:
            lines.append(f"throughput: {_num(run['throughput_qps'])} q/s, {_num(run['samples_per_s'])} samples/s")
        lat = run["latency_s"]
        origin = "from scheduled time" if summary["scenario"] == "server" else "from issue"
        lines.append(f"latency ({origin}): " + ", ".join(f"{pkey(p)} {_ms(lat.get(pkey(p)))}" for p in PERCENTILES))
        late = run.get("issue_lateness_s")
        if late:
            lines.append(f"generator lateness: p50 {_ms(late['p50'])}, p99 {_ms(late['p99'])}, max {_ms(late['max'])}")
    quality = summary.get("quality")
    if quality:
        rel = quality["relevance"]
        lines.append(
            f"quality ({quality['samples_scored']} samples): relevance precision {rel['precision']:.3f} "
            f"recall {rel['recall']:.3f} F1 {rel['f1']:.3f}; intent macro-F1 {quality['intent_macro_f1']:.3f}"
        )
    return lines


# ---------------------------------------------------------------- HTML


def _verdict(summary: dict[str, Any]) -> str:
    verdict = summary["verdict"]
    color = VERDICT_COLORS.get(verdict, "#333")
    reasons = "".join(f"<li>{esc(r)}</li>" for r in summary["reasons"])
    return (
        f"<h1>masssim bench: {esc(summary['scenario'])}</h1>"
        f'<p class="lead">Target <code>{esc(summary["target"]["description"])}</code>, '
        f"seed {esc(summary['seed_entropy'])}, corpus {esc(summary['corpus']['source'])}.</p>"
        f'<p style="font-size:1.6em;font-weight:700;color:{color}">{esc(verdict)}</p>'
        f"<ul class='findings'>{reasons}</ul>"
        "<p class='explain'>PASS: the run was valid, the target neither failed queries nor fell behind, and it "
        "met the latency bound when one was set. FAIL: the target failed queries, fell "
        "behind, or missed the latency bound. INVALID: the measurement itself does not count (too short, too "
        "few queries, or the load generator could not keep its schedule) - it says nothing about the target.</p>"
    )


def _figures_table(summary: dict[str, Any]) -> str:
    run = summary["run"]
    if "latency_s" not in run or "queries" not in run:
        return ""
    lat, svc = run["latency_s"], run["service_latency_s"]
    late = run.get("issue_lateness_s") or {}
    head = "".join(f"<th class='num'>{pkey(p)}</th>" for p in PERCENTILES)
    rows = [
        ("Latency (from scheduled time)" if summary["scenario"] == "server" else "Latency", lat),
        ("Latency from issue", svc),
    ]
    if late:
        rows.append(("Generator issue lateness", late))
    body = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td class='num'>{_ms(s.get(pkey(p)))}</td>" for p in PERCENTILES) + "</tr>"
        for name, s in rows
    )
    q = run["queries"]
    failed = ", ".join(f"{k} {v}" for k, v in q["failed"].items() if v) or "none"
    facts = [
        (_num(run.get("target_rate_qps")), "target rate, q/s"),
        (_num(run.get("achieved_issue_rate_qps")), "issued rate, q/s"),
        (_num(run["throughput_qps"]), "answered, q/s"),
        (_num(run["samples_per_s"]), "samples/s"),
        (f"{run['measured_duration_s']:.2f} s", "measured duration"),
        (str(q["measured"]), "measured queries"),
        (failed, "failed queries"),
    ]
    facts_html = "".join(f"<li><b>{esc(v)}</b><span>{esc(k)}</span></li>" for v, k in facts)
    return (
        "<h2>Figures</h2>"
        f"<ul class='facts'>{facts_html}</ul>"
        f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"
        "<p class='explain'>In the server scenario latency runs from the time each query was <i>scheduled</i>, "
        "so a stall of the target (or of the generator) is charged to every query it delays. Lateness is how "
        "long after its scheduled time the generator actually sent a query.</p>"
    )


def _histogram(run: dict[str, Any]) -> str:
    hist = run.get("latency_histogram") or {}
    edges, counts = hist.get("edges_s") or [], hist.get("counts") or []
    if not counts:
        return ""
    mids = [1e3 * (edges[i] * edges[i + 1]) ** 0.5 for i in range(len(counts))]
    widths = [1e3 * (edges[i + 1] - edges[i]) for i in range(len(counts))]
    fig = go.Figure(go.Bar(x=mids, y=counts, width=widths, marker_color="#4292c6", name="queries"))
    bound = run.get("latency_bound_s")
    if bound:
        # A line trace, not a shape: shapes and annotations disagree about log axes across plotly versions.
        top = max(counts) if counts else 1
        fig.add_trace(
            go.Scatter(
                x=[1e3 * bound] * 2,
                y=[0, top],
                mode="lines",
                name="latency bound",
                line={"dash": "dash", "color": "#b42318"},
            )
        )
    style_figure(fig, height=340, xaxis={"title": "latency (ms, log scale)", "type": "log"}, yaxis={"title": "queries"})
    return "<h2>Latency histogram</h2><p class='explain'>How many answered queries took how long.</p>" + figure_div(fig)


def _timeline(run: dict[str, Any]) -> str:
    tl = run.get("timeline") or {}
    if not tl.get("t_s"):
        return ""
    t = tl["t_s"]
    thr = go.Figure()
    thr.add_trace(go.Scatter(x=t, y=tl["answers_per_s"], mode="lines", name="answers/s"))
    if run.get("target_rate_qps"):
        thr.add_hline(y=run["target_rate_qps"], line_dash="dash", annotation_text="target rate")
    style_figure(thr, height=300, xaxis={"title": "seconds from start"}, yaxis={"title": "answered queries per second"})
    lat = go.Figure()
    lat.add_trace(go.Scatter(x=t, y=[None if v is None else 1e3 * v for v in tl["p50_s"]], mode="lines", name="p50"))
    lat.add_trace(go.Scatter(x=t, y=[None if v is None else 1e3 * v for v in tl["p99_s"]], mode="lines", name="p99"))
    style_figure(lat, height=300, xaxis={"title": "seconds from start"}, yaxis={"title": "latency (ms)"})
    parts = [
        "<h2>Throughput over time</h2><p class='explain'>Answers per second, by completion time.</p>",
        figure_div(thr),
        "<h2>Latency over time</h2><p class='explain'>Median and p99 latency of the answers in each interval.</p>",
        figure_div(lat),
    ]
    if any(v is not None for v in tl["late_max_s"]):
        late = go.Figure(
            go.Scatter(
                x=t, y=[None if v is None else 1e3 * v for v in tl["late_max_s"]], mode="lines", name="max lateness"
            )
        )
        style_figure(late, height=260, xaxis={"title": "seconds from start"}, yaxis={"title": "ms late (max)"})
        parts += [
            "<h2>Issue lateness over time</h2><p class='explain'>The worst delay between a query's scheduled "
            "and actual send time in each interval: the generator's own honesty.</p>",
            figure_div(late),
        ]
    return "".join(parts)


def _peak(summary: dict[str, Any]) -> str:
    peak = summary.get("peak")
    if not peak:
        return ""
    p = summary["config"]["percentile"]
    rows = "".join(
        f"<tr><td class='num'>{t['rate_qps']:.1f}</td><td>{esc(t['verdict'])}</td>"
        f"<td class='num'>{_num(t['achieved_issue_rate_qps'])}</td>"
        f"<td class='num'>{_ms(t.get(pkey(p) + '_s'))}</td><td class='num'>{_ms(t['lateness_p99_s'])}</td></tr>"
        for t in peak["trials"]
    )
    return (
        f"<h2>Peak search</h2><p>Highest passing rate: <b>{_num(peak['rate_qps'])} q/s</b>.</p>"
        f"<table><thead><tr><th class='num'>rate q/s</th><th>verdict</th><th class='num'>issued q/s</th>"
        f"<th class='num'>{pkey(p)}</th><th class='num'>lateness p99</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _calibration(summary: dict[str, Any]) -> str:
    cal = summary.get("calibration")
    if not cal or not cal.get("points"):
        return ""
    pts = cal["points"]
    fig = go.Figure(
        go.Scatter(
            x=[q["batch"] for q in pts],
            y=[1e3 * q["median_s"] for q in pts],
            mode="markers",
            name="median per batch size",
        )
    )
    text = ""
    if "a_s" in cal:
        xs = [pts[0]["batch"], pts[-1]["batch"]]
        fig.add_trace(go.Scatter(x=xs, y=[1e3 * (cal["a_s"] + cal["b_s"] * x) for x in xs], mode="lines", name="fit"))
        text = f"<p>a_s = {cal['a_s']:.6g} s, b_s = {cal['b_s']:.6g} s per message, R² = {cal['r2']:.4f}.</p>"
    style_figure(fig, height=320, xaxis={"title": "batch size"}, yaxis={"title": "service time (ms)"})
    return "<h2>Calibration: service time = a + b x batch</h2>" + text + figure_div(fig)


def _quality(summary: dict[str, Any]) -> str:
    quality = summary.get("quality")
    if not quality:
        return ""
    rows = [("relevance", quality["relevance"])] + [(f"intent: {k}", v) for k, v in quality["intent"].items()]
    body = "".join(
        f"<tr><td>{esc(name)}</td><td class='num'>{s['precision']:.3f}</td><td class='num'>{s['recall']:.3f}</td>"
        f"<td class='num'>{s['f1']:.3f}</td><td class='num'>{s['tp'] + s['fn']}</td></tr>"
        for name, s in rows
    )
    return (
        f"<h2>Quality of the answers</h2><p class='explain'>Against the ground truth of {quality['samples_scored']} "
        "answered samples; intent is scored on the truly relevant ones.</p>"
        "<table><thead><tr><th></th><th class='num'>precision</th><th class='num'>recall</th>"
        f"<th class='num'>F1</th><th class='num'>true cases</th></tr></thead><tbody>{body}</tbody></table>"
    )


def render_html(summary: dict[str, Any]) -> str:
    run = summary["run"]
    sections = [
        _verdict(summary),
        _figures_table(summary),
        _histogram(run),
        _timeline(run),
        _peak(summary),
        _calibration(summary),
        _quality(summary),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>masssim bench {esc(summary['scenario'])}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"</head><body><main>{''.join(sections)}"
        "<footer>Generated by masssim bench. This page works offline: everything it needs is inside the file."
        "</footer></main></body></html>\n"
    )
