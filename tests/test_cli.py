"""The command line as a user meets it: two commands, clear errors, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SMALL = """
name = "cli_small"
description = "A tiny scenario for the CLI tests."
seed = 3
replications = 2
horizon_days = 5

[population]
customers = 3000

[[arms]]
name = "broadcast"
policy = "broadcast"

[[arms]]
name = "personas"
policy = "segments"
segments = 4
"""


def masssim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    return subprocess.run(
        [sys.executable, "-m", "masssim", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_run_writes_a_complete_run(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = masssim("run", str(small), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    runs = list((out / "cli_small").iterdir())
    assert len(runs) == 1 and not runs[0].name.endswith(".partial")
    run = runs[0]
    for name in ("scenario.toml", "manifest.json", "summary.json", "timeseries.csv", "report.html"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["replications"] == 2 and set(summary["arms"]) == {"broadcast", "personas"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed_entropy"] == "3" and manifest["packages"]["numpy"]
    assert "personas" in proc.stdout and "results:" in proc.stdout
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    # the report can be rebuilt from what was saved
    (run / "report.html").unlink()
    proc = masssim("report", str(run))
    assert proc.returncode == 0, proc.stderr
    assert "personas" in (run / "report.html").read_text()


def test_seed_and_replication_options(small: Path, tmp_path: Path) -> None:
    proc = masssim("run", str(small), "--out", str(tmp_path), "--seed", "9", "--replications", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    run = next((tmp_path / "cli_small").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["seed_entropy"] == "9" and summary["replications"] == 1
    assert proc.stdout.strip() == str(run)  # --quiet prints the results folder only, for scripts


def test_bad_field_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[population]\npersona_signal = 1.5\n')
    proc = masssim("validate", str(bad))
    assert_one_line_error(proc, str(bad), "population.persona_signal", "1.5", "[0, 1]")
    proc = masssim("run", str(bad), "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "population.persona_signal")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("", ["empty", "name"]),
        ("name = [", ["not valid TOML"]),
        ('name = "x"\n[population]\ncustomerz = 5\n', ["population.customerz", "did you mean 'customers'"]),
        (
            'name = "x"\n[[arms]]\nname = "a"\npolicy = "brodcast"\n',
            ["arms[0].policy", "did you mean 'broadcast'"],
        ),
        (
            'name = "x"\n[[arms]]\nname = "a"\npolicy = "no_such_module:Thing"\n',
            ["arms[0].policy", "cannot import"],
        ),
        (
            'name = "x"\n[[arms]]\nname = "a"\npolicy = "policies_for_tests:Missing"\n',
            ["arms[0].policy", "no attribute"],
        ),
    ],
)
def test_bad_files(tmp_path: Path, content: str, needles: list[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(content)
    assert_one_line_error(masssim("validate", str(path)), *needles)


def test_missing_file_and_bad_options(tmp_path: Path, small: Path) -> None:
    assert_one_line_error(masssim("run", str(tmp_path / "nope.toml")), "file not found")
    assert_one_line_error(masssim("run", str(small), "--replications", "0"), "--replications")
    assert_one_line_error(masssim("run", str(small), "--workers", "many"), "--workers")
    assert_one_line_error(masssim("frobnicate"), "frobnicate")
    assert_one_line_error(masssim("report", str(tmp_path)), "is not a results folder")


def test_validate_and_gallery() -> None:
    proc = masssim("validate", "src/masssim/gallery/quickstart.toml", cwd=REPO)
    assert proc.returncode == 0 and "ok" in proc.stdout
    proc = masssim("scenarios", cwd=REPO)
    assert proc.returncode == 0
    assert "quickstart" in proc.stdout and "Broadcast vs personas" in proc.stdout
    assert "$ masssim run quickstart --workers 2" in proc.stdout


def test_every_gallery_scenario_validates_and_has_a_description() -> None:
    import masssim as api

    for path in sorted((REPO / "src" / "masssim" / "gallery").glob("*.toml")):
        scenario = api.load_scenario(path)
        assert scenario.description.strip(), path
        assert scenario.name == path.stem, path


def test_help_exits_zero() -> None:
    proc = masssim("--help")
    assert proc.returncode == 0 and "run" in proc.stdout


def test_compare_command(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = masssim(
        "compare", str(small), "--variant", "signal:population.persona_signal=0.9", "--out", str(out), "-r", "3"
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = (out / "cli_small").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["arms"]) == {"cli_small/broadcast", "cli_small/personas", "signal/broadcast", "signal/personas"}
    assert (run / "report.html").is_file() and (run / "variants" / "signal.toml").is_file()
    assert "signal/personas" in proc.stdout
    bad = masssim("compare", str(small), "--variant", "x:population.persona_signal=7", "--out", str(out))
    assert_one_line_error(bad, "--variant x", "population.persona_signal")
    assert_one_line_error(masssim("compare", str(small), "--out", str(out)), "nothing to compare")
    assert_one_line_error(masssim("compare", str(small), "--variant", "a/b:seed=1"), "variant name")


def test_sweep_command_resumes(small: Path, tmp_path: Path) -> None:
    args = ["sweep", str(small), "--param", "creatives.count=2,3", "--out", str(tmp_path), "-r", "2", "-s", "5"]
    first = masssim(*args)
    assert first.returncode == 0, first.stderr
    assert "2 computed now, 0 resumed" in first.stdout
    again = masssim(*args)
    assert again.returncode == 0 and "0 computed now, 2 resumed" in again.stdout
    (directory,) = (tmp_path / "cli_small").iterdir()
    assert (directory / "sweep.csv").is_file() and (directory / "report.html").is_file()
    assert_one_line_error(masssim("sweep", str(small), "--param", "creatives.count"), "path=value")
    assert_one_line_error(masssim("sweep", str(small)), "nothing to sweep")
    assert_one_line_error(masssim("run", str(small), "--until", "clicks"), "--until")


def test_ctrl_c_during_a_sweep_leaves_only_complete_cells(small: Path, tmp_path: Path) -> None:
    """A real SIGINT to a running `masssim sweep`: finished cells stay, nothing half-written, and the rerun
    completes the grid."""
    import signal
    import time

    # 16 cells: plenty of work left after the first one lands, so the signal arrives mid-sweep.
    counts = ",".join(str(c) for c in range(1, 17))
    args = [sys.executable, "-m", "masssim", "sweep", str(small), "-p", f"creatives.count={counts}"]
    args += ["--out", str(tmp_path), "-r", "2", "-s", "3", "-q"]
    # A shell that starts the test run in the background (`cmd &` without job control) makes SIGINT ignored,
    # and Python leaves an inherited ignored SIGINT ignored: the child puts the KeyboardInterrupt handler back
    # (as a terminal session would have it) before running `python -m masssim`.
    launcher = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['masssim', *sys.argv[1:]]; runpy.run_module('masssim', run_name='__main__', alter_sys=True)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, *args[3:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    cells: list[Path] = []
    while time.monotonic() < deadline and not cells:
        cells = list(tmp_path.glob("cli_small/sweep-*/cells/*.json"))
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert cells, "no cell finished in time"
    (directory,) = (tmp_path / "cli_small").iterdir()
    finished = list((directory / "cells").glob("*.json"))
    assert proc.returncode == 130, f"exit {proc.returncode}, {len(finished)} of 16 cells, stderr {stderr!r}"
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert 1 <= len(finished) < 16
    for path in finished:
        assert json.loads(path.read_text())["replications"] == 2
    assert not list(directory.rglob("*.tmp")) and not list(directory.rglob(".*.tmp"))
    assert not (directory / "sweep.csv").exists()
    rerun = masssim(*args[3:])
    assert rerun.returncode == 0, rerun.stderr
    assert (directory / "sweep.csv").is_file()


INBOUND = """
[[inbound.mentions.sources]]
name = "social"
base_rate_per_hour = 20.0
"""


def test_run_prints_the_inbound_table_only_with_inbound(small: Path, tmp_path: Path) -> None:
    proc = masssim("run", str(small), "--out", str(tmp_path), "-r", "2", "-s", "4")
    assert proc.returncode == 0, proc.stderr
    assert "Inbound" not in proc.stdout
    with_inbound = tmp_path / "inbound.toml"
    with_inbound.write_text(SMALL.replace("horizon_days = 5", "horizon_days = 2") + INBOUND)
    proc = masssim("run", str(with_inbound), "--out", str(tmp_path), "-r", "2", "-s", "4")
    assert proc.returncode == 0, proc.stderr
    assert "Inbound (find -> classify -> respond): mean [95% CI]" in proc.stdout
    for row in ("volume", "precision", "recall", "response p50", "response p90", "SLA", "abandoned", "cost_inbound"):
        assert row in proc.stdout, row
    assert "(recall)" in proc.stdout
    (run,) = [p for p in (tmp_path / "cli_small").iterdir() if "Inbound" in (p / "report.html").read_text()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["arms"]["personas"]["inbound_volume"]["mean"] > 0


def test_tables_at_80_columns_cut_no_label(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Two long labels that share their first 12 characters: cut with an ellipsis they would look the same.
    import masssim as api
    from conftest import small_scenario
    from masssim.cli import _print_comparison

    scenario = small_scenario(
        arms=[{"name": "individual_long", "policy": "broadcast"}, {"name": "broadcast_long", "policy": "oracle"}]
    )
    variants = ["no_declared_taste_at_all:creatives.count=2"]
    summary = api.compare(scenario, variants=variants, replications=2, seed=1).summary
    monkeypatch.setenv("COLUMNS", "80")
    _print_comparison(summary)
    out = capsys.readouterr().out
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_a_ctrl_c_that_compiled_code_wrapped_is_still_an_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """numba's dispatcher turns a KeyboardInterrupt that lands while it loads a cached kernel into a
    SystemError caused by it (seen in a clean-clone CI run of the sweep test above): still exit 130 and one
    line, not a traceback. Any other SystemError is not hidden."""
    from masssim import cli as cli_module

    def wrapped_interrupt(**_: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise SystemError("CPUDispatcher(...) returned a result with an exception set") from interrupt

    monkeypatch.setattr(cli_module.cli, "main", wrapped_interrupt)
    with pytest.raises(SystemExit) as stopped:
        cli_module.main(["run", "anything.toml"])
    assert stopped.value.code == 130
    assert capsys.readouterr().err.strip() == "masssim: interrupted; no complete result was written"

    def other_error(**_: object) -> None:
        raise SystemError("a real bug")

    monkeypatch.setattr(cli_module.cli, "main", other_error)
    with pytest.raises(SystemError, match="a real bug"):
        cli_module.main(["run", "anything.toml"])
