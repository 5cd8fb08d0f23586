"""Gallery lessons declare what they teach; the reading says claim by claim whether it held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import masssim
from masssim.lessons.gallery import (
    DOCS_BEGIN,
    DOCS_END,
    check,
    command,
    gallery_files,
    problems,
    resolve_scenario,
    strategies,
    write_docs,
)
from masssim.reporting.lesson_reading import Source, evaluate, read_lesson
from test_cli import assert_one_line_error
from test_cli import masssim as masssim_cli

LESSON_TOML = """
name = "tiny_lesson"
description = "Oracle against broadcast on a small population."
seed = 11
replications = 3
horizon_days = 7

[population]
customers = 4000

[[arms]]
name = "broadcast"
policy = "broadcast"

[[arms]]
name = "oracle"
policy = "oracle"

[lesson]
purpose = "The oracle gets more clicks than broadcast."
headline = ["click_rate"]

[[lesson.claims]]
metric = "click_rate"
arm = "oracle"
versus = "broadcast"
sign = "{sign}"
"""


def _scenario(lesson: dict[str, Any], **extra: Any) -> masssim.Scenario:
    data = {
        "name": "s",
        "arms": [{"name": "a", "policy": "broadcast"}, {"name": "b", "policy": "oracle"}],
        "lesson": lesson,
        **extra,
    }
    return masssim.scenario_from_dict(data)


def _stat(values: list[float]) -> dict[str, Any]:
    return {"values": values, "mean": sum(values) / len(values), "ci_low": None, "ci_high": None}


def test_claims_hold_only_with_the_claimed_sign_and_a_clear_interval() -> None:
    lesson = {
        "purpose": "p",
        "headline": ["click_rate"],
        "claims": [
            {"metric": "click_rate", "arm": "b", "versus": "a", "sign": "positive"},
            {"metric": "click_rate", "arm": "b", "versus": "a", "sign": "negative"},
            {"metric": "clicks", "arm": "b", "versus": "a", "sign": "positive"},
        ],
    }
    arms = {
        "a": {"click_rate": _stat([0.010, 0.012, 0.011]), "clicks": _stat([10.0, 30.0, 20.0])},
        "b": {"click_rate": _stat([0.020, 0.023, 0.021]), "clicks": _stat([40.0, 5.0, 21.0])},
    }
    first, second, third = evaluate(_scenario(lesson).lesson, Source(arms=arms))  # type: ignore[arg-type]
    assert first.held and not second.held and not third.held
    assert first.difference is not None and first.difference["ci_low"] > 0
    assert "held" in first.sentence() and "+1.0 points" in first.sentence()
    assert "did NOT hold" in second.sentence() and "the sign is the other one" in second.sentence()
    assert "its CI includes 0" in third.sentence()
    lines = read_lesson(_scenario(lesson).lesson, Source(arms=arms))  # type: ignore[arg-type]
    assert lines[0] == "Lesson: p" and lines[1].startswith("click_rate (")


def test_sweep_claims_pair_two_cells() -> None:
    lesson = {
        "purpose": "p",
        "command": "sweep",
        "headline": ["clicks"],
        "claims": [
            {
                "metric": "clicks",
                "arm": "a",
                "versus": "a",
                "at": {"x.y": 2},
                "versus_at": {"x.y": 1},
                "sign": "positive",
            }
        ],
    }
    cells = [
        {"overrides": {"x.y": 1}, "arms": {"a": {"clicks": _stat([1.0, 2.0, 3.0])}}},
        {"overrides": {"x.y": 2}, "arms": {"a": {"clicks": _stat([5.0, 6.5, 7.0])}}},
    ]
    (claim,) = evaluate(lesson, Source(cells=cells))
    assert claim.held and claim.difference is not None and claim.difference["mean"] == pytest.approx(18.5 / 3 - 2)
    assert "'a' at x.y = 2 minus 'a' at x.y = 1" in claim.sentence()
    assert any(line.startswith("clicks: 2 at x.y = 1") for line in read_lesson(lesson, Source(cells=cells)))


def test_lesson_names_are_checked() -> None:
    good = {
        "purpose": "p",
        "headline": ["click_rate"],
        "claims": [{"metric": "click_rate", "arm": "b", "versus": "a", "sign": "positive"}],
    }
    problems(_scenario(good))
    with pytest.raises(masssim.ScenarioError, match="unknown metric"):
        problems(_scenario({**good, "headline": ["clicks_rate"]}))
    with pytest.raises(masssim.ScenarioError, match=r"lesson\.claims\[0\]\.arm.*unknown strategy"):
        problems(_scenario({**good, "claims": [{**good["claims"][0], "arm": "c"}]}))
    with pytest.raises(masssim.ScenarioError, match="needs a \\[sweep\\] table"):
        problems(_scenario({**good, "command": "sweep"}))
    with pytest.raises(masssim.ScenarioError, match="not a cell"):
        claim = {**good["claims"][0], "at": {"population.customers": 7}}
        problems(_scenario({**good, "command": "sweep", "claims": [claim]}, sweep={"population.customers": [500, 600]}))
    with pytest.raises(masssim.ScenarioError, match="variants"):
        _scenario({**good, "command": "compare"})
    bad_variant = {**good, "command": "compare", "variants": ["v:population.persona_signal=7"]}
    with pytest.raises(masssim.ScenarioError, match=r"lesson\.variants\[0\].*persona_signal"):
        problems(_scenario(bad_variant))


def test_compare_lessons_name_their_strategies_and_build_their_command() -> None:
    lesson = {
        "purpose": "p",
        "command": "compare",
        "baseline": "base",
        "variants": ["more:population.persona_signal=0.9"],
        "headline": ["clicks"],
    }
    scenario = _scenario(lesson)
    assert strategies(scenario) == ["base/a", "base/b", "more/a", "more/b"]
    assert command(scenario) == "masssim compare s --variant more:population.persona_signal=0.9 --workers 2"


def test_every_gallery_scenario_is_a_lesson_with_valid_names() -> None:
    files = gallery_files()
    assert len(files) >= 10
    for path in files:
        scenario = masssim.load_scenario(path)
        assert scenario.lesson is not None and (scenario.lesson.claims or scenario.lesson.market_claims), path
        problems(scenario, str(path))
        assert "masssim " not in scenario.description, "the command comes from [lesson], not the description"


def test_gallery_names_resolve_from_anywhere(tmp_path: Path) -> None:
    assert resolve_scenario("quickstart") == resolve_scenario("quickstart.toml")
    assert resolve_scenario("quickstart").is_file()
    assert resolve_scenario("no_such_lesson") == Path("no_such_lesson")
    proc = masssim_cli("validate", "quickstart", cwd=tmp_path)
    assert proc.returncode == 0 and "ok" in proc.stdout
    proc = masssim_cli("scenarios", cwd=tmp_path)
    assert proc.returncode == 0
    for path in gallery_files():
        scenario = masssim.load_scenario(path)
        assert scenario.lesson is not None
        assert f"{path.stem}\n  {scenario.lesson.purpose}\n  $ {command(scenario)}" in proc.stdout


def test_run_refuses_a_sweep_lesson(tmp_path: Path) -> None:
    proc = masssim_cli("run", "classifier_capacity", "--out", str(tmp_path), cwd=tmp_path)
    assert_one_line_error(proc, "masssim sweep classifier_capacity")
    assert not any(tmp_path.iterdir())


def test_lessons_check_passes_and_fails_with_the_run(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(LESSON_TOML.replace("{sign}", "positive"))
    bad.write_text(LESSON_TOML.replace("{sign}", "negative"))
    proc = masssim_cli("lessons", "check", "--workers", "1", str(good), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tiny_lesson: ok" in proc.stdout and "Claim 1 held" in proc.stdout and "1 of 1 lessons held" in proc.stdout
    proc = masssim_cli("lessons", "check", "--workers", "1", str(bad), cwd=tmp_path)
    assert proc.returncode == 1
    assert "Claim 1 did NOT hold" in proc.stdout and "failed: tiny_lesson" in proc.stdout
    assert_one_line_error(masssim_cli("lessons", "check", "nonexistent_lesson", cwd=tmp_path), "no such lesson")


def test_check_writes_the_docs_section(tmp_path: Path) -> None:
    path = tmp_path / "lesson.toml"
    path.write_text(LESSON_TOML.replace("{sign}", "positive"))
    runs = check([path], workers=1)
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\n{DOCS_BEGIN}\nold text\n{DOCS_END}\n\nafter\n")
    write_docs(doc, runs)
    text = doc.read_text()
    assert "old text" not in text and text.endswith(f"{DOCS_END}\n\nafter\n")
    assert "**`tiny_lesson`**" in text and "| 1 | click_rate: 'oracle' minus 'broadcast' above 0 |" in text
    assert f"    masssim run {path} --workers 1" in text


def test_docs_carry_the_generated_check_of_every_lesson() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text(encoding="utf-8")
    section = doc.split(DOCS_BEGIN, 1)[1].split(DOCS_END, 1)[0]
    for path in gallery_files():
        scenario = masssim.load_scenario(path)
        assert scenario.lesson is not None
        block = section.split(f"**`{scenario.name}`**", 1)[1].split("**`", 1)[0]
        assert f"    {command(scenario)}" in block, "rerun: masssim lessons check --write-docs docs/model.md"
        for i, claim in enumerate(scenario.lesson.claims, start=1):
            assert f"| {i} | {claim.metric}: " in block and f"'{claim.arm}'" in block, (scenario.name, i)
        for i, _ in enumerate(scenario.lesson.market_claims, start=len(scenario.lesson.claims) + 1):
            assert f"| {i} | market: " in block, (scenario.name, i)


def test_scenarios_of_another_folder_list_commands_with_their_paths(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(LESSON_TOML.replace("{sign}", "positive"))
    (tmp_path / "plain.toml").write_text('name = "plain"\ndescription = "First sentence. Second one."\n')
    proc = masssim_cli("scenarios", "--dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"mine\n  The oracle gets more clicks than broadcast.\n  $ masssim run {path} --workers 2" in proc.stdout
    assert f"plain\n  First sentence.\n  $ masssim run {tmp_path / 'plain.toml'} --workers 2" in proc.stdout


def test_a_difference_of_differences_pairs_four_cells() -> None:
    lesson = {
        "purpose": "p",
        "command": "sweep",
        "headline": ["clicks"],
        "claims": [
            {"metric": "clicks", "arm": "p", "versus": "b", "at": {"n": 2}, "minus_at": {"n": 1}, "sign": "positive"}
        ],
    }

    def cell(n: int, p: list[float], b: list[float]) -> dict[str, Any]:
        return {"overrides": {"n": n}, "arms": {"p": {"clicks": _stat(p)}, "b": {"clicks": _stat(b)}}}

    # The gain is 1 at n = 1 and 3 at n = 2 in every replication, although each arm's level varies a lot.
    grows = [cell(1, [11.0, 31.0, 21.0], [10.0, 30.0, 20.0]), cell(2, [53.0, 13.0, 33.1], [50.0, 10.0, 30.0])]
    (claim,) = evaluate(lesson, Source(cells=grows))
    assert claim.held and claim.difference is not None
    assert claim.difference["mean"] == pytest.approx((3 + 3 + 3.1) / 3 - 1)  # the gains' mean at n = 2, less 1
    assert "('p' minus 'b') at n = 2 minus the same at n = 1" in claim.sentence()
    same = [cell(1, [11.0, 31.0, 21.0], [10.0, 30.0, 20.0]), cell(2, [51.0, 12.0, 30.5], [50.0, 10.0, 30.0])]
    (claim,) = evaluate(lesson, Source(cells=same))
    assert not claim.held
