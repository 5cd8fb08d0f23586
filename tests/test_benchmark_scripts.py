"""The seed-scale benchmark's script runs end to end at a toy size (its figures are measured by hand, docs
/model.md §15.3; this only keeps the script from rotting: every engine it offers, every line it prints)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "benchmarks" / "bench_seed_scale.py"


def _printed(script: str, *arguments: str, timeout: float = 300) -> str:
    """What the benchmark script ``script`` (in tests/benchmarks) prints with ``arguments``; it must exit 0."""
    command = [sys.executable, str(SCRIPT.with_name(script)), *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=timeout).stdout


@pytest.mark.parametrize("engine", ["local", "threads"])
def test_seed_scale_benchmark_prints_its_figures(engine: str) -> None:
    toy = ["--customers", "30000", "--small", "10000", "--creatives", "50", "--days", "3", "--policy", "broadcast"]
    prefault = ["--prefault", "0.25"] if engine == "threads" else []  # one engine is enough for the option
    out = _printed("bench_seed_scale.py", *toy, "--engine", engine, "--workers", "2", *prefault)
    assert "FAILED" not in out
    assert out.count("touches per CPU-second") == 3  # each size, and the ratio of the two
    assert "of it in the kernel" in out and "page faults" in out
    assert "world + policy set-up" in out if engine == "local" else "shards built" in out
    assert "summary and save" in out and "aims at 30,000" in out
    assert ("touched beforehand" in out and "0.25 GiB" in out) if prefault else "touched beforehand" not in out


def test_first_touch_benchmark_prints_its_figures() -> None:
    out = _printed("bench_first_touch.py", "--gib", "0.01", "--pause", "0", "--repeat", "2", timeout=120)
    assert out.count("repeat ") == 2 and out.count("s/GiB") == 2 * 3 + 3
    assert "medians: first" in out


def test_outbound_benchmark_prints_its_figures_with_memory_touched_beforehand() -> None:
    toy = ["--customers", "20000", "--days", "3", "--baseline-customers", "200", "--prefault", "0.25"]
    out = _printed("bench_outbound.py", *toy)
    assert "per CPU-second" in out and "page faults" in out
    assert "touched beforehand  0.25 GiB" in out
    assert "ratio vectorised / per-customer" in out


def test_half_taste_benchmark_prints_its_figures() -> None:
    pytest.importorskip("numba")  # it times compiled loops
    out = _printed("bench_half_taste.py", "--customers", "2000", "--reads", "1000", "--repeat", "1")
    # the three ways agree to the bit (the script asserts it before timing), each is printed with its ratio
    assert out.count("of float32") == 3 and "table lookup (the engine)" in out and "x1.00 of float32" in out


def test_fused_front_prototype_does_the_engines_work_and_prints_both_rates() -> None:
    """The prototype checks its rows against the engine's passes before it times them (it exits non-zero if they
    differ), then prints both rates and the saving."""
    out = _printed("bench_fused_front.py", "--customers", "20000", "--rows", "5000", "--repeat", "3", timeout=180)
    assert out.count("ns per send") == 3 and "x on these steps" in out


def test_send_draws_script_checks_both_fronts_do_the_same_work_and_prints_the_ratios() -> None:
    """The old split pass (two float32 uniforms per send) and the engine's (one float64 draw) give the same rows
    on the same uniforms before they are timed (the script exits non-zero if not); then it prints every step."""
    out = _printed("bench_send_draws.py", "--rows", "5000", "--repeat", "3", timeout=180)
    assert "two float32 / one float64" in out and "front: old / now" in out and out.count("\n  ") == 4


def test_against_start_runs_the_start_commits_engine_beside_todays_and_prints_the_ratio() -> None:
    """The script takes issue 9's starting engine from the repository's history and runs it beside today's:
    both rates, their ratio and the verdict against the aim read as a ratio are printed."""
    known = subprocess.run(
        ["git", "cat-file", "-e", "8b80c8a^{commit}"], cwd=SCRIPT.parent, check=False, capture_output=True
    )
    if known.returncode != 0:
        pytest.skip("not a clone with the repository's history (git archive needs commit 8b80c8a)")
    out = _printed("bench_against_start.py", "--customers", "20000", "--days", "3", "--repeat", "1", timeout=300)
    assert out.count("touches/s") >= 3 and "now / start = " in out and "4.55x: " in out


def test_floor_script_prices_the_draws_the_engine_makes_today() -> None:
    """The floor names the draws as the engine makes them (one float64 per send, a chunk's occasions from one
    Poisson total) and prints each piece and their sum."""
    out = _printed("bench_outbound_floor.py", "--customers", "100000", "--repeat", "1", timeout=300)
    assert "one float64 draw per send" in out and "a Poisson total per chunk" in out
    assert out.count("ns/touch") == 6 and "floor: at most" in out
