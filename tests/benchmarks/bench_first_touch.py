"""What it costs this machine to touch memory for the first time: just freed by another process, or freed a while ago.

Run:  python tests/benchmarks/bench_first_touch.py [--gib 2] [--pause 10] [--repeat 3]

A run at 95 million customers touches about 13 GiB for the first time (docs/model.md §15.4). On bare metal the
kernel zeroes a fresh page at some 10 GB/s. On a virtual machine whose host takes free memory back (Linux's
free page reporting over virtio-balloon: the guest tells the host which free pages it may reclaim), the
first touch of such a page also makes the host find and back it again, and that can cost a hundred times more.

Each repeat runs three fresh processes, one after the other, each filling ``--gib`` GiB with ones:

- "first": whatever state the memory was in;
- "warm": started as soon as "first" exits, so it gets pages the guest has only just freed;
- "cold": started ``--pause`` seconds later, time enough for the guest to report the freed pages.

For each it prints wall time and the kernel's CPU seconds per GiB (the time spent faulting pages in), with the
medians over the repeats, and how many KiB the guest reported to its host meanwhile when the kernel says so
(``/sys/module/page_reporting/parameters/reported_kib``). Warm against cold is the ratio to quote.

:func:`prefault` is the other benchmarks' ``--prefault``: it touches memory in the measuring process and frees
it before the clock starts, so that the run reuses memory the host already backs.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPORTED = Path("/sys/module/page_reporting/parameters/reported_kib")

TOUCH = """
import json, resource, sys, time
import numpy as np
size = int(float(sys.argv[1]) * 2**30)
wall0, usage0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
touched = np.ones(size, np.uint8)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": time.perf_counter() - wall0, "system_cpu_s": usage.ru_stime - usage0.ru_stime,
                  "page_faults": usage.ru_minflt - usage0.ru_minflt}))
"""


def prefault(gib: float) -> dict:
    """Touch ``gib`` GiB in 256 MiB pieces on two threads, then free it: the allocator keeps it in the heap
    (engine/allocator.py), so the run reuses memory already backed. Returns what the touching cost."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from masssim.engine.allocator import keep_freed_memory

    if not keep_freed_memory():
        raise SystemExit("--prefault needs the allocator to keep freed memory (unset MASSSIM_MALLOC)")
    piece = 1 << 28
    pieces: list = [None] * max(1, round(gib * 2**30 / piece))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)

    def touch(i: int) -> None:
        pieces[i] = np.ones(piece, np.uint8)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(touch, range(len(pieces))))
    touched = len(pieces) * piece
    pieces.clear()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "bytes": touched,
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": time.process_time() - cpu0,
        "system_cpu_s": usage.ru_stime - usage0.ru_stime,
    }


def reported_kib() -> int | None:
    try:
        return int(REPORTED.read_text())
    except (OSError, ValueError):
        return None


def touch(gib: float) -> dict:
    out = subprocess.run([sys.executable, "-c", TOUCH, str(gib)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=2.0, help="memory each process touches")
    parser.add_argument("--pause", type=float, default=10.0, help="seconds before the 'cold' process")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    per_kind: dict[str, list[float]] = {"first": [], "warm": [], "cold": []}
    print(f"each process fills {args.gib:g} GiB; kernel CPU seconds per GiB (wall seconds)")
    for i in range(args.repeat):
        cells = []
        reported = ""
        for kind, per_gib in per_kind.items():
            if kind == "cold":
                before = reported_kib()
                time.sleep(args.pause)
                after = reported_kib()
                if before is not None and after is not None:
                    reported = f"; reported to the host during the pause: {after - before:,} KiB"
            r = touch(args.gib)
            per_gib.append(r["system_cpu_s"] / args.gib)
            cells.append(f"{kind} {per_gib[-1]:6.3f} s/GiB ({r['wall_s']:.2f} s)")
        print(f"  repeat {i + 1}: " + ", ".join(cells) + reported)
    medians = {kind: statistics.median(values) for kind, values in per_kind.items()}
    print("medians: " + ", ".join(f"{kind} {value:.3f} s/GiB" for kind, value in medians.items()))
    if medians["warm"] > 0:
        print(f"cold / warm: {medians['cold'] / medians['warm']:.0f}x the kernel time per GiB")


if __name__ == "__main__":
    main()
