"""A user's labelled messages, read from a .jsonl or .csv file: the texts and truth the inbound stream and the
classifier's training set use instead of the synthetic ones. Every problem is one line naming the file, the row
and the column (docs/model.md).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from masssim.config.errors import ScenarioError
from masssim.config.mentions import INTENTS, MessageSource
from masssim.model.messages import _URGENCY_BY_INTENT, OTHER, LabelledMessages


def load_source(source: MessageSource, *, base: Path | None = None) -> LabelledMessages:
    """The labelled messages a scenario's ``inbound.messages`` names (a relative path is relative to ``base``)."""
    path = Path(source.path)
    if base is not None and not path.is_absolute():
        path = base / path
    return load_labelled_messages(path, format=source.format)


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_COLUMNS = ("text", "relevant", "intent", "urgency", "language")
_LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
MAX_TEXT_CHARS = 10_000


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_labelled_messages(path: str | Path, *, format: str = "auto") -> LabelledMessages:
    """Read a user's labelled messages from JSONL (one JSON object a line) or CSV (a header row).

    Schema, per message:

    * ``text`` (required): non-empty text, at most 10,000 characters.
    * ``relevant`` (required): whether the message concerns the brand. JSON ``true``/``false``; in CSV one of
      true/false, yes/no, 1/0 (any case).
    * ``intent``: one of complaint, support, purchase, question, praise, other. Required when relevant; may be
      empty or absent for irrelevant messages (stored as ``other``).
    * ``urgency`` (optional): a number in [0, 1]; default by intent (0 for irrelevant messages).
    * ``language`` (optional): a lower-case ISO 639 code such as en, fr, id, ar, te (``und`` when absent).

    Other fields are rejected. Blank lines are skipped. Every bad row is reported; the error shows the first
    as ``file:line: field: problem (got value); allowed: ...`` and counts the others.
    """
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise ScenarioError("file not found", file=file, allowed="a path to an existing .jsonl or .csv file")
    fmt = format
    if fmt == "auto":
        suffix = path.suffix.lower()
        fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(suffix, "")
        if not fmt:
            raise ScenarioError(
                "cannot tell the format from the extension", file=file, value=suffix, allowed=".jsonl, .ndjson, .csv"
            )
    try:
        # utf-8-sig: a byte-order mark (spreadsheet exports write one) is not part of the first line
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScenarioError("is not UTF-8 text", file=file, allowed="a UTF-8 file") from None
    except OSError as exc:
        raise ScenarioError(f"cannot be read ({exc.strerror or exc})", file=file) from None
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[tuple[str, str, Any, str]] = []  # (where, field, value, allowed/message)
    if fmt == "jsonl":
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append((f"{file}:{lineno}", "", line[:80], f"is not valid JSON ({exc.msg})"))
                continue
            except RecursionError:  # the json module decodes nested arrays recursively
                problems.append((f"{file}:{lineno}", "", line[:80], "is nested too deeply to read"))
                continue
            except ValueError as exc:  # e.g. an integer longer than Python converts
                problems.append((f"{file}:{lineno}", "", line[:80], f"is not valid JSON ({exc})"))
                continue
            if not isinstance(obj, dict):
                problems.append((f"{file}:{lineno}", "", obj, "each line must be a JSON object"))
                continue
            rows.append((lineno, obj))
    elif fmt == "csv":
        _read_csv(raw, file, rows, problems)
    else:
        raise ScenarioError("unknown format", file=file, field="format", value=fmt, allowed="auto, jsonl, csv")
    return _check_rows(rows, problems, file, fmt)


