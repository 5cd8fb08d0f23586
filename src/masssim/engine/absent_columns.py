"""Stand-ins for the view columns a run does not keep for a policy (docs/model.md §6.1): any use of one stops
the run with one line naming the arm, the attribute and the column its policy should name in
``view_columns``. A sharded coordinator gathers only the columns named (engine/shard_views.py); one process
keeps each customer's recorded opens only for a policy that names ``history`` (engine/sim.py)."""

from __future__ import annotations

from typing import Any

from masssim.config.errors import ScenarioError


class ColumnNotGathered(ScenarioError):
    """A policy read a view column its ``view_columns`` does not name (and the run did not keep). Its ``args`` build it
    again (SimPy raises a copy, ``type(error)(*error.args)``, of an error inside a process)."""

    def __init__(self, reason: str, field: str | None = None, allowed: str | None = None) -> None:
        super().__init__(reason, field=field, allowed=allowed)
        self.args = (reason, field, allowed)

    def __str__(self) -> str:
        return self._render()


class AbsentColumn:
    """Stands for a view column the run did not keep: any use of it raises one line
    (:class:`ColumnNotGathered`) naming the arm, the attribute and the column to name in ``view_columns``."""

    __slots__ = ("_error",)

    def __init__(
        self, arm_index: int, policy: str, arm_name: str, attribute: str, column: str, sharded: bool = True
    ) -> None:
        # One process keeps every column but the recorded opens, which it counts only for a policy that
        # names "history" (engine/sim.py): there a run without --shards would not help.
        kept = "a sharded run gathers" if sharded else "the engine counts"
        fix = ", or a run without --shards" if sharded else ""
        object.__setattr__(
            self,
            "_error",
            ColumnNotGathered(
                f"policy {policy!r} (arm {arm_name!r}) read CustomerView.{attribute}, which {kept} "
                f"only for a policy whose view_columns names {column!r}",
                f"arms[{arm_index}].policy",
                f"view_columns naming {column!r} (docs/model.md §6.1){fix}",
            ),
        )

    def _raise(self, *_: Any, **__: Any) -> Any:
        raise object.__getattribute__(self, "_error")

    def __getattr__(self, name: str) -> Any:
        self._raise()

    def __repr__(self) -> str:
        return "<not gathered>"


# Every way numpy or Python code could use an array: each raises the column's one-line error.
for _name in (
    "__getitem__",
    "__setitem__",
    "__call__",
    "__array__",
    "__array_ufunc__",
    "__array_function__",
    "__len__",
    "__iter__",
    "__bool__",
    "__index__",
    "__int__",
    "__float__",
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__add__",
    "__radd__",
    "__sub__",
    "__rsub__",
    "__mul__",
    "__rmul__",
    "__truediv__",
    "__rtruediv__",
    "__and__",
    "__rand__",
    "__or__",
    "__ror__",
    "__lshift__",
    "__rshift__",
    "__neg__",
    "__invert__",
    "__matmul__",
    "__rmatmul__",
):
    setattr(AbsentColumn, _name, AbsentColumn._raise)
