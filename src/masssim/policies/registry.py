"""Name registry of targeting policies, plus ``module:attr`` for a user's own (imported, never eval'd).

A policy is a class (or factory) called as ``factory(params, world)``; it may carry a ``Params`` pydantic
model (subclass of :class:`PolicyParams`) describing its parameters, which are validated when the
scenario is loaded.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from masssim.errors import ScenarioError
from masssim.policies.base import PolicyParams

if TYPE_CHECKING:
    from masssim.scenario import Arm, Scenario

_TARGETING: dict[str, Any] = {}


def register_targeting(name: str) -> Callable[[Any], Any]:
    """Class decorator: make a targeting policy available under ``name`` in scenario files."""

    def decorate(factory: Any) -> Any:
        if name in _TARGETING:
            raise ValueError(f"targeting policy {name!r} is registered twice")
        _TARGETING[name] = factory
        factory.registered_name = name
        return factory

    return decorate


def targeting_names() -> list[str]:
    _load_builtins()
    return sorted(_TARGETING)


def _load_builtins() -> None:
    # Importing the modules runs their @register_targeting decorators.
    import masssim.policies.learning
    import masssim.policies.targeting  # noqa: F401


def resolve_targeting(name: str) -> Any:
    """The factory for a policy name or ``package.module:attr``; raises LookupError with a hint."""
    _load_builtins()
    if name in _TARGETING:
        return _TARGETING[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise LookupError(f"cannot import module {module_name!r} ({exc})") from None
        try:
            return getattr(module, attr)
        except AttributeError:
            raise LookupError(f"module {module_name!r} has no attribute {attr!r}") from None
    hint = difflib.get_close_matches(name, list(_TARGETING), n=1, cutoff=0.5)
    did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
    raise LookupError(f"unknown targeting policy{did_you_mean}")


def params_model(factory: Any) -> type[PolicyParams]:
    model = getattr(factory, "Params", None)
    return model if isinstance(model, type) and issubclass(model, PolicyParams) else PolicyParams


def validate_arm_params(arm: Arm, *, field: str, file: str | None, scenario: Scenario) -> PolicyParams:
    """Check an arm's policy exists and its parameters are valid; return the parsed parameters."""
    try:
        factory = resolve_targeting(arm.policy)
    except LookupError as exc:
        allowed = ", ".join(targeting_names()) + ", or package.module:attr"
        raise ScenarioError(str(exc), file=file, field=f"{field}.policy", value=arm.policy, allowed=allowed) from None
    model = params_model(factory)
    try:
        params = model.model_validate(arm.params)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
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
