"""numba for the package's compiled loops: whether to use it, and its on-disk cache kept true to the sources.

Every compiled loop (``engine/*kernels.py``, the policies' ``compiled``) is cached on disk by numba next to its
module (``cache=True``), so later processes skip the compilation. numba checks a cached loop against its own
source file only (time stamp and size). A loop that inlines or calls a compiled function of another module
keeps that function's old machine code after an edit of the other module alone: checked on session 19's code,
``send_kernels.pick_reads`` kept the old ``kernels._send_uniform`` after an edit of ``kernels.py``, silently
giving the old numbers. So before numba loads anything, :func:`load_numba` compares a digest of every
source file in the packages that hold compiled code (and model/, whose constants they read) with the one
recorded beside the cache, and when they differ removes the cached loops of those packages (numba then
compiles them afresh, once). An installed release never changes its sources, so there this costs one digest
of about a megabyte of source per process.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

KERNELS_ENV = "MASSSIM_KERNELS"  # "numpy" forces the numpy twins (tests, or a platform without numba)
# The packages whose modules hold compiled loops (a loop may use another module's compiled functions), and
# model/, whose constants the loops read (DAY_S, HOUR_S: numba freezes a global's value into the machine code).
COMPILED_PACKAGES = ("engine", "policies", "model")
STAMP_NAME = "masssim-compiled-sources.sha256"


def load_numba() -> Any:
    """The numba module, or None when it is not importable or ``MASSSIM_KERNELS=numpy``. The first call in a
    process also clears numba's cache of this package if the compiled code's sources changed since it was
    written (:func:`refresh_cache`)."""
    if os.environ.get(KERNELS_ENV, "").strip().lower() == "numpy":
        return None
    return _numba_with_a_true_cache()


@functools.cache
def _numba_with_a_true_cache() -> Any:
    try:
        import numba
    except ImportError:  # numba is a dependency, but a platform without a wheel still runs (slower)
        return None
    if not getattr(numba.config, "CACHE_DIR", ""):  # a cache directory of the user's own is theirs to manage
        refresh_cache(Path(__file__).parent)
    return numba


def sources_digest(root: Path) -> str:
    """sha256 over the names and contents of the ``.py`` files of :data:`COMPILED_PACKAGES` under ``root``."""
    digest = hashlib.sha256()
    for package in COMPILED_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            digest.update(f"{package}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def refresh_cache(root: Path) -> bool:
    """Remove numba's cached loops (``*.nbi``, ``*.nbc``) of :data:`COMPILED_PACKAGES` under ``root`` unless
    they were written from the sources there now; record the sources' digest. Returns whether it removed
    them. A directory that cannot be written (a read-only install) is left as it is."""
    digest = sources_digest(root)
    stamp = root / COMPILED_PACKAGES[0] / "__pycache__" / STAMP_NAME
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        for package in COMPILED_PACKAGES:
            for cached in (root / package / "__pycache__").glob("*.nb[ic]"):
                cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        written = stamp.with_name(f"{STAMP_NAME}.{os.getpid()}")
        written.write_text(digest)
        os.replace(written, stamp)  # whole or absent, whichever process writes last
    except OSError:
        return False
    return True
