"""The policies' switch for compiled loops: numba when importable, unless ``MASSSIM_KERNELS=numpy`` asks for
the numpy code (masssim/compiled.py, which also keeps numba's cache true to the sources). Every compiled loop
keeps a numpy fallback that gives the same results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from masssim.compiled import load_numba

NUMBA = load_numba()


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` compiled by numba (cached on disk), or as it is without numba."""
    return function if NUMBA is None else NUMBA.njit(cache=True, nogil=True)(function)
