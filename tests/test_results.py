"""Results are written atomically: an interrupted save never leaves something that looks complete."""

from __future__ import annotations

from pathlib import Path

import pytest

import masssim
import masssim.reporting.report
from conftest import small_scenario
from masssim.reporting.results import atomic_write_text, load_run


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_failed_save_leaves_only_a_partial_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = masssim.run(small_scenario(replications=1), seed=1)

    def explode(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(masssim.reporting.report, "render_report", explode)
    with pytest.raises(KeyboardInterrupt):
        result.save(tmp_path)
    runs = list((tmp_path / "unit").iterdir())
    assert len(runs) == 1 and runs[0].name.endswith(".partial")
    assert not [p for p in runs[0].iterdir() if p.name.endswith(".tmp")]


def test_saved_run_reads_back(tmp_path: Path) -> None:
    result = masssim.run(small_scenario(), seed=4)
    run_dir = result.save(tmp_path, run_id="fixed")
    assert run_dir.name == "fixed"
    again = result.save(tmp_path, run_id="fixed")
    assert again.name == "fixed-2"
    summary, columns, scenario = load_run(run_dir)
    assert summary == result.summary
    assert scenario == result.scenario
    for name, column in result.timeseries.items():
        assert list(columns[name]) == list(column), name
