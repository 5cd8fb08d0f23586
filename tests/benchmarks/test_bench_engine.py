"""pytest-benchmark suites (run with: python -m pytest -m benchmark tests/benchmarks).

Each compares against a baseline measured in the same session: the vectorised wave against the per-customer
SimPy model of ``bench_outbound.py`` on the same population size, so the ratio is what to quote.
"""

from __future__ import annotations

import pytest
from bench_outbound import measure_per_customer, scenario_dict

import masssim
from masssim.engine.sim import ArmSimulation, build_world
from masssim.model.streams import replication_sequence, root_sequence

pytestmark = pytest.mark.benchmark

CUSTOMERS = 20_000
DAYS = 7


@pytest.fixture(scope="module")
def world_and_scenario():  # type: ignore[no-untyped-def]
    scenario = masssim.scenario_from_dict(scenario_dict(CUSTOMERS, DAYS))
    return scenario, build_world(scenario, replication_sequence(root_sequence(1), 0))


def test_vectorised_engine(benchmark, world_and_scenario) -> None:  # type: ignore[no-untyped-def]
    scenario, world = world_and_scenario
    metrics = benchmark(lambda: ArmSimulation(scenario, world, 0).run().metrics)
    assert metrics["sends"] > 0


def test_per_customer_simpy_baseline(benchmark) -> None:  # type: ignore[no-untyped-def]
    result = benchmark.pedantic(measure_per_customer, args=(CUSTOMERS, DAYS), rounds=3, iterations=1)
    assert result["touches"] > 0


def test_population_generation(benchmark) -> None:  # type: ignore[no-untyped-def]
    scenario = masssim.scenario_from_dict(scenario_dict(1_000_000, 1))
    world = benchmark.pedantic(
        lambda: build_world(scenario, replication_sequence(root_sequence(1), 0)), rounds=3, iterations=1
    )
    assert world.population.n == 1_000_000
