"""Keep the memory a simulation frees for its next arrays, instead of handing it back to the kernel.

A wave or a feedback bucket at tens of millions of customers allocates arrays of tens to hundreds of megabytes
and frees them a moment later. glibc's malloc serves every allocation above its mmap threshold (at most 32 MiB)
with a fresh mapping and unmaps it at free, so the next wave's arrays are new mappings whose pages the kernel
must fault in and zero on first touch (2 MiB at a time, since numpy asks for huge pages). At 95 million
customers this was a third of the run's CPU (88 of 264 s; ``perf`` puts it in ``clear_page_erms`` under
``do_huge_pmd_anonymous_page``), docs/model.md §15.4.

:func:`keep_freed_memory` tells glibc to serve large allocations from its main heap and not to give freed
memory back: freed arrays are reused by the next ones without a fault. The cost is that the process's resident
memory stays at its peak until it exits (the peak itself moves by a few percent, measured in §15.4). It runs
when :mod:`masssim.engine` is imported, before this program's threads allocate: a thread that has allocated
before has an arena of its own, and glibc maps an array too large for a thread arena's heap (64 MiB) afresh
whatever the setting. Results do not change: this is where arrays live, not what they hold. Set
``MASSSIM_MALLOC=system`` (before the import) to leave the allocator as it was; without glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

MALLOC_ENV = "MASSSIM_MALLOC"  # "system": leave glibc's settings alone

# The settings: glibc's mallopt parameter (malloc.h), its value, and the same value as the environment variable
# glibc reads at start-up. No allocation gets a mapping of its own (each would be zeroed afresh); the heap's free
# top is never trimmed; and threads share the one heap: a thread's own arena lives in mappings of at most
# 64 MiB, which glibc unmaps as soon as they are empty, so the shards' threads (engine/sharded.py) would fault
# their arrays afresh every bucket. "Never trimmed": mallopt takes an int, and glibc stores the trim threshold
# as a size_t, so -1 is the largest size there is. The largest positive int, 2 GiB, was used until session 9:
# a run that freed more than 2 GiB at the heap's top then gave it back, and faulted it in again (measured with
# mallinfo2 in tests/test_allocator.py; on this project's virtual machine a page given back costs about 8 s of
# kernel time per GiB to fault in again, docs/model.md §15.4).
_NEVER = 2**64 - 1  # SIZE_MAX on a 64-bit glibc: what mallopt's -1 becomes
_SETTINGS = (
    (-4, 0, "MALLOC_MMAP_MAX_", "0"),  # M_MMAP_MAX
    (-1, -1, "MALLOC_TRIM_THRESHOLD_", str(_NEVER)),  # M_TRIM_THRESHOLD
    (-8, 1, "MALLOC_ARENA_MAX", "1"),  # M_ARENA_MAX
)


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's malloc, once per process, to keep freed memory for reuse. True when the setting is in force."""
    if os.environ.get(MALLOC_ENV, "").strip().lower() == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt): nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(option, value) for option, value, _, _ in _SETTINGS)


def worker_environment() -> dict[str, str]:
    """The same settings as environment variables, for worker processes this one starts (a process pool, a
    LocalCluster): glibc reads them when a process starts, before any thread has an arena of its own, which
    a setting made later from Python cannot undo in a thread already running (Dask's worker runs its tasks
    on such threads). Empty when the settings are not in force here."""
    if not keep_freed_memory():
        return {}
    return {variable: text for _, _, variable, text in _SETTINGS}
