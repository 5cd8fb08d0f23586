"""Where bench_outbound.py's peak memory goes: live arrays against resident memory, per phase.

Run:  python tests/benchmarks/bench_outbound_memory.py [--customers 10000000] [--heap]

The benchmark's scenario in one process, with numpy's allocations traced (tracemalloc sees every array numpy
allocates). Printed per customer: the bare interpreter with the imports; the live bytes once the population
is built, once the arm is set up (its state), before each wave is planned (the state plus what is in flight:
the week's occasions, the outcomes pending), and at the peak of each wave's sending (plus the plan and the
block temporaries); and the resident memory (RSS) at its peak. The gap between the live peak and the RSS
peak is memory the allocator keeps after numpy frees it (freed temporaries, holes between long-lived arrays).

``--heap`` measures those holes instead, without tracing (glibc only): the run as it is, with glibc's heap
read (``mallinfo2``) after every compiled kernel's call and every plan. It prints the heap's size at the
end (the engine never gives heap memory back, engine/allocator.py), the most it held in use at those
reads, and the difference: holes the heap cannot fill with what a wave asks for next. Where the heap grew,
by more than half a byte per customer, it prints the call and the wave.
"""

from __future__ import annotations

import argparse
import ctypes
import resource
import statistics
import tracemalloc

from bench_outbound import scenario_dict


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def heap_holes(n: int) -> None:
    """The ``--heap`` measurement (module docstring)."""
    import masssim
    from masssim.engine import kernels, release_kernels, send_kernels
    from masssim.engine.sim import ArmSimulation, build_world
    from masssim.model.streams import replication_sequence, root_sequence

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    most_in_use = [0]
    grew: list[tuple[float, str, int]] = []
    wave = [-1]

    def read(name: str, size_before: int) -> None:
        info = libc.mallinfo2()
        most_in_use[0] = max(most_in_use[0], info.uordblks)
        if info.arena - size_before > n // 2:
            grew.append(((info.arena - size_before) / n, name, wave[0]))

    def watched(owner, name):  # type: ignore[no-untyped-def]
        function = getattr(owner, name)

        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            size_before = libc.mallinfo2().arena
            result = function(*args, **kwargs)
            read(name, size_before)
            return result

        setattr(owner, name, call)

    for module in (kernels, send_kernels, release_kernels):
        for name, value in list(vars(module).items()):
            if callable(value) and not name.startswith("_") and not isinstance(value, type):
                watched(module, name)
    scenario = masssim.scenario_from_dict(scenario_dict(n, 30))
    world = build_world(scenario, replication_sequence(root_sequence(1), 0))
    simulation = ArmSimulation(scenario, world, 0)
    plan = simulation.policy.plan

    def watched_plan(context):  # type: ignore[no-untyped-def]
        wave[0] = context.wave_index
        size_before = libc.mallinfo2().arena
        result = plan(context)
        read("the policy's plan", size_before)
        return result

    simulation.policy.plan = watched_plan  # type: ignore[method-assign]
    simulation.run()
    size = libc.mallinfo2().arena
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"{n:,} customers; bytes per customer (glibc's heap, no tracing)")
    print(f"  heap size at the end                    {size / n:6.1f}")
    print(f"  most in use (after a kernel or a plan)  {most_in_use[0] / n:6.1f}")
    print(f"  holes                                   {(size - most_in_use[0]) / n:6.1f}")
    print(f"  peak RSS                                {rss / n:6.1f}")
    for grown, name, at_wave in grew:
        print(f"  heap grew by {grown:4.1f} at {name} (wave {at_wave})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--heap", action="store_true", help="glibc's heap: its size, most in use, holes")
    args = parser.parse_args()
    n = args.customers
    if args.heap:
        heap_holes(n)
        return

    import masssim
    from masssim.engine import outbound
    from masssim.engine.sim import ArmSimulation, build_world
    from masssim.model.streams import replication_sequence, root_sequence

    interpreter = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start(1)
    scenario = masssim.scenario_from_dict(scenario_dict(n, 30))
    world = build_world(scenario, replication_sequence(root_sequence(1), 0))
    population = tracemalloc.get_traced_memory()[0]
    simulation = ArmSimulation(scenario, world, 0)
    set_up = tracemalloc.get_traced_memory()[0]
    before_wave: list[int] = []
    sending_peak: list[int] = []
    planning_peak: list[int] = []
    plan = simulation.policy.plan
    send = outbound.OutboundSender.send

    def traced_plan(wave):  # type: ignore[no-untyped-def]
        before_wave.append(tracemalloc.get_traced_memory()[0])
        tracemalloc.reset_peak()
        return plan(wave)

    def traced_send(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        planning_peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.reset_peak()
        try:
            return send(self, *args, **kwargs)
        finally:
            sending_peak.append(tracemalloc.get_traced_memory()[1])

    simulation.policy.plan = traced_plan  # type: ignore[method-assign]
    outbound.OutboundSender.send = traced_send  # type: ignore[method-assign]
    simulation.run()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def per(b: float) -> str:
        return f"{b / n:6.1f}"

    print(f"{n:,} customers; bytes per customer (live: traced numpy arrays and objects, above the interpreter)")
    print(f"  interpreter and imports (RSS)          {per(interpreter)}")
    print(f"  live, population built                  {per(population)}")
    print(f"  live, arm set up (state)                {per(set_up)}")
    print(f"  live before a wave, median (max)        {per(statistics.median(before_wave))} ({per(max(before_wave))})")
    print(f"  live peak while planning, max           {per(max(planning_peak))}")
    sending = f"{per(statistics.median(sending_peak))} ({per(max(sending_peak))})"
    print(f"  live peak while sending, median (max)   {sending}")
    print(f"  interpreter + live peak                 {per(interpreter + max(sending_peak + planning_peak))}")
    print(f"  peak RSS                                {per(rss)}")


if __name__ == "__main__":
    main()
