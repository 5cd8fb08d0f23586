"""Calibration files of the classification core (written by ``masssim bench --calibrate``): the format and its reader.

A scenario's ``[inbound.core] calibration = "core.json"`` names one; :mod:`masssim.scenario.load` reads it when
the scenario is loaded, and its values replace the core's defaults (fields set in the scenario win).
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from masssim.config.errors import show_value

FORMAT = "masssim core calibration"
VERSION = 1
REQUIRED = ("a_s", "b_s")
OPTIONAL_INT = {"replicas": (1, 10_000), "batch_size": (1, 100_000)}


class CalibrationProblem(ValueError):
    """A problem with a calibration file: ``key`` is the offending key in the file (or None)."""

    def __init__(self, file: str, key: str | None, message: str) -> None:
        self.file = file
        self.key = key
        where = f"{file}: {key}" if key else file
        super().__init__(f"calibration file {where}: {message}")


def read_calibration(path: str | Path) -> dict[str, Any]:
    """The core fields of a calibration file: ``a_s``, ``b_s`` and, if present, ``replicas``, ``batch_size``."""
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise CalibrationProblem(
            file, None, "not found (write one with `masssim bench --scenario offline --calibrate`)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationProblem(file, None, f"cannot be read ({exc})") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CalibrationProblem(file, None, f"is not valid {kind} ({reason})") from None
    if not isinstance(data, dict):
        raise CalibrationProblem(file, None, "must be a table/object with a_s and b_s")
    out: dict[str, Any] = {}
    for key in REQUIRED:
        if key not in data:
            raise CalibrationProblem(file, key, "missing (required: a_s and b_s, seconds)")
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise CalibrationProblem(file, key, f"must be a number of seconds (got {show_value(value)})")
        if not 0 <= value <= 3600:
            raise CalibrationProblem(file, key, f"must be in [0, 3600] seconds (got {show_value(value)})")
        out[key] = float(value)
    for key, (low, high) in OPTIONAL_INT.items():
        if data.get(key) is None:
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CalibrationProblem(file, key, f"must be a whole number in [{low}, {high}] (got {show_value(value)})")
        out[key] = value
    return out
