"""The HTML reports of ``masssim compare`` and ``masssim sweep``: standalone, offline, escaped, complete.

Inputs are built with the real compare and sweep code on tiny scenarios, so the module takes a few seconds.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from plotly.offline import get_plotlyjs

import masssim
from masssim.experiments.compare import compare
from masssim.experiments.sweep import load_sweep, sweep
from masssim.reporting.narrative import read_summary
from masssim.reporting.report_compare import render_comparison
from masssim.reporting.report_sweep import render_sweep

FIGURE_DIV = 'class="plotly-graph-div"'
EVIL = '<script>alert(1)</script> & "quotes"'
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"
VARIANTS = ["more_signal:population.persona_signal=0.8", "oracle:arms.b.policy=oracle"]


def _base(replications: int = 2, **overrides: Any) -> masssim.Scenario:
    data: dict[str, Any] = {
        "name": "t",
        "seed": 1,
        "replications": replications,
        "horizon_days": 5,
        "population": {"customers": 3000},
        "arms": [{"name": "b", "policy": "broadcast"}],
    }
    data.update(overrides)
    return masssim.scenario_from_dict(data)


def _without_library(page: str) -> str:
    js = get_plotlyjs()
    assert page.count(js) == 1, "plotly.js must be embedded exactly once"
    return page.replace(js, "")


def _assert_offline(page: str) -> str:
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    rest = _without_library(page)
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, flags=re.IGNORECASE)
    assert not re.search(r"<link\b", rest, flags=re.IGNORECASE)
    assert "@import" not in rest
    assert "http://" not in rest
    assert "https://" not in rest
    # One script for the library, one per chart: nothing else runs.
    assert page.lower().count("<script") == 1 + page.count("Plotly.newPlot")
    return rest


def _headings(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


# ---------------------------------------------------------------- comparison


@pytest.fixture(scope="module")
def comparison() -> tuple[dict[str, Any], str]:
    summary = compare(_base(), variants=VARIANTS).summary
    return summary, render_comparison(summary)


def test_comparison_is_standalone_and_offline(comparison: tuple[dict[str, Any], str]) -> None:
    _, page = comparison
    _assert_offline(page)


def test_comparison_names_every_strategy_and_section(comparison: tuple[dict[str, Any], str]) -> None:
    summary, page = comparison
    for label, info in summary["variants"].items():
        assert f"<b>{label}</b>" in page
        assert f"<code>{info['policy']}</code>" in page
    assert "<code>population.persona_signal=0.8</code>" in page
    assert '<b>t</b><span class="tag">baseline</span>' in page  # the scenario's name, tagged as the baseline
    assert _headings(page) == [
        "What was compared",
        "What this comparison says",
        "Key figures",
        "Each strategy on its own",
        "Compared with the baseline (t)",
        "The market: our brand and its rivals under each strategy",
    ]
    for sentence in read_summary(summary):
        assert f"<li>{html.escape(sentence)}</li>" in page
    for metric in (
        "incremental_profit",
        "incremental_revenue",
        "incremental_revenue_true",
        "cost_total",
        "roi",
        "click_rate",
        "attributed_purchases",
        "incremental_purchases_true",
    ):
        assert f"<code>{metric}</code>" in page
    assert "95% CI" in page
    assert "paired" in page
    assert "if the two sets of runs were treated as independent" in page
    # more_signal changes the population, which the pairing note points out.
    assert "changes the population settings" in page


def test_comparison_market_has_a_row_per_strategy(comparison: tuple[dict[str, Any], str]) -> None:
    """Each strategy's row shows its variant's market without marketing and under its arm's (summary
    ``markets``), with the change's interval over the two replications."""
    summary, page = comparison
    section = page.split("The market: our brand and its rivals")[1]
    assert list(summary["markets"]) == list(summary["variants"])
    for label, market in summary["markets"].items():
        (arm,) = market["by_arm"]["arms"]
        ours = next(iter(market["brands"]))
        figures = market["by_arm"]["arms"][arm]["brands"][ours]
        assert f"<tr><td><b>{label}</b></td>" in section
        assert f"{100 * figures['share']['mean']:.1f}%" in section
        change = figures["share"]["change"]
        assert f"({100 * change['ci_low']:+.1f} pts to {100 * change['ci_high']:+.1f} pts)" in section
        for rival in list(market["brands"])[1:]:
            assert rival in section


