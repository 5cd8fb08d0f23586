"""Calibration: a + b x batch measured by ``masssim bench --calibrate``, then used by a scenario's core."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import masssim
from masssim.bench import BenchConfig, run_bench
from masssim.bench.calibrate import fit_service_model, write_calibration
from masssim.cli import main
from masssim.config.errors import ScenarioError

SCENARIO = """
name = "calibrated"
seed = 3
replications = 1
horizon_days = 1
[population]
customers = 2000
[inbound.core]
calibration = "{file}"
{extra}
"""


def test_least_squares_fit_recovers_a_line() -> None:
    batch = np.repeat([1, 10, 100], 20)
    sd = 1e-5
    noise = np.random.default_rng(0).normal(0, sd, batch.size)
    a, b, r2 = fit_service_model(batch, 0.002 + 0.0003 * batch + noise)
    # Ordinary least squares: the estimates' standard errors are sd x sqrt(diag((X'X)^-1)); 4.5 of them.
    design = np.column_stack([np.ones(batch.size), batch])
    se_a, se_b = sd * np.sqrt(np.diag(np.linalg.inv(design.T @ design)))
    assert abs(a - 0.002) < 4.5 * se_a and abs(b - 0.0003) < 4.5 * se_b and r2 > 0.99
    a, b, _ = fit_service_model(np.array([1, 2, 3]), np.array([0.0, 0.5, 1.0]))  # negative intercept
    assert a == 0.0 and b > 0
    with pytest.raises(ValueError):
        fit_service_model(np.array([4, 4]), np.array([1.0, 2.0]))


def test_calibration_round_trip_into_a_scenario_and_a_run(tmp_path: Path) -> None:
    core = tmp_path / "core.json"
    result = run_bench(
        BenchConfig(
            scenario="offline",
            calibrate=str(core),
            duration_s=0.6,
            warmup_s=0.1,
            calibrate_batches=(1, 32, 128),
            samples=500,
            seed=2,
        )
    )
    assert result.verdict == "PASS", result.summary["reasons"]
    doc = json.loads(core.read_text())
    assert doc["a_s"] >= 0 and doc["b_s"] > 0 and 0 <= doc["r2"] <= 1
    assert [p["batch"] for p in doc["points"]] == [1, 32, 128] and doc["replicas"] == 1
    assert result.summary["calibration"]["r2"] == doc["r2"]
    # The scenario's core takes the measured values; a field set in the scenario wins.
    (tmp_path / "s.toml").write_text(SCENARIO.format(file="core.json", extra="batch_size = 64"))
    scenario = masssim.load_scenario(tmp_path / "s.toml")
    assert scenario.inbound is not None
    core_cfg = scenario.inbound.core
    assert (core_cfg.a_s, core_cfg.b_s, core_cfg.replicas, core_cfg.batch_size) == (doc["a_s"], doc["b_s"], 1, 64)
    # The resolved scenario stands alone (it is what a run saves), and a simulation runs on the measured core.
    again = masssim.scenario_from_dict(scenario.to_toml_dict())
    assert again.inbound is not None and again.inbound.core.b_s == doc["b_s"]
    run = masssim.run(scenario)
    assert run.summary["replications"] == 1


def test_toml_calibration_file_and_its_optional_fields(tmp_path: Path) -> None:
    write_calibration(tmp_path / "core.toml", {"a_s": 0.01, "b_s": 0.001, "replicas": 3, "batch_size": 16})
    (tmp_path / "s.toml").write_text(SCENARIO.format(file="core.toml", extra=""))
    core = masssim.load_scenario(tmp_path / "s.toml").inbound.core  # type: ignore[union-attr]
    assert (core.a_s, core.b_s, core.replicas, core.batch_size) == (0.01, 0.001, 3, 16)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        ('{"b_s": 0.1}', "a_s: missing"),
        ('{"a_s": 0.1, "b_s": "fast"}', "b_s: must be a number"),
        ('{"a_s": 0.1, "b_s": 0.1, "replicas": 0}', "replicas: must be a whole number"),
    ],
)
def test_bad_calibration_file_names_file_and_field(
    tmp_path: Path, content: str | None, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if content is not None:
        (tmp_path / "core.json").write_text(content)
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(file="core.json", extra=""))
    with pytest.raises(ScenarioError) as info:
        masssim.load_scenario(path)
    assert info.value.field == "inbound.core.calibration"
    assert "core.json" in str(info.value) and words in str(info.value)
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "inbound.core.calibration" in err
