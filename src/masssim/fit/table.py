"""A user's CSV file read column by column, every bad value reported as the project's one-line error.

The first row is the header. Column names are matched exactly after trimming spaces (``customer``, not
``Customer``); columns the command does not use are ignored, so an export with extra columns works as it is.
Blank rows are skipped. An error names the file and line (``panel.csv:17``), the column, the value and what
is allowed (:class:`~masssim.config.errors.ScenarioError`), and the CLI prints it as one line with exit status 2.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from masssim.config.errors import ScenarioError

T = TypeVar("T")

TRUE_WORDS = frozenset({"1", "true"})
FALSE_WORDS = frozenset({"0", "false"})
FLAG_ALLOWED = "1 or 0, true or false (any case)"
DATE_ALLOWED = "an ISO date such as 2024-03-31 (a time after it, as in 2024-03-31T09:30, is ignored)"
TIME_ALLOWED = "an ISO date and time such as 2024-03-31T09:30:00 (or a date alone, read as midnight)"


@dataclass(frozen=True)
class Table:
    """The columns a command asked for, as text, with each row's line number in the file."""

    file: str
    line: list[int]
    columns: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.line)

    def parsed(self, column: str, parse: Callable[[str], T], allowed: str) -> list[T]:
        """Every value of ``column`` parsed; a value ``parse`` refuses (ValueError) is an error naming its line."""
        cache: dict[str, T] = {}  # a panel repeats the same few hundred dates a million times
        out: list[T] = []
        for line, text in zip(self.line, self.columns[column], strict=True):
            value = cache.get(text)
            if value is None:
                try:
                    value = parse(text)
                except ValueError:
                    raise ScenarioError(
                        "value not allowed", file=f"{self.file}:{line}", field=column, value=text, allowed=allowed
                    ) from None
                cache[text] = value
            out.append(value)
        return out


def read_table(path: str | Path, required: Sequence[str], optional: Sequence[str] = (), *, what: str) -> Table:
    """The ``required`` and present ``optional`` columns of the CSV file at ``path``.

    ``what`` says in plain words what one row is ("one purchase"), for the messages.
    """
    path = Path(path)
    file = str(path)
    columns_allowed = "a header row naming the columns " + ", ".join(required)
    if optional:
        columns_allowed += " (and optionally " + ", ".join(optional) + ")"
    if not path.is_file():
        raise ScenarioError("file not found", file=file, allowed=f"a path to an existing CSV file, {what} a row")
    try:
        # utf-8-sig: a byte-order mark (spreadsheet exports write one) is not part of the first column's name.
        # The file is read as a stream: a panel of millions of rows is never held as text.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            lines, columns = _read_rows(reader, file, required, optional, what, columns_allowed)
    except UnicodeDecodeError:
        raise ScenarioError("is not UTF-8 text", file=file, allowed="a UTF-8 CSV file") from None
    except OSError as exc:
        raise ScenarioError(f"cannot be read ({exc.strerror or exc})", file=file) from None
    if not lines:
        raise ScenarioError("has a header but no rows", file=file, allowed=f"at least one row, {what} a row")
    for name in required:
        for line, text in zip(lines, columns[name], strict=True):
            if not text:
                raise ScenarioError("empty value", file=f"{file}:{line}", field=name, allowed=f"a {name} on every row")
    return Table(file=file, line=lines, columns=columns)


def _read_rows(
    reader: Any, file: str, required: Sequence[str], optional: Sequence[str], what: str, columns_allowed: str
) -> tuple[list[int], dict[str, list[str]]]:
    """Line numbers and the wanted columns' values (trimmed) of every non-blank row after the header."""
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise ScenarioError("the file is empty or its first row is blank", file=file, allowed=columns_allowed)
        header = [h.strip() for h in header]
        missing = [name for name in required if name not in header]
        if missing:
            raise ScenarioError(
                f"missing column {missing[0]!r}", file=f"{file}:1", value=",".join(header), allowed=columns_allowed
            )
        wanted = [name for name in (*required, *optional) if name in header]
        position = [(header.index(name), name) for name in wanted]
        lines: list[int] = []
        columns: dict[str, list[str]] = {name: [] for name in wanted}
        # One copy of each distinct value: a brand, a date or a flag repeats on most rows, and a million
        # rows of references cost far less than a million strings.
        seen: dict[str, str] = {}
        for row in reader:
            if len(row) != len(header):
                if not any(cell.strip() for cell in row):
                    continue
                raise ScenarioError(
                    f"has {len(row)} fields, the header has {len(header)}",
                    file=f"{file}:{reader.line_num}",
                    value=",".join(row),
                    allowed=f"{len(header)} comma-separated fields, {what}",
                )
            if not "".join(row).strip():
                continue
            lines.append(reader.line_num)
            for index, name in position:
                text = row[index].strip()
                columns[name].append(seen.setdefault(text, text))
    except csv.Error as exc:  # a field over the csv module's size limit, a NUL byte, ...
        raise ScenarioError(
            f"is not readable CSV ({exc})",
            file=f"{file}:{reader.line_num}",
            allowed=f"comma-separated values, {what} a row",
        ) from None
    return lines, columns


def codes(values: list[str]) -> tuple[list[str], np.ndarray]:
    """(distinct values in order of first appearance, each value's index into them as int64)."""
    index: dict[str, int] = {}
    code = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))
    return list(index), code


def parse_flag(text: str) -> bool:
    """``1``/``true`` -> True, ``0``/``false`` -> False (any case); anything else is a ValueError."""
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


def parse_date(text: str) -> date:
    """An ISO date; a time after it (``2024-03-31T09:30`` or ``2024-03-31 09:30``) is dropped."""
    if len(text) > 10 and text[10] in "T ":
        return datetime.fromisoformat(text).date()
    return date.fromisoformat(text)


def parse_time(text: str) -> datetime:
    """An ISO date and time, as naive UTC (a time with an offset is converted; a date alone is midnight)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