def test_comparison_charts_have_error_bars_and_verdicts(comparison: tuple[dict[str, Any], str]) -> None:
    summary, page = comparison
    # the per-strategy intervals and the paired differences
    assert page.count(FIGURE_DIV) == 2
    assert page.count("Plotly.newPlot") == 2
    rest = _without_library(page)
    assert "arrayminus" in rest
    # Every verdict that occurs has its legend entry, and only those do.
    legend = {
        (True, True): "Clearly better than the baseline (95% CI above zero)",
        (True, False): "Clearly worse than the baseline (95% CI below zero)",
        (False, True): "Could be chance (95% CI includes zero)",
        (False, False): "Could be chance (95% CI includes zero)",
    }
    expected = {
        legend[(bool(d["excludes_zero"]), d["mean"] > 0)]
        for diffs in summary["differences_vs_baseline"].values()
        for metric, d in diffs.items()
        if metric in ("incremental_profit", "incremental_revenue", "click_rate")
    }
    assert {text for text in set(legend.values()) if text in rest} == expected
    assert "No interval (one replication)" not in rest


def test_comparison_escapes_user_text() -> None:
    # compare() refuses such a label (labels become file names), so put it into a real summary by hand:
    # the report must escape whatever it is given.
    summary = dict(compare(_base(), variants={"two": {"creatives.count": 2}}, baseline="t").summary)
    for key in ("arms", "differences_vs_baseline", "variants"):
        summary[key] = {EVIL if label == "two" else label: value for label, value in summary[key].items()}
    page = render_comparison(summary)
    assert "<script>alert(1)</script>" not in page
    assert EVIL_ESCAPED in page
    _assert_offline(page)


def test_comparison_with_one_replication_has_no_error_bars() -> None:
    summary = compare(_base(replications=1), variants=VARIANTS).summary
    assert summary["arms"]["oracle"]["incremental_profit"]["ci_low"] is None
    page = render_comparison(summary)
    rest = _assert_offline(page)
    assert page.count(FIGURE_DIV) == 2
    assert "arrayminus" not in rest
    assert "no interval (one replication)" in page
    assert "single replication" in page
    assert "No interval (one replication)" in rest  # the legend of the differences chart


def test_comparison_of_two_scenarios_with_a_named_baseline() -> None:
    a = _base(name="first", arms=[{"name": "b", "policy": "broadcast"}, {"name": "o", "policy": "oracle"}])
    b = _base(name="second")
    summary = compare([a, b], baseline="first/o").summary
    page = render_comparison(summary)
    _assert_offline(page)
    for label in ("first/b", "first/o", "second"):
        assert label in page
    assert "Compared with the baseline (first/o)" in page


def test_compare_save_writes_the_report(tmp_path: Path) -> None:
    result = compare(_base(), variants=VARIANTS[:1])
    directory = result.save(tmp_path, run_id="check")
    text = (directory / "report.html").read_text(encoding="utf-8")
    assert text.count(FIGURE_DIV) == 2
    assert "more_signal" in text


# ---------------------------------------------------------------- sweep

SWEEP_FIGURES = 5  # incremental profit, incremental revenue, cost, click rate, truly extra purchases


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, masssim.Scenario, str]:
    base = _base(
        description=f"Creatives sweep {EVIL}",
        arms=[{"name": "b", "policy": "broadcast"}, {"name": "o", "policy": "oracle"}],
    )
    result = sweep(
        base, {"creatives.count": [1, 4, 32], "schedule.channel": ["email", "sms"]}, out=tmp_path_factory.mktemp("s")
    )
    return result, base, (result.directory / "report.html").read_text(encoding="utf-8")


def test_sweep_report_is_standalone_escaped_and_complete(swept: tuple[Any, masssim.Scenario, str]) -> None:
    result, base, page = swept
    rest = _assert_offline(page)
    assert "<script>alert(1)</script>" not in page
    assert EVIL_ESCAPED in page
    assert f"<h1>{base.name}: sweep</h1>" in page
    assert _headings(page) == [
        "The grid",
        "What this sweep says",
        "How the results change across the grid",
        "All cells",
        "The market in each cell: our brand and its rivals",
    ]
    # plus the paired difference of the second arm from the first against the swept value
    assert page.count(FIGURE_DIV) == SWEEP_FIGURES + 1 + ("symmetric log scale" in page)
    assert "Incremental profit: each arm minus b" in page
    assert "arrayminus" not in rest  # bands, not error bars
    assert '"fill":"tonexty"' in rest
    for path in result.grid:
        assert f"<code>{path}</code>" in page
    for arm in ("b", "o"):
        assert f"<td><b>{arm}</b></td>" in page
    # one table row per cell and arm, and one best cell per line (arm x channel)
    assert page.count("<tr><td>") >= len(result.cells) * 2
    assert page.count('<span class="tag">highest of its line</span>') == 4
    # 1 to 32 spans more than a factor of 20: log axis, said in words
    assert '"type":"log"' in rest
    assert "logarithmic" in page


