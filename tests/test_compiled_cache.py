"""numba's on-disk cache stays true to the sources (masssim/compiled.py).

numba checks a cached loop against its own file only, so a loop that inlines a compiled function of another
module would keep that function's old machine code after an edit of the other module alone. The package
clears its cached loops when any source of its compiled code changes; these tests edit a copy of the package
and check that the compiled path then computes with the new code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from masssim import compiled
from masssim.engine import kernels

needs_numba = pytest.mark.skipif(not kernels.COMPILED, reason="numba is not installed: nothing is cached")

PACKAGE = Path(compiled.__file__).parent

# Two modules written into a copy of the package: a loop in one inlines a compiled function of the other, as
# send_kernels' loops inline kernels' (and release_kernels' inline kernels._half).
INLINED = """
from masssim.compiled import load_numba
numba = load_numba()
@numba.njit(cache=True, inline="always")
def step(x):
    return x + 1.0
"""
CALLER = """
from masssim.compiled import load_numba
from masssim.engine.probe_inlined import step
numba = load_numba()
@numba.njit(cache=True)
def loop(x):
    return step(x) * 10.0
"""
RUN = "from masssim.engine.probe_caller import loop; print(loop(1.0))"


def _run_in(root: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop(compiled.KERNELS_ENV, None)
    env.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", RUN], check=False, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return float(done.stdout)


@needs_numba
def test_an_edit_of_an_inlined_function_reaches_the_loops_of_other_modules(tmp_path: Path) -> None:
    """Compile and cache a loop that inlines another module's function, then edit that module alone: the next
    process computes with the new code, not with the cached machine code of the old."""
    shutil.copytree(PACKAGE, tmp_path / "masssim", ignore=shutil.ignore_patterns("__pycache__"))
    engine = tmp_path / "masssim" / "engine"
    (engine / "probe_inlined.py").write_text(INLINED)
    (engine / "probe_caller.py").write_text(CALLER)
    assert _run_in(tmp_path) == 20.0
    assert (engine / "__pycache__" / compiled.STAMP_NAME).exists()
    assert list((engine / "__pycache__").glob("probe_caller*.nbi"))  # it was cached
    assert _run_in(tmp_path) == 20.0  # and loaded from the cache

    (engine / "probe_inlined.py").write_text(INLINED.replace("x + 1.0", "x + 2.0"))
    assert _run_in(tmp_path) == 30.0


def test_cached_loops_go_when_the_sources_change_and_stay_when_they_do_not(tmp_path: Path) -> None:
    """refresh_cache removes the packages' numba files (index and data) when the sources' digest differs from
    the recorded one, leaves other files, and removes nothing while the sources are unchanged."""
    for package in compiled.COMPILED_PACKAGES:
        (tmp_path / package / "__pycache__").mkdir(parents=True)
        (tmp_path / package / "a.py").write_text("x = 1\n")
    cache = tmp_path / "policies" / "__pycache__"
    files = [cache / "a.f-3.py311.nbi", cache / "a.f-3.py311.1.nbc", cache / "a.cpython-311.pyc"]

    def write_cache() -> None:
        for path in files:
            path.write_text("")

    write_cache()
    assert compiled.refresh_cache(tmp_path)  # no digest recorded yet
    assert [p.exists() for p in files] == [False, False, True]
    write_cache()
    assert not compiled.refresh_cache(tmp_path)
    assert all(p.exists() for p in files)
    (tmp_path / "engine" / "a.py").write_text("x = 2\n")  # one source of one package changes
    assert compiled.refresh_cache(tmp_path)
    assert [p.exists() for p in files] == [False, False, True]
