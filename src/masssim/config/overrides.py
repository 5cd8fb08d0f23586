"""Dotted-path overrides of a scenario: ``population.persona_signal=0.6``, ``arms[1].segments=16``,
``arms.personas.segments=16`` (an arm by name), ``arms.*.segments=16`` (every arm). Used by
``compare --variant``, ``sweep --param`` and a scenario's ``[sweep]`` table.

Values are read as TOML values (``0.6``, ``16``, ``true``, ``"email"``, ``[1, 2]``); a bare word that is not
valid TOML is taken as text, so ``schedule.channel=sms`` works. The overridden scenario is validated like a
file, so a bad override gets the same one-line error naming the field.
"""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

from masssim.config.errors import ScenarioError
from masssim.config.schema import Scenario

_INDEX = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<index>\d+)\]$")


def parse_value(text: str) -> Any:
    """A command-line value as TOML (numbers, booleans, strings, lists), else the text itself."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        # not a TOML value (or one nested too deeply to read): the text itself, which validation then judges
        return text


def split_assignment(text: str, *, source: str) -> tuple[str, str]:
    """``path=value`` -> (path, value text); a clear error naming ``source`` otherwise."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip() or not value.strip():
        raise ScenarioError(
            "expected path=value", file=source, value=text, allowed="e.g. population.persona_signal=0.6"
        )
    return path.strip(), value.strip()


def parse_values(text: str) -> list[Any]:
    """``v1,v2,...`` (commas inside brackets or quotes do not split) -> list of parsed values."""
    parts: list[str] = []
    depth, quote, current = 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return [parse_value(p) for p in parts if p.strip()]


def overridden_data(scenario: Scenario, overrides: dict[str, Any], *, source: str) -> dict[str, Any]:
    """The scenario as a plain dict with each dotted path set to its value (errors name ``source``).

    The dict is validated like a file by :func:`masssim.scenario.load.apply_overrides`.
    """
    data = scenario.model_dump(mode="python", exclude_none=True)
    data.pop("sweep", None)  # a sweep's cells are scenarios, not sweeps
    for path, value in overrides.items():
        _set(data, path, value, source=source)
    return data


def _set(data: dict[str, Any], path: str, value: Any, *, source: str) -> None:
    parts = path.split(".")
    node: Any = data
    walked: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        match = _INDEX.match(part)
        key: Any = part
        if match:
            key = match.group("name")
        elif "[" in part or "]" in part:
            raise ScenarioError(
                "expected NAME[INDEX] with a whole-number index",
                file=source,
                field=".".join([*walked, part]),
                value=path,
                allowed="e.g. arms[1].segments, arms.personas.segments or arms.*.segments",
            )
        if isinstance(node, list):
            raise ScenarioError("cannot index a list with a name here", file=source, field=".".join(walked) or None)
        if key == "arms" and not match and not last and isinstance(node.get("arms"), list):
            # arms.<name>.field: the arm called <name>
            arms = node["arms"]
            name = parts[i + 1]
            rest = ".".join(parts[i + 2 :])
            if name == "*":  # arms.*.field: every arm
                if not rest:
                    raise ScenarioError("name a field of the arms", file=source, field=path)
                for arm in arms:
                    _set(arm, rest, value, source=source)
                return
            found = next((a for a in arms if a.get("name") == name), None)
            if found is None:
                allowed = ", ".join(a.get("name", "?") for a in arms)
                raise ScenarioError("no arm of that name", file=source, field=f"arms.{name}", allowed=allowed)
            if not rest:
                raise ScenarioError("name a field of the arm", file=source, field=path)
            _set(found, rest, value, source=source)
            return
        walked.append(part)
        if match:
            seq = node.get(key)
            index = int(match.group("index"))
            if not isinstance(seq, list):
                raise ScenarioError(
                    "is not a list of tables, so it takes no [INDEX]", file=source, field=".".join(walked), value=path
                )
            if index >= len(seq):
                raise ScenarioError(
                    "index out of range", file=source, field=".".join(walked), allowed=f"0 to {len(seq) - 1}"
                )
            if last:
                seq[index] = copy.deepcopy(value)
                return
            node = seq[index]
            continue
        if last:
            node[key] = copy.deepcopy(value)
            return
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict | list):
            raise ScenarioError("is a value, not a table", file=source, field=".".join(walked))
        node = child


def describe(overrides: dict[str, Any]) -> str:
    """``path=value, ...`` for labels and reports."""
    return ", ".join(f"{k}={_show(v)}" for k, v in overrides.items())


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
