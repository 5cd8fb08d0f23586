"""numba for the package's compiled loops: whether to use it, and its on-disk cache kept true to the sources.

Every compiled loop (``engine/*kernels.py``, the policies' ``compiled``) is cached on disk by numba (``cache=True``),
so later processes skip the compilation. numba checks a cached loop against its own source file only. A loop
that inlines or calls a compiled function of another module keeps that function's old machine code after an
edit of the other module alone: on session 19's code, ``send_kernels.pick_reads`` (which then inlined
``kernels._send_uniform``) kept the old one after an edit of ``kernels.py``, silently giving the old numbers.
So :func:`load_numba`, before any loop of the package is declared, makes numba's stamp of each of the package's
source files carry a digest of every source of the packages that hold compiled code (and of model/, whose
constants the loops read). A cached loop written from other sources then no longer matches, wherever the cache
lives (beside the modules or in ``NUMBA_CACHE_DIR``) and whichever process wrote it (one started before the
edit may still write entries of the old code: they are ignored and compiled afresh). Functions outside the
package keep numba's own stamp. An installed release never changes its sources, so there this costs one
digest of about a megabyte of source per process.
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

KERNELS_ENV = "MASSSIM_KERNELS"  # "numpy" forces the numpy twins (tests, or a platform without numba)
# The packages whose modules hold compiled loops (a loop may use another module's compiled functions), and
# model/, whose constants the loops read (DAY_S, HOUR_S: numba freezes a global's value into the machine code).
COMPILED_PACKAGES = ("engine", "policies", "model")


def load_numba() -> Any:
    """The numba module, or None when it is not importable or ``MASSSIM_KERNELS=numpy``. The first call in a
    process also makes numba's cache of this package's loops depend on all its compiled code's sources
    (:func:`stamp_with_sources`)."""
    if os.environ.get(KERNELS_ENV, "").strip().lower() == "numpy":
        return None
    return _numba_with_a_true_cache()


@functools.cache
def _numba_with_a_true_cache() -> Any:
    try:
        import numba
    except ImportError:  # numba is a dependency, but a platform without a wheel still runs (slower)
        return None
    root = Path(__file__).parent
    stamp_with_sources(root, sources_digest(root))
    return numba


def sources_digest(root: Path) -> str:
    """sha256 over the names and contents of the ``.py`` files of :data:`COMPILED_PACKAGES` under ``root``."""
    digest = hashlib.sha256()
    for package in COMPILED_PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            digest.update(f"{package}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def stamp_with_sources(root: Path, digest: str) -> None:
    """Make numba's stamp of a source file under ``root`` (what a cached loop is checked against) carry
    ``digest`` too. numba takes the stamp once, when a loop is declared, so this runs before the package
    declares any. Other files keep numba's stamp."""
    try:
        from numba.core import caching

        mixin = caching._SourceFileBackedLocatorMixin
    except (ImportError, AttributeError):  # a numba that moved it: the tests of this module fail, loudly
        warnings.warn("masssim: numba's cache of compiled loops may be stale after an edit", stacklevel=2)
        return
    own = getattr(mixin.get_source_stamp, "numba_own", mixin.get_source_stamp)
    prefix = str(root) + os.sep

    def get_source_stamp(locator: Any) -> Any:
        stamp = own(locator)
        inside = str(getattr(locator, "_py_file", "")).startswith(prefix)
        return (stamp, "masssim sources " + digest) if inside else stamp

    get_source_stamp.numba_own = own  # type: ignore[attr-defined]
    setattr(mixin, "get_source_stamp", get_source_stamp)  # noqa: B010 (a method of numba's class, replaced)
