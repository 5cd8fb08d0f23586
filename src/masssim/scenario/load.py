"""Loading a scenario: the schema's checks, then the one resolution step that needs more than the schema.

:mod:`masssim.config.schema` is data and imports nothing above :mod:`masssim.config`. What it cannot check
alone is resolved here, once, when the scenario is loaded, so that a run never dies an hour in:

* files the scenario names (``inbound.core.calibration``, ``inbound.messages.path``), read before the schema
  (a calibration's values fill the core's unset fields; a relative path is relative to the scenario file);
* plug-ins: each arm's targeting policy, the inbound classifier and response policy, and their parameters;
* every cell of a ``[sweep]`` table, each of which must be a valid scenario.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from masssim.classify.registry import params_model as classifier_params_model
from masssim.classify.registry import resolve_classifier
from masssim.config.calibration import CalibrationProblem, read_calibration
from masssim.config.errors import ScenarioError, format_loc
from masssim.config.overrides import overridden_data
from masssim.config.schema import MAX_DEPTH, Scenario
from masssim.config.validation import too_deep, validate_schema
from masssim.model.message_files import load_labelled_messages
from masssim.model.messages import check_simulation_content
from masssim.policies.registry import validate_arm_params
from masssim.policies.response import resolve_response_policy, response_params_model


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file. Raises :class:`ScenarioError` on any problem."""
    path = Path(path)
    file = str(path)
    try:
        exists, is_dir = path.exists(), path.is_dir()
        raw_bytes = path.read_bytes() if exists and not is_dir else b""
    except OSError as exc:  # unreadable, or a name the system refuses (too long, a loop of links, ...)
        raise ScenarioError(f"cannot be read ({exc.strerror or exc})", file=file) from None
    except ValueError as exc:  # a path with a NUL byte
        raise ScenarioError(f"is not a usable path ({exc})", file=file) from None
    if not exists:
        raise ScenarioError("file not found", file=file, allowed="a path to an existing .toml file")
    if is_dir:
        raise ScenarioError("is a directory, not a scenario file", file=file)
    try:
        # utf-8-sig: editors on Windows start UTF-8 files with a byte-order mark, which TOML itself does not allow.
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScenarioError("is not UTF-8 text", file=file, allowed="a UTF-8 TOML file") from None
    return scenario_from_toml(text, file=file)


def scenario_from_toml(text: str, *, file: str | None = None) -> Scenario:
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ScenarioError(
            "the file is empty", file=file, field="name", allowed='a TOML table with at least name = "..."'
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"is not valid TOML: {exc}", file=file) from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ScenarioError(
            "is nested too deeply to read", file=file, allowed=f"arrays and tables nested at most {MAX_DEPTH} deep"
        ) from None
    except ValueError as exc:  # e.g. an integer longer than Python converts (4,300 digits)
        raise ScenarioError(f"is not valid TOML: {exc}", file=file) from None
    return scenario_from_dict(data, file=file)


def scenario_from_dict(data: Any, *, file: str | None = None) -> Scenario:
    """Validate a plain dict (as parsed from TOML) into a :class:`Scenario`, resolved and checked."""
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a table of fields", file=file, value=data)
    deep = too_deep(data)
    if deep is not None:
        raise ScenarioError(
            "nested too deeply",
            file=file,
            field=format_loc(deep[0][:MAX_DEPTH]),
            allowed=f"arrays and tables nested at most {MAX_DEPTH} deep",
        )
    base_dir = Path(file).parent if file and not file.startswith("<") else None
    scenario = validate_schema(_read_named_files(data, base_dir, file), file=file)
    _check_inbound_plugins(scenario, file)
    # Policy names and their parameters are checked here, once, so a run never starts with a bad arm.
    for index, arm in enumerate(scenario.arms):
        validate_arm_params(arm, field=f"arms[{index}]", file=file, scenario=scenario)
    if scenario.sweep:
        _check_sweep(scenario, file)
    return scenario


def apply_overrides(scenario: Scenario, overrides: dict[str, Any], *, source: str) -> Scenario:
    """A new scenario with each dotted path set to its value, validated like a file (errors name ``source``)."""
    return scenario_from_dict(overridden_data(scenario, overrides, source=source), file=source)


