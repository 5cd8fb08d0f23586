"""Validating a scenario against the schema, and pydantic's errors turned into one line a user can act on.

:func:`validate_schema` makes the schema's own checks; the message names the file, the field path, the value and
what is allowed, worded from the field's type and bounds (``docs/model.md``, "Bad input").
"""

from __future__ import annotations

import difflib
import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from masssim.config.errors import ScenarioError, format_loc
from masssim.config.schema import _FIELD_PROBLEMS, _PATTERN_WORDS, MAX_DEPTH, Scenario, _FieldProblem


def too_deep(data: Any, limit: int = MAX_DEPTH) -> tuple[tuple[Any, ...], Any] | None:
    """The location and value of the first table or array nested deeper than ``limit``, else None.

    Iterative on purpose: the point is to refuse input before anything recursive touches it.
    """
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        loc, node = stack.pop()
        if isinstance(node, dict | list):
            if len(loc) > limit:
                return loc, node
            items = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend(((*loc, key), child) for key, child in items)
    return None


def validate_schema(data: dict[str, Any], *, file: str | None = None) -> Scenario:
    """The schema's checks alone: types, ranges, defaults and the checks between fields of the schema.

    What needs more than the schema (plug-ins, message and calibration files, the sweep's cells) is
    resolved one layer up, in :mod:`masssim.scenario.load`.
    """
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _translate(exc, file) from None
    except _FieldProblem as exc:  # pragma: no cover - pydantic wraps these; kept for safety
        raise ScenarioError(str(exc), file=file, field=exc.field, value=exc.value) from None


_format_loc = format_loc


def _translate(exc: ValidationError, file: str | None) -> ScenarioError:
    errors = exc.errors(include_url=False)
    if not errors:  # pragma: no cover - pydantic never raises an empty ValidationError
        return ScenarioError(str(exc), file=file)
    problems: list[tuple[str | None, str]] = []
    first: dict[str, Any] | None = None
    for err in errors:
        loc = _clean_loc(tuple(err["loc"]), extra=err["type"] == "extra_forbidden")
        ctx_error = err.get("ctx", {}).get("error")
        problems.append((_field_of(loc, ctx_error), err["msg"]))
        if first is None:
            first = {**err, "loc": loc}
    if first is None:  # pragma: no cover - checked above
        return ScenarioError(str(exc), file=file)
    loc = first["loc"]
    ctx_error = first.get("ctx", {}).get("error")
    field = _field_of(loc, ctx_error)
    if isinstance(ctx_error, _FIELD_PROBLEMS):
        return ScenarioError(str(ctx_error), file=file, field=field, value=ctx_error.value, problems=problems)
    kind = first["type"]
    if kind == "extra_forbidden" and loc:
        parent = loc[:-1]
        known = _known_fields(parent)
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        reason = "unknown field" + (f"; did you mean '{hint[0]}'?" if hint else "")
        allowed = ", ".join(sorted(known)) if known else None
        return ScenarioError(reason, file=file, field=field, allowed=allowed, problems=problems)
    if kind == "missing":
        return ScenarioError("required field is missing", file=file, field=field, problems=problems)
    msg = first["msg"]
    msg = msg[0].lower() + msg[1:] if msg else msg
    return ScenarioError(
        "value not allowed",
        file=file,
        field=field,
        value=first.get("input"),
        allowed=_describe_allowed(loc, msg),
        problems=problems,
    )


def _field_of(loc: tuple[Any, ...], ctx_error: Any) -> str | None:
    """The field path of an error; a model validator's own field is a path already written out."""
    path = _format_loc(loc)
    if isinstance(ctx_error, _FIELD_PROBLEMS):
        path = ".".join(p for p in (path, str(ctx_error.field)) if p)
    return path or None


# Type tags pydantic can insert into an error location (e.g. 'function-after[_check(), InboundConfig]').
_TAG = re.compile(r"^(function-(after|before|wrap|plain)|[a-z][a-z-]*)\[.*\]$|^(int|float|str|bool)$", re.DOTALL)


