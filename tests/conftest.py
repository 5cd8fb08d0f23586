"""Shared fixtures: small scenarios that run in well under a second."""

from __future__ import annotations

from typing import Any

import pytest

import masssim


def small_scenario(**overrides: Any) -> masssim.Scenario:
    """A scenario small enough for unit tests; ``overrides`` are merged into the top-level table."""
    data: dict[str, Any] = {
        "name": "unit",
        "seed": 7,
        "replications": 2,
        "horizon_days": 7,
        "population": {"customers": 5_000},
        "arms": [{"name": "broadcast", "policy": "broadcast"}],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return masssim.scenario_from_dict(data)


@pytest.fixture
def tiny() -> masssim.Scenario:
    return small_scenario()