def test_sweep_market_shows_every_cell_and_arm_from_the_cells_json(
    swept: tuple[Any, masssim.Scenario, str],
) -> None:
    """One market row per cell and arm; the figures are the cell's own market.by_arm (our share with the
    arm's marketing) and its world without marketing."""
    result, _, page = swept
    section = page.split("The market in each cell")[1]
    for cell in result.cells:
        market = cell["market"]
        ours = next(iter(market["brands"]))
        for arm in ("b", "o"):
            assert f"<b>cell {cell['index']} (creatives.count=" in section
            with_marketing = market["by_arm"]["arms"][arm]["brands"][ours]["share"]["mean"]
            assert f"{100 * with_marketing:.1f}%" in section
        assert f"{100 * market['brands'][ours]['share']['mean']:.1f}%" in section
    assert section.count("<tr><td><b>cell ") == 2 * len(result.cells)


def test_sweep_report_matches_render_sweep(swept: tuple[Any, masssim.Scenario, str]) -> None:
    result, base, page = swept
    again = load_sweep(result.directory)
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    # the same page from the cells read back from disk (plotly gives every chart a random div id)
    assert uuid.sub("id", render_sweep(again.grid, again.cells, base)) == uuid.sub("id", page)


def test_sweep_with_text_values_uses_categories_and_one_replication_has_no_band(tmp_path: Path) -> None:
    base = _base(replications=1)
    result = sweep(base, {"schedule.channel": ["email", "sms"], "creatives.count": [1, 2]}, out=tmp_path)
    page = (result.directory / "report.html").read_text(encoding="utf-8")
    rest = _assert_offline(page)
    assert page.count(FIGURE_DIV) == SWEEP_FIGURES
    assert '"type":"category"' in rest
    assert "are not all numbers" in page
    assert "single replication" in page
    assert "tonexty" not in rest
    assert "arrayminus" not in rest
    assert "no interval (one replication)" in page
    assert '"type":"log"' not in rest


def test_sweep_with_no_finished_cells_renders() -> None:
    page = render_sweep({"creatives.count": [1, 2]}, [], _base())
    _assert_offline(page)
    assert page.count(FIGURE_DIV) == 0
    assert "nothing to chart" in page


# ---------------------------------------------------------------- inbound

INBOUND = {"mentions": {"sources": [{"name": "social", "base_rate_per_hour": 20.0}]}}


def test_comparison_with_inbound_shows_the_desk_and_its_paired_differences() -> None:
    from masssim.reporting.report_compare import INBOUND_DIFFERENCES, _fmt_signed

    summary = compare(_base(horizon_days=2, inbound=INBOUND), variants={"tight": {"inbound.sla_minutes": 0}}).summary
    page = render_comparison(summary)
    _assert_offline(page)
    # Only inbound settings differ: the desk comes right after the findings, outbound figures after it.
    headings = _headings(page)
    assert headings.index("Inbound: find → classify → respond") < headings.index("Key figures")
    assert "Compared with the baseline: the inbound desk" in page
    # The strategies are named: the unmodified scenario by its name, never "baseline".
    assert list(summary["arms"]) == ["t", "tight"]
    findings = re.findall(r"<li>(.*?)</li>", page.split("What this comparison says", 1)[1])
    assert findings[0].startswith("Inbound, &#x27;tight&#x27; against &#x27;t&#x27;: "), findings[0]
    assert "needles answered within the SLA" in findings[0]
    # the means and differences charts, the inbound funnel, shares and response times, the inbound differences
    assert page.count(FIGURE_DIV) == 6
    diffs = summary["differences_vs_baseline"]["tight"]
    for metric, _, _ in INBOUND_DIFFERENCES:
        assert f"<code>{metric}</code>" in page
    sla = diffs["sla_attainment"]
    assert sla["mean"] < 0  # no answer is instant: an SLA of 0 minutes is never met
    assert f"{html.escape(_fmt_signed(sla['mean'], 'share'))}</span>" in page
    # Less is better for abandonment: a lower share is "clearly better", never "clearly worse".
    assert "Gave up waiting (less is better)" in page


