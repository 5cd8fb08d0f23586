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

# The compiled read picks (send_kernels.py) on three sends: their v inline kernels._send_uniform (kernels.py).
PICK_READS = """
import numpy as np
from masssim.engine import send_kernels
draw = np.array([0.1, 0.3, 0.05]); cand = np.array([0, 2], np.int32)
out = send_kernels.pick_reads(cand, np.ones(2, np.float32), np.float32(0.5), draw, np.arange(3, dtype=np.int32),
                              np.zeros(3, np.int32), np.zeros(3), 0.0, np.zeros(3, np.float32))
print(" ".join(repr(float(x)) for x in out[4]))
"""


def _v_of_the_compiled_read_picks(root: Path) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop(compiled.KERNELS_ENV, None)
    env.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", PICK_READS], check=False, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return [float(x) for x in done.stdout.split()]


@needs_numba
def test_an_edit_of_an_inlined_function_reaches_the_loops_of_other_modules(tmp_path: Path) -> None:
    """Compile and cache the read picks, then halve the send's uniform in kernels.py alone: the next process
    computes v with the new code (half the old values), not the cached old machine code."""
    shutil.copytree(PACKAGE, tmp_path / "masssim", ignore=shutil.ignore_patterns("__pycache__"))
    before = _v_of_the_compiled_read_picks(tmp_path)
    assert (tmp_path / "masssim" / "engine" / "__pycache__" / compiled.STAMP_NAME).exists()
    assert list((tmp_path / "masssim" / "engine" / "__pycache__").glob("send_kernels*.nbi"))  # it was cached

    source = tmp_path / "masssim" / "engine" / "kernels.py"
    text = source.read_text()
    old = "    return np.float32(np.floor(draw * _TWO_POW_24) * _TWO_POW_MINUS_24)\n"
    assert text.count(old) == 1
    source.write_text(
        text.replace(old, "    return np.float32(np.floor(draw * _TWO_POW_24) * _TWO_POW_MINUS_24 * 0.5)\n")
    )

    after = _v_of_the_compiled_read_picks(tmp_path)
    assert after == [x / 2 for x in before]


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
