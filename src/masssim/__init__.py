"""masssim: a simulation and benchmarking harness for mass one-to-one marketing.

Python API::

    import masssim
    scenario = masssim.load_scenario(masssim.resolve_scenario("quickstart"))   # a gallery name, or a path
    result = masssim.run(scenario, replications=5, seed=1, workers=2)
    result.summary            # mean and 95% CI per arm and metric, paired differences vs the first arm
    result.timeseries         # daily columns per replication and arm
    result.save("results")    # results/<scenario>/<run-id>/ with report.html

    masssim.compare(scenario, variants=["k16:arms.personas.segments=16"])   # paired differences with CIs
    masssim.sweep(scenario, {"population.persona_signal": [0.2, 0.5, 0.8]})  # a grid, resumable
    masssim.load_results("results/quickstart/<run-id>").summary   # any saved folder as tidy rows
"""

from masssim.config.errors import ScenarioError
from masssim.config.schema import Scenario
from masssim.experiments.compare import CompareResult, compare
from masssim.experiments.replications import StopRule, run
from masssim.experiments.saved import Results, load_results
from masssim.experiments.sweep import SweepResult, sweep
from masssim.lessons.gallery import resolve_scenario
from masssim.reporting.results import RunResult
from masssim.scenario.load import load_scenario, scenario_from_dict, scenario_from_toml

__all__ = [
    "CompareResult",
    "Results",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "StopRule",
    "SweepResult",
    "compare",
    "load_results",
    "load_scenario",
    "resolve_scenario",
    "run",
    "scenario_from_dict",
    "scenario_from_toml",
    "sweep",
]
