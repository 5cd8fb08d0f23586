"""A scenario as a run sees it: the schema (:mod:`masssim.config.schema`) resolved and checked when loaded."""

from masssim.config.schema import Scenario
from masssim.scenario.load import apply_overrides, load_scenario, scenario_from_dict, scenario_from_toml

__all__ = ["Scenario", "apply_overrides", "load_scenario", "scenario_from_dict", "scenario_from_toml"]
