"""One mechanism for every kind of plug-in (targeting policies, classifiers, response policies).

A plug-in is a class or factory registered under a name, or named as ``package.module:attr`` for a user's
own (imported, never eval'd). It may carry a ``Params`` pydantic model, a subclass of the kind's base
parameter model, describing its parameters.

A ``package.module:attr`` reference is code: resolving it imports the module, which runs whatever the
module runs at import time. What it names is checked before anything calls it: a class with the methods of
the kind's protocol, or a Python function annotated to return such a class. Anything else (``os:system``, a
module, a constant) is refused with :class:`WrongKind`, so a typo can never call an arbitrary function.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from masssim.config.errors import format_loc


class WrongKind(LookupError):
    """A ``module:attr`` that imports fine but names something that is not a plug-in of the kind asked for."""

    def __init__(self, name: str, what: str, kind: str, must_be: str) -> None:
        self.what = what
        self.must_be = must_be
        super().__init__(f"{name!r} is {what}, not a {kind}; a {kind} plug-in must be {must_be}")


def _describe(obj: Any) -> str:
    """What ``obj`` is, in words, for an error message."""
    if inspect.ismodule(obj):
        return "a module"
    if inspect.isclass(obj):
        return f"the class {obj.__qualname__}"
    if inspect.isbuiltin(obj):
        return "a built-in function"
    if inspect.isfunction(obj):
        return f"the function {obj.__qualname__}"
    return f"a value of type {type(obj).__name__}"


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
    """Plug-ins of one kind. The built-ins register themselves when their package is imported (its
    ``__init__`` imports the modules whose decorators register them), so a registry imports no plug-in.

    ``methods`` are the protocol's methods a plug-in class must have; ``called_as`` says how masssim builds
    it (for error messages).
    """

    def __init__(
        self,
        kind: str,
        params_base: type[BaseModel],
        *,
        methods: tuple[str, ...] = (),
        called_as: str = "factory(params)",
    ) -> None:
        self.kind = kind
        self.params_base = params_base
        self._factories: dict[str, Any] = {}
        self.methods = methods
        self.called_as = called_as

    @property
    def must_be(self) -> str:
        """What a ``module:attr`` plug-in of this kind must be, in words."""
        names = " and ".join(f"{m}()" for m in self.methods)
        methods = f"a {names} method" if len(self.methods) == 1 else f"{names} methods"
        return f"a class with {methods} (or a function annotated to return one), built as {self.called_as}"

    def _has_methods(self, cls: Any) -> bool:
        return inspect.isclass(cls) and all(callable(getattr(cls, m, None)) for m in self.methods)

    def check_kind(self, name: str, obj: Any) -> Any:
        """``obj`` if it can be a plug-in of this kind (checked without calling it); :class:`WrongKind` if not."""
        if inspect.isclass(obj):
            if getattr(obj, "_is_protocol", False) or inspect.isabstract(obj):
                # the protocol itself (or an abstract base) names the methods but cannot be built
                raise WrongKind(name, f"{_describe(obj)}, a protocol or abstract class", self.kind, self.must_be)
            if self._has_methods(obj):
                return obj
            missing = [m for m in self.methods if not callable(getattr(obj, m, None))]
            raise WrongKind(
                name, f"{_describe(obj)} without {' or '.join(f'{m}()' for m in missing)}", self.kind, self.must_be
            )
        if inspect.isfunction(obj):
            try:
                returns = typing.get_type_hints(obj).get("return")
            except Exception:  # an annotation that cannot be resolved says nothing about the kind
                returns = None
            if self._has_methods(returns):
                return obj
            raise WrongKind(name, f"{_describe(obj)}, not annotated to return such a class", self.kind, self.must_be)
        raise WrongKind(name, _describe(obj), self.kind, self.must_be)

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
        return sorted(self._factories)

    def resolve(self, name: str) -> Any:
        """The factory for a registered name or ``package.module:attr``; LookupError with a hint otherwise."""
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
            except Exception as exc:  # the user's module failed while being imported: its error, one line
                raise LookupError(f"importing module {module_name!r} failed ({type(exc).__name__}: {exc})") from None
            try:
                found = getattr(module, attr)
            except AttributeError:
                raise LookupError(f"module {module_name!r} has no attribute {attr!r}") from None
            # The kind is checked first (what it is, which verbs are missing); then a class whose
            # constructor takes nothing is given the arguments every plug-in is built with.
            return self._checked(name, self.check_kind(name, found))
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
            loc = format_loc(tuple(err["loc"])) or "(params)"
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
