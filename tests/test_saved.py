"""Saved results come back: reports rebuilt for every kind of folder, and tidy tables for analysis."""

from __future__ import annotations

from pathlib import Path

import pytest

import masssim
from conftest import small_scenario
from masssim.experiments.saved import kind_of, rebuild_report


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("saved")
    scenario = small_scenario(arms=[{"name": "b", "policy": "broadcast"}, {"name": "o", "policy": "oracle"}])
    run = masssim.run(scenario, seed=1).save(out)
    compared = masssim.compare(scenario, variants=["k2:creatives.count=2"], seed=1).save(out)
    swept = masssim.sweep(scenario, {"creatives.count": [1, 2]}, seed=1, out=out).directory
    return {"run": run, "comparison": compared, "sweep": swept}


@pytest.mark.parametrize("kind", ["run", "comparison", "sweep"])
def test_report_is_rebuilt_for_every_kind(folders: dict[str, Path], kind: str) -> None:
    folder = folders[kind]
    assert kind_of(folder) == kind
    page = folder / "report.html"
    page.unlink()
    assert rebuild_report(folder) == page and page.stat().st_size > 10_000
    if kind == "sweep":
        rebuild_report(folder, "click_rate")
        assert "<h3>Click rate</h3>" in page.read_text(encoding="utf-8")


def test_rebuild_refuses_other_folders_and_unknown_metrics(tmp_path: Path, folders: dict[str, Path]) -> None:
    with pytest.raises(masssim.ScenarioError, match="not a results folder"):
        rebuild_report(tmp_path)
    with pytest.raises(masssim.ScenarioError, match="unknown metric"):
        rebuild_report(folders["sweep"], "click_rates")


def test_load_results_gives_tidy_rows(folders: dict[str, Path]) -> None:
    run = masssim.load_results(folders["run"])
    assert run.kind == "run"
    clicks = [r for r in run.summary if r["strategy"] == "o" and r["metric"] == "clicks"]
    assert len(clicks) == 1 and clicks[0]["n"] == 2 and clicks[0]["unit"] == "clicks"
    values = [r["value"] for r in run.replications if r["strategy"] == "o" and r["metric"] == "clicks"]
    assert sum(values) / len(values) == pytest.approx(clicks[0]["mean"])
    assert run.timeseries and {"replication", "arm", "day", "clicks"} <= set(run.timeseries[0])
    assert isinstance(run.timeseries[0]["arm"], str) and isinstance(run.timeseries[0]["day"], int)

    compared = masssim.load_results(folders["comparison"])
    assert {r["strategy"] for r in compared.summary} == {"unit/b", "unit/o", "k2/b", "k2/o"}
    assert compared.timeseries == []

    swept = masssim.load_results(folders["sweep"])
    cells = {(r["cell"], r["creatives.count"]) for r in swept.summary}
    assert cells == {(0, 1), (1, 2)}


def test_to_pandas_says_what_to_install_without_pandas(folders: dict[str, Path]) -> None:
    results = masssim.load_results(folders["run"])
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"masssim\[pandas\]"):
            results.to_pandas()
    else:
        frames = results.to_pandas()
        assert len(frames["summary"]) == len(results.summary)


@pytest.mark.parametrize("kind", ["run", "comparison", "sweep"])
def test_no_saved_interval_leaves_its_metric_range(folders: dict[str, Path], kind: str) -> None:
    from masssim.model.metrics import REGISTRY

    rows = masssim.load_results(folders[kind]).summary
    assert rows
    for row in rows:
        low, high = REGISTRY[row["metric"]].bounds
        if row["ci_low"] is None:
            continue
        assert low is None or row["ci_low"] >= low, row
        assert high is None or row["ci_high"] <= high, row
