"""The policies' switch for compiled loops: numba when importable, unless ``MASSSIM_KERNELS=numpy`` (the
engine's switch, engine/kernels.py) asks for the numpy code. Every compiled loop keeps a numpy fallback that
gives the same results."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def _load_numba() -> Any:
    if os.environ.get("MASSSIM_KERNELS", "").strip().lower() == "numpy":
        return None
    try:
        import numba
    except ImportError:
        return None
    return numba


NUMBA = _load_numba()


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` compiled by numba (cached on disk), or as it is without numba."""
    return function if NUMBA is None else NUMBA.njit(cache=True, nogil=True)(function)
