"""The one error type a user sees for bad input.

A :class:`ScenarioError` names the file, the field path, the value and what is allowed, so that the
message alone tells a non-programmer what to fix. The CLI prints ``str(error)`` on one line to stderr and
exits with status 2.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any

_MISSING: Any = object()

# The offending value is shown in short: a 10 MB string or an array nested 500 deep must still make one
# readable line (reprlib also stops before Python's recursion limit).
_SHORT = reprlib.Repr()
_SHORT.maxstring = 120
_SHORT.maxother = 120
_SHORT.maxlong = 60
_SHORT.maxlevel = 4
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 8


def show_value(value: Any) -> str:
    """``repr(value)``, shortened, on one line."""
    try:
        return one_line(_SHORT.repr(value))
    except Exception:  # a value whose repr fails must not hide the error it belongs to
        return f"<{type(value).__name__}>"


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (line breaks included) written as an escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    """``key`` as TOML writes it: bare when it can be, else a quoted string with escapes (one line)."""
    if _BARE_KEY.fullmatch(key):
        return key
    out = []
    for char in key:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(f"\\U{ord(char):08X}")
    return '"' + "".join(out) + '"'


def format_loc(loc: tuple[Any, ...]) -> str:
    """A location as a field path: ``arms[1].segments``; keys that are not bare TOML keys are quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + toml_key(str(part))
    return out


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
            # a path built from a 100 kB key is still findable from its two ends
            parts.append(self.field if len(self.field) <= 240 else f"{self.field[:160]}...{self.field[-60:]}")
        head = ": ".join(parts)
        text = f"{head}: {self.reason}"
        if self.has_value:
            text += f" (got {show_value(self.value)})"
        if self.allowed:
            text += f"; allowed: {self.allowed}"
        if len(self.problems) > 1:
            text += f" [and {len(self.problems) - 1} more problem(s); fix this one first]"
        return one_line(text)


class ShardLost(RuntimeError):
    """A shard of a sharded run was lost (its Dask worker died or stopped answering): its customers' state
    is gone, so the run stops without writing results. The message is one line naming the shard."""
