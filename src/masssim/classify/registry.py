"""Name registry of classifiers, plus ``package.module:attr`` for a user's own (imported, never eval'd).

A classifier is a class (or factory) called as ``factory(params)``; it may carry a ``Params`` pydantic
model (subclass of :class:`ClassifierParams`) describing its parameters. :func:`build_classifier`
resolves the name, validates the parameters and builds the classifier.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from masssim.classify.base import Classifier, ClassifierParams

_CLASSIFIERS: dict[str, Any] = {}


def register_classifier(name: str) -> Callable[[Any], Any]:
    """Class decorator: make a classifier available under ``name``."""

    def decorate(factory: Any) -> Any:
        if name in _CLASSIFIERS:
            raise ValueError(f"classifier {name!r} is registered twice")
        _CLASSIFIERS[name] = factory
        factory.registered_name = name
        return factory

    return decorate


def _load_builtins() -> None:
    # Importing the modules runs their @register_classifier decorators.
    import masssim.classify.hashed
    import masssim.classify.keyword  # noqa: F401


def classifier_names() -> list[str]:
    _load_builtins()
    return sorted(_CLASSIFIERS)


def resolve_classifier(name: str) -> Any:
    """The factory for a classifier name or ``package.module:attr``; raises LookupError with a hint."""
    _load_builtins()
    if name in _CLASSIFIERS:
        return _CLASSIFIERS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        if not module_name or not attr:
            raise LookupError(f"{name!r} is not of the form package.module:attr")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise LookupError(f"cannot import module {module_name!r} ({exc})") from None
        try:
            return getattr(module, attr)
        except AttributeError:
            raise LookupError(f"module {module_name!r} has no attribute {attr!r}") from None
    hint = difflib.get_close_matches(name, list(_CLASSIFIERS), n=1, cutoff=0.5)
    did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
    known = ", ".join(sorted(_CLASSIFIERS))
    raise LookupError(f"unknown classifier {name!r}{did_you_mean} (known: {known}, or package.module:attr)")


def params_model(factory: Any) -> type[ClassifierParams]:
    model = getattr(factory, "Params", None)
    return model if isinstance(model, type) and issubclass(model, ClassifierParams) else ClassifierParams


def build_classifier(name: str, params: Mapping[str, Any] | ClassifierParams | None = None) -> Classifier:
    """Resolve ``name``, validate ``params`` against its model and build the classifier.

    Raises LookupError for an unknown name, ValueError naming the parameter for bad parameters, and
    TypeError when the result does not have a ``classify`` method.
    """
    factory = resolve_classifier(name)
    model = params_model(factory)
    if isinstance(params, ClassifierParams):
        if not isinstance(params, model):
            raise TypeError(f"classifier {name!r} takes {model.__name__}, not {type(params).__name__}")
        parsed = params
    else:
        try:
            parsed = model.model_validate(dict(params or {}))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in err["loc"]) or "(params)"
            if err["type"] == "extra_forbidden":
                known = list(model.model_fields)
                hint = difflib.get_close_matches(str(err["loc"][-1]), known, n=1, cutoff=0.6)
                reason = f"unknown parameter {loc!r} of classifier {name!r}"
                reason += f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(known) or 'none'})"
                raise ValueError(reason) from None
            raise ValueError(
                f"classifier {name!r} parameter {loc!r}: {err['msg']} (got {err.get('input')!r})"
            ) from None
    built = factory(parsed)
    if not isinstance(built, Classifier):
        raise TypeError(f"{name!r} did not build a classifier (no classify method)")
    return built