def test_comparison_without_inbound_has_no_inbound_section(comparison: tuple[dict[str, Any], str]) -> None:
    _, page = comparison
    assert "Inbound" not in "".join(_headings(page))
    assert "the inbound desk" not in page


def test_an_outbound_comparison_with_inbound_still_leads_with_profit() -> None:
    from masssim.reporting.narrative import inbound_first, read_comparison

    summary = compare(_base(horizon_days=2, inbound=INBOUND), variants={"k2": {"creatives.count": 2}}).summary
    assert not inbound_first(summary)
    assert "incremental profit" in read_comparison(summary)[0]


def _cell(value: int, series: list[float]) -> dict[str, Any]:
    return {"overrides": {"k": value}, "arms": {"a": {"clicks": {"values": series, "mean": sum(series) / len(series)}}}}


def test_a_peak_is_inside_the_range_only_when_both_neighbours_are_clearly_lower() -> None:
    from masssim.reporting.narrative import read_sweep

    grid = {"k": [1, 2, 3]}
    peak = [_cell(1, [10.0, 11.0, 12.0]), _cell(2, [20.0, 21.5, 22.0]), _cell(3, [9.0, 10.0, 12.0])]
    (line,) = read_sweep(grid, peak, "clicks")
    assert "clicks is highest at k = 2" in line and "The peak is inside the range" in line
    # The right neighbour is higher in one replication: not clearly lower, so no peak is claimed.
    flat = [_cell(1, [10.0, 11.0, 12.0]), _cell(2, [20.0, 21.5, 22.0]), _cell(3, [9.0, 23.0, 12.0])]
    (line,) = read_sweep(grid, flat, "clicks")
    assert "Not a clear peak" in line and "inside the range" not in line
    edge = [_cell(1, [1.0, 2.0, 3.0]), _cell(2, [5.0, 6.0, 7.0]), _cell(3, [9.0, 10.0, 12.0])]
    (line,) = read_sweep(grid, edge, "clicks")
    assert "at the edge of the swept range" in line and "extend" not in line


def test_sweep_reads_the_metric_asked_for(tmp_path: Path) -> None:
    base = _base(arms=[{"name": "b", "policy": "broadcast"}, {"name": "o", "policy": "oracle"}])
    result = sweep(base, {"creatives.count": [1, 4]}, out=tmp_path, metric="click_rate")
    page = (result.directory / "report.html").read_text(encoding="utf-8")
    assert "<h3>Click rate</h3>" in page and "<h3>Click rate: each arm minus b</h3>" in page
    assert '<th class="num">Click rate</th>' in page
    assert "click rate is highest at creatives.count" in page
    with pytest.raises(masssim.ScenarioError, match="unknown metric"):
        sweep(base, {"creatives.count": [1, 4]}, out=tmp_path, metric="click_rates")


def test_values_spanning_orders_of_magnitude_get_a_symmetric_log_view() -> None:
    from masssim.reporting.report_sweep import _symlog, spans_orders

    assert spans_orders([56e3, 88e3, 22e3, -1.9e6, 120.0])
    assert not spans_orders([56e3, 88e3, 22e3, 67e3])
    assert not spans_orders([0.0, 5.0])
    assert _symlog(0.0, 10.0) == 0.0 and _symlog(-990.0, 10.0) == pytest.approx(-2.0)
    assert _symlog(1e6, 1.0) > _symlog(1e5, 1.0) > _symlog(-1e5, 1.0)


def test_an_extreme_cell_adds_a_symmetric_log_chart(swept: tuple[Any, masssim.Scenario, str]) -> None:
    import copy

    result, base, _ = swept
    cells = copy.deepcopy(result.cells)
    stat = cells[-1]["arms"]["b"]["incremental_profit"]
    for key in ("mean", "ci_low", "ci_high"):
        stat[key] = -1000.0 * max(1.0, abs(stat[key]))
    stat["values"] = [stat["mean"]] * len(stat["values"])
    page = render_sweep(result.grid, cells, base)
    assert "<h3>Incremental profit (symmetric log scale)</h3>" in page
    assert "symmetric-logarithmic" in page
