"""``masssim bench`` and ``masssim serve``: load-test the classification core (DESIGN §4, docs/model.md §14).

Modules, one concept each: :mod:`~masssim.bench.config` (the settings), :mod:`~masssim.bench.schedule` (what
is sent when, built up front from the seed), :mod:`~masssim.bench.corpus` (the samples and their ground
truth), :mod:`~masssim.bench.targets` (``python:`` in a worker process, ``http://``), :mod:`~masssim.bench.runner`
(the scenarios), :mod:`~masssim.bench.metrics` (figures and verdict), :mod:`~masssim.bench.report` (terminal and
HTML), :mod:`~masssim.bench.calibrate` (service time a + b·batch for the simulator), :mod:`~masssim.bench.serve`
(a classifier over HTTP).
"""

from masssim.bench.api import BenchResult, run_bench
from masssim.bench.config import SCENARIOS, BenchConfig

__all__ = ["SCENARIOS", "BenchConfig", "BenchResult", "run_bench"]