def _read_named_files(data: dict[str, Any], base_dir: Path | None, file: str | None) -> dict[str, Any]:
    """``data`` with the calibration file's values merged into ``inbound.core`` and ``inbound.messages.path``
    made absolute after its file was read and checked. Anything of the wrong shape is left to the schema."""
    inbound = data.get("inbound")
    if not isinstance(inbound, dict):
        return data
    core = inbound.get("core")
    if isinstance(core, dict) and isinstance(core.get("calibration"), str) and core["calibration"]:
        path = _relative_to(core["calibration"], base_dir)
        try:
            measured = read_calibration(path)
        except CalibrationProblem as exc:
            raise ScenarioError(
                str(exc), file=file, field="inbound.core.calibration", value=core["calibration"]
            ) from None
        # The measured values are now part of the scenario; the reference is dropped so that the resolved
        # scenario (a run's scenario.toml) stands on its own.
        inbound = {**inbound, "core": {**measured, **{k: v for k, v in core.items() if k != "calibration"}}}
    source = inbound.get("messages")
    if isinstance(source, dict) and isinstance(source.get("path"), str) and source["path"]:
        path = _relative_to(source["path"], base_dir)
        fmt = source.get("format", "auto")
        try:
            check_simulation_content(load_labelled_messages(path, format=fmt if isinstance(fmt, str) else "auto"))
        except ValueError as exc:  # ScenarioError included: its text becomes the reason
            raise ScenarioError(str(exc), file=file, field="inbound.messages.path", value=str(path)) from None
        inbound = {**inbound, "messages": {**source, "path": str(path)}}
    return {**data, "inbound": inbound}


def _relative_to(name: str, base_dir: Path | None) -> Path:
    path = Path(name)
    return Path(base_dir) / path if base_dir is not None and not path.is_absolute() else path


def _check_inbound_plugins(scenario: Scenario, file: str | None) -> None:
    """The classifier and the response policy exist, and their parameters are theirs and valid."""
    inbound = scenario.inbound
    if inbound is None:
        return
    for kind, name_field, params_field, resolve, model_of in (
        ("classifier", "classifier", "classifier_params", resolve_classifier, classifier_params_model),
        ("response policy", "response_policy", "response_params", resolve_response_policy, response_params_model),
    ):
        name = getattr(inbound, name_field)
        try:
            factory = resolve(name)
        except LookupError as exc:
            raise ScenarioError(str(exc), file=file, field=f"inbound.{name_field}", value=name) from None
        model = model_of(factory)
        try:
            parsed = model.model_validate(getattr(inbound, params_field))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            key = format_loc(tuple(err["loc"]))
            field = f"inbound.{params_field}.{key}" if key else f"inbound.{params_field}"
            if err["type"] == "extra_forbidden":
                known = list(model.model_fields)
                hint = difflib.get_close_matches(str(err["loc"][-1]), known, n=1, cutoff=0.6)
                reason = f"unknown parameter of {kind} {name!r}"
                reason += f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(known) or 'none'})"
                raise ScenarioError(reason, file=file, field=field, value=err.get("input")) from None
            raise ScenarioError(
                f"{kind} {name!r}: {err['msg']}", file=file, field=field, value=err.get("input")
            ) from None
    for key in ("pool", "bot_pool", "escalate_to"):  # the built-in policies route by pool index
        index = getattr(parsed, key, None)
        if isinstance(index, int) and index >= len(inbound.pools):
            raise ScenarioError(
                f"there are {len(inbound.pools)} pools (indices from 0)",
                file=file,
                field=f"inbound.response_params.{key}",
                value=index,
            )


def _check_sweep(scenario: Scenario, file: str | None) -> None:
    """Every value of every swept path must give a valid scenario: checked now, not an hour into a sweep."""
    for path, values in (scenario.sweep or {}).items():
        if not values:
            raise ScenarioError("a swept parameter needs at least one value", file=file, field=f"sweep.{path}")
        for value in values:
            try:
                apply_overrides(scenario, {path: value}, source=file or "<scenario>")
            except ScenarioError as exc:
                raise ScenarioError(
                    f"this value does not give a valid scenario ({exc.reason}"
                    + (f"; allowed: {exc.allowed}" if exc.allowed else "")
                    + ")",
                    file=file,
                    field=f"sweep.{path}",
                    value=value,
                ) from None
