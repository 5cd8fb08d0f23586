"""numba's on-disk cache stays true to the sources (masssim/compiled.py).

numba checks a cached loop against its own file only, so a loop that inlines a compiled function of another
module would keep that function's old machine code after an edit of the other module alone. The package makes
numba's stamp of its files carry a digest of all its compiled code's sources. These tests write two modules
into a copy of the package, one inlining the other's function, edit the inlined one and check that processes
compute with the new code: with the cache beside the modules or in ``NUMBA_CACHE_DIR``, and when a process
started before the edit writes entries of the old code after it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from masssim import compiled
from masssim.engine import kernels

needs_numba = pytest.mark.skipif(not kernels.COMPILED, reason="numba is not installed: nothing is cached")

PACKAGE = Path(compiled.__file__).parent

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


def _package_with_probes(root: Path) -> Path:
    shutil.copytree(PACKAGE, root / "masssim", ignore=shutil.ignore_patterns("__pycache__"))
    engine = root / "masssim" / "engine"
    (engine / "probe_inlined.py").write_text(INLINED)
    (engine / "probe_caller.py").write_text(CALLER)
    return engine


def _env(root: Path, cache_dir: Path | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop(compiled.KERNELS_ENV, None)
    env.pop("NUMBA_CACHE_DIR", None)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    return env


def _loop(root: Path, argument: str = "1.0", cache_dir: Path | None = None) -> float:
    code = f"from masssim.engine.probe_caller import loop; print(loop({argument}))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=_env(root, cache_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return float(done.stdout)


@needs_numba
@pytest.mark.parametrize("own_cache_dir", [False, True])
def test_an_edit_of_an_inlined_function_reaches_the_loops_of_other_modules(tmp_path: Path, own_cache_dir: bool) -> None:
    """Compile and cache a loop that inlines another module's function, then edit that module alone: the next
    process computes with the new code, not the cached machine code of the old (the cache beside the modules,
    or in a NUMBA_CACHE_DIR of the user's)."""
    engine = _package_with_probes(tmp_path)
    cache_dir = tmp_path / "user-cache" if own_cache_dir else None
    assert _loop(tmp_path, cache_dir=cache_dir) == 20.0
    cached = cache_dir if cache_dir is not None else engine / "__pycache__"
    assert list(cached.rglob("probe_caller*.nbi"))  # it was cached
    assert _loop(tmp_path, cache_dir=cache_dir) == 20.0  # and loaded from the cache

    (engine / "probe_inlined.py").write_text(INLINED.replace("x + 1.0", "x + 2.0"))
    assert _loop(tmp_path, cache_dir=cache_dir) == 30.0


@needs_numba
def test_a_process_from_before_an_edit_cannot_put_old_code_back(tmp_path: Path) -> None:
    """A process that imported the package before the edit compiles a new type of the loop after it (and saves
    it in the cache, stamped with the old sources): later processes still compute with the new code."""
    engine = _package_with_probes(tmp_path)
    go = tmp_path / "go"
    waiting = (
        "import time, pathlib\n"
        "from masssim.engine.probe_caller import loop\n"
        f"go = pathlib.Path({str(go)!r})\n"
        "while not go.exists():\n"
        "    time.sleep(0.05)\n"
        "print(loop(1))\n"  # an int: a type not compiled before, compiled and cached now
    )
    before = subprocess.Popen(
        [sys.executable, "-c", waiting], env=_env(tmp_path, None), stdout=subprocess.PIPE, text=True
    )
    time.sleep(3)  # it has imported the old sources
    (engine / "probe_inlined.py").write_text(INLINED.replace("x + 1.0", "x + 5.0"))
    assert _loop(tmp_path) == 60.0
    go.write_text("")
    out, _ = before.communicate(timeout=300)
    assert before.returncode == 0
    assert float(out) in (20.0, 60.0)  # its own code, old or (had it not finished importing) new
    assert _loop(tmp_path, "1") == 60.0  # the int loop it cached is not taken for the new code's
