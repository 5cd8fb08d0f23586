"""The engine keeps the memory it frees for its next arrays (engine/allocator.py, docs/model.md §15.4)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

# Frees a 256 MiB array, then fills a new one of the same size, in the main thread and then in a thread started
# after the import (as the shards' threads and the population's are): prints whether the setting took and how
# many page faults each second array cost (a fresh mapping faults in every page; reused heap memory none).
REFILL = """
import resource, threading
import numpy as np
import masssim  # importing the engine sets the allocator
from masssim.engine.allocator import keep_freed_memory
faults = []
def refill():
    a = np.ones(2**25); del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    b = np.ones(2**25)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
refill()
thread = threading.Thread(target=refill); thread.start(); thread.join()
print(keep_freed_memory(), *faults)
"""


def _run(script: str, extra_env: dict[str, str]) -> str:
    """``script``'s output in a fresh interpreter whose environment has none of glibc's malloc variables or
    MASSSIM_MALLOC but those of ``extra_env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "MASSSIM_MALLOC"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env | extra_env, capture_output=True, text=True, check=True
    )
    return out.stdout


def _refill(malloc: str | None) -> tuple[str, int, int]:
    kept, in_main, in_thread = _run(REFILL, {} if malloc is None else {"MASSSIM_MALLOC": malloc}).split()
    return kept, int(in_main), int(in_thread)


def _glibc_has(function: str) -> bool:
    """Whether this interpreter runs on a Linux C library with ``function`` (glibc's; mallinfo2 from 2.33)."""
    return sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), function)


@pytest.mark.skipif(not _glibc_has("mallopt"), reason="glibc's mallopt is what is set")
def test_a_freed_array_is_reused_without_faulting_its_pages_again() -> None:
    kept, *faults_kept = _refill(None)
    system, *faults_system = _refill("system")
    assert (kept, system) == ("True", "False")
    # 256 MiB is 128 huge pages or 65,536 small ones: a fresh mapping faults at least 128 times.
    assert min(faults_system) >= 128
    assert max(faults_kept) < 16


# Reserves 3 GiB (np.empty touches none of it, so this costs no memory), frees it, and prints how much of it the
# heap kept: mallinfo2's arena, the bytes the main heap holds. glibc trims a free top larger than its trim
# threshold; with the largest int (2 GiB) as the threshold, as before session 9, this printed 0.03.
KEEP_TOP = """
import ctypes
import numpy as np
import masssim  # importing the engine sets the allocator
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Mallinfo2
reserved = np.empty(3 * 2**30, np.uint8)
del reserved
print(mallinfo2().arena / 2**30)
"""


def _kept_gib(extra_env: dict[str, str]) -> float:
    return float(_run(KEEP_TOP, extra_env))


@pytest.mark.skipif(not _glibc_has("mallinfo2"), reason="glibc's mallinfo2 tells what the heap holds")
def test_more_than_two_gib_freed_at_the_top_of_the_heap_is_kept() -> None:
    from masssim.engine.allocator import keep_freed_memory, worker_environment

    assert _kept_gib({}) >= 3.0  # set by mallopt at import
    assert _kept_gib({"MASSSIM_MALLOC": "system"}) < 0.5  # glibc's own settings give it back
    if keep_freed_memory():  # a worker process: the same settings from its environment alone
        assert _kept_gib({"MASSSIM_MALLOC": "system"} | worker_environment()) >= 3.0
