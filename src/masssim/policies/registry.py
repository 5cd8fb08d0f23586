"""Name registry of targeting policies, plus ``module:attr`` for a user's own (imported, never eval'd).

A policy is a class (or factory) called as ``factory(params, world)``; it may carry a ``Params`` pydantic
model (subclass of :class:`PolicyParams`) describing its parameters, which are validated when the
scenario is loaded.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from masssim.config.errors import ScenarioError, format_loc
from masssim.config.plugins import Registry, WrongKind
from masssim.policies.base import PolicyParams

if TYPE_CHECKING:
    from masssim.config.schema import Arm, Scenario


_REGISTRY = Registry("targeting policy", PolicyParams, methods=("plan", "observe"), called_as="cls(params, world)")


def register_targeting(name: str) -> Callable[[Any], Any]:
    """Class decorator: make a targeting policy available under ``name`` in scenario files."""
    return _REGISTRY.register(name)


def targeting_names() -> list[str]:
    return _REGISTRY.names()


def resolve_targeting(name: str) -> Any:
    """The factory for a policy name or ``package.module:attr``; raises LookupError with a hint."""
    return _REGISTRY.resolve(name)


def params_model(factory: Any) -> type[PolicyParams]:
    model: type[PolicyParams] = _REGISTRY.params_model(factory)  # type: ignore[assignment]
    return model


def validate_arm_params(arm: Arm, *, field: str, file: str | None, scenario: Scenario) -> PolicyParams:
    """Check an arm's policy exists and its parameters are valid; return the parsed parameters."""
    try:
        factory = resolve_targeting(arm.policy)
    except WrongKind as exc:
        raise ScenarioError(
            f"{exc.what} is not a targeting policy",
            file=file,
            field=f"{field}.policy",
            value=arm.policy,
            allowed=exc.must_be,
        ) from None
    except LookupError as exc:
        allowed = ", ".join(targeting_names()) + ", or package.module:attr"
        raise ScenarioError(str(exc), file=file, field=f"{field}.policy", value=arm.policy, allowed=allowed) from None
    model = params_model(factory)
    try:
        params = model.model_validate(arm.params)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = format_loc(tuple(err["loc"]))
        path = f"{field}.{loc}" if loc else field
        if err["type"] == "extra_forbidden":
            known = list(model.model_fields)
            hint = difflib.get_close_matches(str(err["loc"][-1]), known, n=1, cutoff=0.6)
            reason = f"unknown parameter of policy {arm.policy!r}" + (f"; did you mean '{hint[0]}'?" if hint else "")
            allowed = ", ".join(["name", "policy", *known])
            raise ScenarioError(reason, file=file, field=path, allowed=allowed) from None
        allowed = _allowed_text(model, err)
        raise ScenarioError(
            "value not allowed", file=file, field=path, value=err.get("input"), allowed=allowed
        ) from None
    check = getattr(params, "check_against", None)
    if callable(check):
        problem = check(scenario)
        if problem:
            key, message = problem
            raise ScenarioError(message, file=file, field=f"{field}.{key}", value=getattr(params, key, None))
    return params


def _allowed_text(model: type[PolicyParams], err: Any) -> str:
    msg = str(err["msg"])
    name = err["loc"][-1] if err["loc"] else None
    field = model.model_fields.get(str(name)) if name is not None else None
    if field is not None and field.description:
        return f"{msg[0].lower()}{msg[1:]} ({field.description})"
    return msg[0].lower() + msg[1:]
