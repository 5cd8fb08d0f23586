"""The one error type a user sees for bad input.

A :class:`ScenarioError` names the file, the field path, the value and what is allowed, so that the
message alone tells a non-programmer what to fix. The CLI prints ``str(error)`` on one line to stderr and
exits with status 2.
"""

from __future__ import annotations

from typing import Any

_MISSING: Any = object()


class ScenarioError(ValueError):
    """Bad input: a scenario file, a command-line override or a user's data file.

    Attributes:
        file: the file the problem is in (``None`` when the input did not come from a file).
        field: dotted path of the offending field, e.g. ``arms[1].segments`` (``None`` for the whole file).
        value: the offending value as given (absent when there was none).
        allowed: what would have been accepted, in plain words.
        problems: every problem found, each a (field, message) pair; the message shows the first.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        value: Any = _MISSING,
        allowed: str | None = None,
        problems: list[tuple[str | None, str]] | None = None,
    ) -> None:
        self.file = file
        self.field = field
        self.value = None if value is _MISSING else value
        self.has_value = value is not _MISSING
        self.allowed = allowed
        self.reason = message
        self.problems = problems or [(field, message)]
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or "<scenario>"
        parts = [where]
        if self.field:
            parts.append(self.field)
        head = ": ".join(parts)
        text = f"{head}: {self.reason}"
        if self.has_value:
            text += f" (got {self.value!r})"
        if self.allowed:
            text += f"; allowed: {self.allowed}"
        if len(self.problems) > 1:
            text += f" [and {len(self.problems) - 1} more problem(s); fix this one first]"
        return text
