"""``compare`` and ``sweep`` with ``--shards``: the same results as one process, and a scenario that cannot
run sharded refused in one line before anything runs (docs/model.md §16)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

import masssim
from masssim.engine.sharded import shard_ranges
from masssim.experiments import replications
from masssim.reporting.results import dumps_json
from test_sharded_engine import CHUNK, _scenario

# A plug-in that names a view column that does not exist: refused sharded (every built-in policy runs sharded).
MISNAMED = "policies_for_tests:MisnamedColumnsPolicy"


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Chunks of 512 customers in both the sharded and the one-process engine, so a unit-test population is
    cut into a dozen chunks and several shards really hold customers (one chunk is 65,536 otherwise).
    Returns the number of shards of each sharded replication run."""
    shard_counts: list[int] = []
    sharded = replications.simulate_sharded_replication

    def small_sharded(scenario: masssim.Scenario, seq: object, open_group: object, shards: int, *a: object) -> object:
        shard_counts.append(len(shard_ranges(scenario.population.customers, shards, CHUNK)))
        return sharded(scenario, seq, open_group, shards, *a, chunk_size=CHUNK)  # type: ignore[arg-type]

    monkeypatch.setattr(replications, "simulate_sharded_replication", small_sharded)
    monkeypatch.setattr(
        replications, "simulate_replication", functools.partial(replications.simulate_replication, chunk_size=CHUNK)
    )
    return shard_counts


def compared_scenario() -> masssim.Scenario:
    return _scenario(
        horizon_days=6,
        arms=[
            {"name": "random", "policy": "random", "audience_share": 0.5},
            {"name": "segments", "policy": "segments", "segments": 4},
        ],
    )


def compare_summary(**kwargs: object) -> str:
    result = masssim.compare(
        compared_scenario(), variants=["sms:arms[1].channel=sms"], replications=2, seed=4, **kwargs
    )
    return dumps_json(result.summary)


def sweep_cells(out: Path, **kwargs: object) -> str:
    result = masssim.sweep(
        compared_scenario(), {"holdout.share": [0.1, 0.3]}, replications=2, seed=4, out=out, **kwargs
    )
    return dumps_json(result.cells)


def test_compare_with_shards_gives_the_same_summary(small_chunks: list[int]) -> None:
    one_process = compare_summary()
    assert not small_chunks  # the one-process run did not go through the sharded engine
    assert compare_summary(shards=3) == one_process
    assert small_chunks == [3] * 4  # 2 variants x 2 replications, each in 3 shards


def test_sweep_with_shards_gives_the_same_cells(small_chunks: list[int], tmp_path: Path) -> None:
    one_process = sweep_cells(tmp_path / "one")
    assert sweep_cells(tmp_path / "sharded", shards=2) == one_process
    assert small_chunks == [2] * 4  # 2 cells x 2 replications


def test_compare_and_sweep_refuse_a_scenario_that_cannot_run_sharded(tmp_path: Path) -> None:
    from test_bad_input import one_line_error, write

    base = 'name = "sharded"\nseed = 3\nreplications = 2\nhorizon_days = 4\n[population]\ncustomers = 800\n'
    good = write(tmp_path, base + '[[arms]]\nname = "b"\npolicy = "broadcast"\n')
    # Every built-in policy runs sharded: a plug-in that names a view column that does not exist does not.
    bad = write(tmp_path, base + f'[[arms]]\nname = "upper"\npolicy = "{MISNAMED}"\n', "bad.toml")
    out = str(tmp_path / "x")
    line = one_line_error(("compare", good, bad, "--shards", "2", "-o", out), "bad.toml", "arms[0].policy")
    assert f"policy '{MISNAMED}' (arm 'upper') names view columns 'purchases' that do not exist" in line
    # A variant that changes the policy is named by its option.
    line = one_line_error(
        ("compare", good, "-v", f"up:arms[0].policy={MISNAMED}", "--shards", "2", "-o", out), "--variant up"
    )
    assert f"arms[0].policy: policy '{MISNAMED}' (arm 'b') names view columns" in line
    # So is a sweep cell, before any cell runs.
    line = one_line_error(
        ("sweep", good, "-p", f"arms[0].policy=broadcast,{MISNAMED}", "--shards", "2", "-o", out), "sweep cell"
    )
    assert f"policy '{MISNAMED}' (arm 'b') names view columns" in line
    assert not (tmp_path / "x").exists()


def test_validate_says_whether_a_scenario_can_run_sharded(tmp_path: Path) -> None:
    from test_bad_input import cli, one_line_error, write

    base = 'name = "sharded"\nseed = 3\nreplications = 2\nhorizon_days = 4\n[population]\ncustomers = 800\n'
    good = write(tmp_path, base + '[[arms]]\nname = "b"\npolicy = "broadcast"\n')
    bad = write(tmp_path, base + f'[[arms]]\nname = "upper"\npolicy = "{MISNAMED}"\n', "bad.toml")
    # Valid for one process either way; the note says why --shards would refuse it.
    code, out, _ = cli("validate", bad)
    assert code == 0
    assert f"note: cannot run with --shards yet: arms[0].policy: policy '{MISNAMED}' (arm 'upper')" in out
    code, out, _ = cli("validate", good)
    assert code == 0 and "--shards" not in out
    # --sharded makes it the one-line error of run/compare/sweep.
    one_line_error(("validate", "--sharded", bad), "bad.toml", "arms[0].policy", "names view columns")
    assert cli("validate", "--sharded", good)[0] == 0