def _read_csv(
    raw: str, file: str, rows: list[tuple[int, dict[str, Any]]], problems: list[tuple[str, str, Any, str]]
) -> None:
    """The rows of a CSV text (a header row first); a file the csv module cannot read is one error."""
    reader = csv.reader(raw.splitlines(keepends=True))
    try:
        header = next(reader, None)
        if header is None:
            raise ScenarioError("the file is empty", file=file, allowed="a header row: " + ",".join(_COLUMNS))
        header = [h.strip() for h in header]
        if not any(header):
            raise ScenarioError(
                "the first row (the header) is empty", file=f"{file}:1", allowed="a header row: " + ",".join(_COLUMNS)
            )
        for name in header:
            if name not in _COLUMNS:
                raise ScenarioError(
                    "unknown column", file=f"{file}:1", field=name, value=name, allowed=", ".join(_COLUMNS)
                )
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            lineno = reader.line_num
            if len(row) != len(header):
                problems.append((f"{file}:{lineno}", "", len(row), f"expected {len(header)} columns"))
                continue
            rows.append((lineno, {k: v for k, v in zip(header, row, strict=True) if v.strip() != ""}))
    except csv.Error as exc:  # a field over the csv module's size limit, a NUL byte, ...
        raise ScenarioError(
            f"is not readable CSV ({exc})",
            file=f"{file}:{reader.line_num}",
            allowed=f"a header row, then one message a row; texts of at most {MAX_TEXT_CHARS} characters",
        ) from None


def _check_rows(
    rows: list[tuple[int, dict[str, Any]]], problems: list[tuple[str, str, Any, str]], file: str, fmt: str
) -> LabelledMessages:
    text: list[str] = []
    relevant: list[bool] = []
    intent: list[int] = []
    urgency: list[float] = []
    language: list[str] = []
    for lineno, obj in rows:
        where = f"{file}:{lineno}"
        bad = len(problems)
        for key in obj:
            if key not in _COLUMNS:
                problems.append((where, key, key, "unknown field; allowed: " + ", ".join(_COLUMNS)))
        t = obj.get("text")
        if not isinstance(t, str) or not t.strip() or len(t) > MAX_TEXT_CHARS:
            problems.append((where, "text", t, "non-empty text of at most 10000 characters"))
        elif not _is_unicode(t):  # JSON can escape half a surrogate pair, which no UTF-8 target can be sent
            problems.append((where, "text", t, "Unicode text (an escaped lone surrogate such as \\ud800 is not)"))
        r_raw = obj.get("relevant")
        r: bool | None = None
        if isinstance(r_raw, bool):
            r = r_raw
        elif fmt == "csv" and isinstance(r_raw, str) and r_raw.strip().lower() in _TRUE | _FALSE:
            r = r_raw.strip().lower() in _TRUE
        else:
            allowed = "true or false" if fmt == "jsonl" else "true/false, yes/no, 1/0"
            problems.append((where, "relevant", r_raw, allowed))
        i_raw = obj.get("intent")
        i_code = OTHER
        if i_raw is None or (isinstance(i_raw, str) and not i_raw.strip()):
            if r:
                problems.append((where, "intent", i_raw, "required when relevant: " + ", ".join(INTENTS)))
        elif isinstance(i_raw, str) and i_raw.strip().lower() in INTENTS:
            i_code = INTENTS.index(i_raw.strip().lower())
        else:
            problems.append((where, "intent", i_raw, ", ".join(INTENTS)))
        u_raw = obj.get("urgency")
        u_val = float(_URGENCY_BY_INTENT[i_code]) if r else 0.0
        if u_raw is not None:
            try:
                if isinstance(u_raw, bool):
                    raise ValueError
                u_val = float(u_raw)
                if not 0.0 <= u_val <= 1.0:
                    raise ValueError
            except (TypeError, ValueError):
                problems.append((where, "urgency", u_raw, "a number in [0, 1]"))
        l_raw = obj.get("language", "und")
        if not isinstance(l_raw, str) or not _LANG_RE.match(l_raw.strip()):
            problems.append((where, "language", l_raw, "a lower-case ISO 639 code such as en, fr, id, ar, te"))
        if len(problems) > bad:
            continue
        text.append(str(t))
        relevant.append(bool(r))
        intent.append(i_code)
        urgency.append(u_val)
        language.append(str(l_raw).strip())
    if problems:
        where, fld, value, allowed = problems[0]
        raise ScenarioError(
            "bad row" if fld else allowed,
            file=where,
            field=fld or None,
            value=value,
            allowed=allowed if fld else None,
            problems=[(f"{w}: {f}" if f else w, a) for w, f, _, a in problems],
        )
    if not text:
        raise ScenarioError("no messages in the file", file=file, allowed="at least one labelled message")
    return LabelledMessages(
        text=text,
        relevant=np.array(relevant, dtype=bool),
        intent=np.array(intent, dtype=np.int8),
        urgency=np.array(urgency, dtype=np.float32),
        language=language,
    )
