"""docs/model.md and the README stay true to the code."""

from __future__ import annotations

from pathlib import Path

from masssim.model.metrics import markdown_table, market_markdown_table

REPO = Path(__file__).resolve().parents[1]


def test_metric_table_in_model_md_matches_registry() -> None:
    doc = (REPO / "docs" / "model.md").read_text(encoding="utf-8")
    assert markdown_table() in doc, "paste masssim.model.metrics.markdown_table() into docs/model.md"


def test_market_figure_table_in_model_md_matches_the_definitions() -> None:
    doc = (REPO / "docs" / "model.md").read_text(encoding="utf-8")
    assert market_markdown_table() in doc, "paste masssim.model.metrics.market_markdown_table() into docs/model.md"


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = next(line for line in ci.splitlines() if "pytest" in line).strip()
    assert test_command in readme
    assert "masssim run quickstart" in readme
    assert "masssim lessons check" in ci
