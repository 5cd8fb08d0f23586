"""The HTML report: standalone and offline, escaped, and complete for one or many arms and replications.

The runs are tiny (a few thousand customers, a few days) so that the whole module takes a few seconds.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from plotly.offline import get_plotlyjs

import masssim
from masssim.model.metrics import REGISTRY
from masssim.reporting.narrative import read_summary
from masssim.reporting.report import render_report

ARMS = [
    {"name": "broadcast", "policy": "broadcast"},
    {"name": "personas", "policy": "segments", "segments": 4},
    {"name": "oracle", "policy": "oracle"},
]
FIGURE_DIV = 'class="plotly-graph-div"'


def _scenario(**overrides: Any) -> masssim.Scenario:
    data: dict[str, Any] = {
        "name": "report_test",
        "description": "A small test run of three strategies.",
        "population": {"customers": 2000},
        "horizon_days": 4,
        "replications": 2,
        "arms": ARMS,
    }
    data.update(overrides)
    return masssim.scenario_from_dict(data)


def _render(scenario: masssim.Scenario) -> tuple[masssim.RunResult, str]:
    result = masssim.run(scenario, seed=3)
    return result, render_report(result.summary, result.timeseries, scenario)


@pytest.fixture(scope="module")
def three_arms() -> tuple[masssim.Scenario, masssim.RunResult, str]:
    scenario = _scenario()
    result, page = _render(scenario)
    return scenario, result, page


def _without_library(page: str) -> str:
    js = get_plotlyjs()
    assert page.count(js) == 1, "plotly.js must be embedded exactly once"
    return page.replace(js, "")


def test_page_is_standalone_and_offline(three_arms: tuple[Any, Any, str]) -> None:
    _, _, page = three_arms
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    page.encode("utf-8")  # the page is valid UTF-8 text
    rest = _without_library(page)
    # Nothing is loaded from elsewhere: no script or stylesheet reference, no font, no URL at all outside
    # the embedded library (whose own source mentions URLs of features this report does not use).
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, flags=re.IGNORECASE)
    assert not re.search(r"<link\b", rest, flags=re.IGNORECASE)
    assert "@import" not in rest
    assert "@font-face" not in rest
    assert "http://" not in rest
    assert "https://" not in rest


def test_page_names_the_scenario_arms_and_sections(three_arms: tuple[Any, Any, str]) -> None:
    scenario, result, page = three_arms
    assert scenario.description in page
    assert f"<h1>{scenario.name}</h1>" in page
    for arm in scenario.arms:
        assert arm.name in page
        assert f"<code>{arm.policy}</code>" in page
    assert "segments = 4" in page
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    expected = [
        "Strategies compared (arms)",
        "What this run says",
        "Key figures",
        "The funnel: from message to purchase",
        "What it cost and what it brought in",
        "Compared with the baseline (broadcast)",
        "Day by day",
        "The market: who buys every brand",
        "What each figure means",
    ]
    assert headings == expected
    # The plain-language reading is there, sentence by sentence (escaped like all text).
    for sentence in read_summary(result.summary):
        assert f"<li>{html.escape(sentence)}</li>" in page
    assert "privacy pre-fetch" in page
    # Every registered metric is defined at the end of the page.
    for metric in REGISTRY.values():
        assert f"<td><code>{metric.name}</code></td>" in page
    assert "95% CI" in page


def test_one_figure_per_chart_section(three_arms: tuple[Any, Any, str]) -> None:
    _, _, page = three_arms
    # funnel, costs vs revenue, differences vs baseline, daily small multiples, the market's duplication
    assert page.count(FIGURE_DIV) == 5
    assert page.count("Plotly.newPlot") == 5


def test_user_text_is_escaped() -> None:
    scenario = _scenario(
        description='Watch out <script>alert(1)</script> & "quotes"',
        arms=[ARMS[0]],
        replications=1,
        horizon_days=2,
    )
    _, page = _render(scenario)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert page.lower().count("<script") == 1 + page.count("Plotly.newPlot")


def test_single_replication_has_no_error_bars() -> None:
    scenario = _scenario(replications=1)
    result, page = _render(scenario)
    stat = result.summary["arms"]["broadcast"]["incremental_revenue"]
    assert stat["ci_low"] is None
    assert stat["ci_high"] is None
    assert page.count(FIGURE_DIV) == 5
    assert "no interval (one replication)" in page
    assert "single replication" in page
    # Plotly's template sets error-bar colours; an actual error bar carries its lower arm as "arrayminus".
    assert "arrayminus" not in _without_library(page)


def test_single_arm_skips_the_comparison() -> None:
    scenario = _scenario(arms=[ARMS[2]])
    _, page = _render(scenario)
    assert "Compared with the baseline" not in page
    assert page.count(FIGURE_DIV) == 4
    assert "oracle" in page
    assert "arrayminus" in page  # two replications: the revenue bar has its interval


def test_save_writes_the_report(tmp_path: Any, three_arms: tuple[Any, masssim.RunResult, str]) -> None:
    scenario, result, _ = three_arms
    run_dir = result.save(tmp_path, run_id="check")
    report = run_dir / "report.html"
    assert run_dir == tmp_path / scenario.name / "check"
    assert report.is_file()
    text = report.read_text(encoding="utf-8")
    assert text.count(FIGURE_DIV) == 5
    assert scenario.description in text


# ---------------------------------------------------------------- inbound

INBOUND = {
    "mentions": {
        "sources": [
            {"name": "social", "base_rate_per_hour": 20.0},
            {"name": "email", "base_rate_per_hour": 2.0, "diurnal": "business_hours"},
        ]
    }
}
INBOUND_HEADING = "Inbound: find → classify → respond"


@pytest.fixture(scope="module")
def inbound_run() -> tuple[masssim.Scenario, masssim.RunResult, str]:
    scenario = _scenario(arms=[ARMS[0]], horizon_days=2, inbound=INBOUND)
    result, page = _render(scenario)
    return scenario, result, page


def test_inbound_run_has_the_inbound_section(inbound_run: tuple[Any, masssim.RunResult, str]) -> None:
    from masssim.reporting.html import fmt_value
    from masssim.reporting.narrative import read_inbound

    scenario, result, page = inbound_run
    arm = result.summary["arms"]["broadcast"]
    assert arm["inbound_volume"]["mean"] > 0
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings.index(INBOUND_HEADING) == headings.index("Day by day") - 1
    # Figures from summary.json appear formatted in the inbound table (mean, with its interval underneath).
    for metric in ("inbound_volume", "classifier_recall", "sla_attainment", "response_time_p90_s", "cost_inbound"):
        stat, unit = arm[metric], REGISTRY[metric].unit
        mean, low = html.escape(fmt_value(stat["mean"], unit)), html.escape(fmt_value(stat["ci_low"], unit))
        cell = f'<td class="num">{mean}<small>95% CI {low}'
        assert cell in page, metric
    # The plain-language reading, sentence by sentence, with the scenario's SLA.
    lines = read_inbound(result.summary, scenario.inbound.sla_minutes)
    assert any("(recall)" in line and "(precision" in line for line in lines)
    assert any("read them beside abandonment" in line for line in lines)
    for line in lines:
        assert f"<li>{html.escape(line)}</li>" in page
    # Response times by source: only the sources with answered messages.
    assert "<br><code>response_time_p90_s_social</code>" in page
    assert "<br><code>response_time_p90_s_forum</code>" not in page
    # funnel, costs, daily, the market + inbound funnel, shares and response times; the desk's cost joins the
    # cost chart
    assert page.count(FIGURE_DIV) == 7
    assert "Cost: inbound desk" in page
    assert "Answered needles" in page and "Flagged relevant by the core" in page


def test_run_without_inbound_has_no_inbound_section(three_arms: tuple[Any, Any, str]) -> None:
    from masssim.reporting.narrative import has_inbound, read_inbound

    _, result, page = three_arms
    assert not has_inbound(result.summary)
    assert read_inbound(result.summary) == []
    assert INBOUND_HEADING not in page
    assert "Cost: inbound desk" not in page
    assert "Answered needles" not in page


def test_durations_read_naturally() -> None:
    from masssim.reporting.narrative import duration

    assert duration(0) == "0 s"
    assert duration(1.052) == "1.05 s"
    assert duration(1266.1) == "21.1 min"
    assert duration(4244) == "70.7 min"
    assert duration(9000) == "2.5 h"
    assert duration(-90) == "-1.5 min"
    assert duration(None) == "n/a"
