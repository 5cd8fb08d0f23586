"""A hint to the CPU, for compiled loops: start loading an element now, it will be read a few rows from here.

A compiled loop over a wave's reads gathers each reader's attributes (taste, warmth, region, active window)
from arrays of the whole population. The readers are a few percent of a region's customers in ascending
order, so consecutive reads are hundreds of bytes apart: every gather misses the caches, and the hardware's
own prefetcher does not follow. A loop with a short body still overlaps many misses, because the processor
runs ahead into later rows; a loop with a long body (the read kernel's window arithmetic and affinity) cannot
run far enough ahead, and waits for memory at every row. Measured (``tests/benchmarks/bench_cache_hints.py``,
docs/model.md §15.8): the read kernel at 10M customers took about 83 ns per read with its rows as the engine
gives them and 31 ns with the same rows in cache; asking for row ``i + 16``'s attributes at row ``i`` brought
it to about 38 ns. Tight loops (a counter's increment, a stock's addition) gain nothing from it and do not
use it.

:func:`load_soon` compiles to LLVM's ``prefetch`` intrinsic: a read hint that changes no value and never
faults. ``masssim.engine.kernels.load_soon`` is the one the loops call: this intrinsic when the kernels are
compiled, and :func:`python_load_soon`, which does nothing, when they are not (the loops are then never run).
"""

from __future__ import annotations

from typing import Any

# How many rows ahead a loop asks for. Far enough for a miss to complete while the rows between run (a row of
# the read kernel costs ~30 ns against ~100 ns for memory); 8, 16, 32 and 48 measured the same. The compiled
# loops take it as a constant, and numba's on-disk cache is keyed by their own module's source: after changing
# it, delete the engine's __pycache__ (or set NUMBA_CACHE_DIR to a fresh directory) to recompile them.
ROWS_AHEAD = 16


def python_load_soon(array: Any, index: Any) -> None:  # pragma: no cover - the loops run compiled
    """``load_soon`` outside compiled code: nothing to do."""


def compiled_load_soon() -> Any:
    """``load_soon(array, index)`` for compiled loops: hint that ``array[index]`` (a 1-D array) will be read
    soon. Imports numba; call it only when the kernels are compiled."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic  # type: ignore[misc]
    def load_soon(typingctx: Any, array: Any, index: Any) -> Any:  # pragma: no cover - runs at compile time
        signature = types.void(array, index)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            array_type = sig.args[0]
            view = context.make_array(array_type)(context, builder, args[0])
            pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]], wraparound=False)
            byte_pointer = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            prefetch = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch.p0"
            )
            # (address, 0 = a read, 3 = keep in every cache level, 1 = data rather than instructions)
            builder.call(prefetch, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return signature, codegen

    return load_soon
