"""One mechanism for every kind of plug-in (targeting policies, classifiers, response policies).

A plug-in is a class or factory registered under a name, or named as ``package.module:attr`` for a user's
own (imported, never eval'd). It may carry a ``Params`` pydantic model, a subclass of the kind's base
parameter model, describing its parameters.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

# The verbs each kind of plug-in must offer (the methods of its Protocol). A user's class is checked when it is
# resolved, i.e. when the scenario is validated, so the message names what is missing before anything runs.
CONTRACTS: dict[str, tuple[str, ...]] = {
    "targeting policy": ("plan", "observe"),
    "classifier": ("classify",),
    "response policy": ("route", "schedule_for"),
}


def _takes_no_arguments(cls: type) -> bool:
    try:
        return not inspect.signature(cls).parameters
    except (TypeError, ValueError):  # some built-in types have no signature
        return False


class ContractError(LookupError, TypeError):
    """A user's plug-in lacks a verb of its kind: found when the name is resolved (a LookupError, which
    scenario validation reports with the field) and the same failure as building something that is not a
    plug-in (a TypeError)."""


@functools.cache  # one subclass per user class: resolving the name twice gives the same factory
def _given_arguments(cls: type) -> type:
    """A subclass of ``cls`` built like every plug-in (``factory(params[, world])``) that keeps ``params``
    and ``world`` as attributes: the minimal plug-in, a class with only its verbs, then works as written."""

    def __init__(self: Any, params: Any = None, world: Any = None) -> None:
        # The user's own no-argument constructor, if any (cls is a plain class here, so calling it is sound).
        cls.__init__(self)  # type: ignore[misc]
        self.params = params
        if world is not None:
            self.world = world

    return type(cls.__name__, (cls,), {"__init__": __init__, "__module__": cls.__module__, "__doc__": cls.__doc__})


class Registry:
    """Plug-ins of one kind. ``load_builtins`` imports the modules whose decorators register the built-ins."""

    def __init__(self, kind: str, params_base: type[BaseModel], load_builtins: Callable[[], None]) -> None:
        self.kind = kind
        self.params_base = params_base
        self._load_builtins = load_builtins
        self._factories: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        """Class decorator: make a plug-in available under ``name``."""

        def decorate(factory: Any) -> Any:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            factory.registered_name = name
            return factory

        return decorate

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._factories)

    def resolve(self, name: str) -> Any:
        """The factory for a registered name or ``package.module:attr``; LookupError with a hint otherwise."""
        self._load_builtins()
        if name in self._factories:
            return self._factories[name]
        if ":" in name:
            module_name, _, attr = name.partition(":")
            if not module_name or not attr:
                raise LookupError(f"{name!r} is not of the form package.module:attr")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise LookupError(f"cannot import module {module_name!r} ({exc})") from None
            try:
                found = getattr(module, attr)
            except AttributeError:
                raise LookupError(f"module {module_name!r} has no attribute {attr!r}") from None
            return self._checked(name, found)
        hint = difflib.get_close_matches(name, list(self._factories), n=1, cutoff=0.5)
        did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
        known = ", ".join(sorted(self._factories))
        raise LookupError(f"unknown {self.kind} {name!r}{did_you_mean} (known: {known}, or package.module:attr)")

    def _checked(self, name: str, found: Any) -> Any:
        """A user's class: its verbs are there (LookupError naming the missing ones), and a class whose
        constructor takes nothing is given the arguments every plug-in is built with."""
        if not isinstance(found, type):
            return found  # a factory function: what it builds is checked when it is built
        verbs = CONTRACTS.get(self.kind, ())
        missing = [verb for verb in verbs if not callable(getattr(found, verb, None))]
        if missing:
            raise ContractError(
                f"{name!r} did not build a {self.kind}: a {self.kind} is a class with {', '.join(verbs)}, "
                f"and it has no {' or '.join(missing)} method"
            )
        return _given_arguments(found) if _takes_no_arguments(found) else found

    def params_model(self, factory: Any) -> type[BaseModel]:
        model = getattr(factory, "Params", None)
        return model if isinstance(model, type) and issubclass(model, self.params_base) else self.params_base

    def parse_params(self, name: str, factory: Any, params: Mapping[str, Any] | BaseModel | None) -> BaseModel:
        """Validate ``params`` against the factory's model: ValueError naming the parameter (with a hint for
        an unknown one), TypeError for an instance of another model."""
        model = self.params_model(factory)
        if isinstance(params, BaseModel):
            if not isinstance(params, model):
                raise TypeError(f"{self.kind} {name!r} takes {model.__name__}, not {type(params).__name__}")
            return params
        try:
            return model.model_validate(dict(params or {}))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in err["loc"]) or "(params)"
            if err["type"] == "extra_forbidden":
                known = list(model.model_fields)
                hint = difflib.get_close_matches(str(err["loc"][-1]), known, n=1, cutoff=0.6)
                reason = f"unknown parameter {loc!r} of {self.kind} {name!r}"
                reason += f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(known) or 'none'})"
                raise ValueError(reason) from None
            raise ValueError(
                f"{self.kind} {name!r} parameter {loc!r}: {err['msg']} (got {err.get('input')!r})"
            ) from None

    def build(self, name: str, params: Mapping[str, Any] | BaseModel | None, protocol: type, needs: str) -> Any:
        """Resolve, validate the parameters, build with ``factory(params)`` and check the result is a
        ``protocol`` (TypeError naming what it ``needs`` otherwise)."""
        factory = self.resolve(name)
        built = factory(self.parse_params(name, factory, params))
        if not isinstance(built, protocol):
            raise TypeError(f"{name!r} did not build a {self.kind} ({needs})")
        return built