def _clean_loc(loc: tuple[Any, ...], *, extra: bool = False) -> tuple[Any, ...]:
    """``loc`` without pydantic's type tags; a user's own key (a dict key, an unknown field) is always kept.

    The location is walked down the schema: a part is dropped only where a tag can stand (inside a model,
    not naming one of its fields) and it looks like one, and never when it is the unknown key itself.
    """
    out: list[Any] = []
    current: Any = Scenario
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        model = _unwrap(current)
        if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(part, str):
            field = model.model_fields.get(part)
            if field is not None:
                out.append(part)
                current = field.annotation
                continue
            if not (last and extra) and _TAG.match(part):
                continue
            out.append(part)
            current = None
            continue
        out.append(part)
        origin, args = get_origin(model), get_args(model)
        if origin is list and args and isinstance(part, int):
            current = args[0]
        elif origin is dict and len(args) == 2 and isinstance(part, str):
            current = args[1]
        else:
            current = None
    return tuple(out)


def _model_at(loc: tuple[Any, ...]) -> Any:
    """The annotation (model class or type) found by walking ``loc`` down from :class:`Scenario`."""
    current: Any = Scenario
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return None
            current = field.annotation
        else:
            origin = get_origin(current)
            args = get_args(current)
            if origin is list and args:
                current = args[0]
            elif origin is dict and len(args) == 2:
                current = args[1]
            else:
                return None
    return _unwrap(current)


def _unwrap(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _known_fields(loc: tuple[Any, ...]) -> list[str]:
    model = _model_at(loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _describe_allowed(loc: tuple[Any, ...], pydantic_msg: str) -> str:
    """Plain-words description of what a field accepts: its type, range and meaning."""
    parent = _model_at(loc[:-1]) if loc else None
    name = loc[-1] if loc else None
    if not (isinstance(parent, type) and issubclass(parent, BaseModel) and isinstance(name, str)):
        return pydantic_msg
    field = parent.model_fields.get(name)
    if field is None:
        return pydantic_msg
    kind = _unwrap(field.annotation)
    bounds: dict[str, Any] = dict.fromkeys(("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"))
    for meta in field.metadata:
        for key in bounds:
            if getattr(meta, key, None) is not None:
                bounds[key] = getattr(meta, key)
    words = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
    origin = get_origin(kind)
    if origin is Literal:
        text = "one of " + ", ".join(repr(a) for a in get_args(kind))
    elif origin is list:
        text = "a list" + _length_words(bounds, "item")
    elif origin is dict:
        text = "a table" + _length_words(bounds, "entry")
    elif kind is str:
        text = "text" + _length_words(bounds, "character")
        if bounds["pattern"] is not None:
            text += " from " + _PATTERN_WORDS.get(bounds["pattern"], f"the pattern {bounds['pattern']}")
    else:
        text = words.get(kind, getattr(kind, "__name__", str(kind)))
    lo = bounds["ge"] if bounds["ge"] is not None else bounds["gt"]
    hi = bounds["le"] if bounds["le"] is not None else bounds["lt"]
    if lo is not None or hi is not None:
        left = "[" if bounds["ge"] is not None else "("
        right = "]" if bounds["le"] is not None else ")"
        text += f" in {left}{_num(lo)}, {_num(hi)}{right}"
    if field.description:
        text += f" ({field.description})"
    return text


def _length_words(bounds: dict[str, Any], unit: str) -> str:
    lo, hi = bounds["min_length"], bounds["max_length"]
    plural = unit[:-1] + "ies" if unit.endswith("y") else unit + "s"
    if lo is not None and hi is not None:
        return f" of {lo} to {hi} {plural}"
    if lo is not None:
        return f" of at least {lo} {unit if lo == 1 else plural}"
    if hi is not None:
        return f" of at most {hi} {plural}"
    return ""


def _num(value: Any) -> str:
    if value is None:
        return "..."
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def field_names() -> list[str]:
    """Every dotted field path of the schema, for documentation and tests."""
    out: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            path = f"{prefix}{name}"
            inner = _unwrap(field.annotation)
            if get_origin(inner) is list:
                inner = _unwrap(get_args(inner)[0])
                path += "[]"
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                walk(inner, path + ".")
            else:
                out.append(path)

    walk(Scenario, "")
    return out
