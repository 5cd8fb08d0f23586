"""Name registry of classifiers, plus ``package.module:attr`` for a user's own (imported, never eval'd).

A classifier is a class (or factory) called as ``factory(params)``; it may carry a ``Params`` pydantic
model (subclass of :class:`ClassifierParams`) describing its parameters. :func:`build_classifier`
resolves the name, validates the parameters and builds the classifier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from masssim.classify.base import Classifier, ClassifierParams
from masssim.config.plugins import Registry

_REGISTRY = Registry("classifier", ClassifierParams, methods=("classify",), called_as="cls(params)")


def register_classifier(name: str) -> Callable[[Any], Any]:
    """Class decorator: make a classifier available under ``name``."""
    return _REGISTRY.register(name)


def classifier_names() -> list[str]:
    return _REGISTRY.names()


def resolve_classifier(name: str) -> Any:
    """The factory for a classifier name or ``package.module:attr``; raises LookupError with a hint."""
    return _REGISTRY.resolve(name)


def params_model(factory: Any) -> type[ClassifierParams]:
    model: type[ClassifierParams] = _REGISTRY.params_model(factory)  # type: ignore[assignment]
    return model


def build_classifier(name: str, params: Mapping[str, Any] | ClassifierParams | None = None) -> Classifier:
    """Resolve ``name``, validate ``params`` against its model and build the classifier.

    Raises LookupError for an unknown name, ValueError naming the parameter for bad parameters, and
    TypeError when the result does not have a ``classify`` method.
    """
    built: Classifier = _REGISTRY.build(name, params, Classifier, "no classify method")
    return built
