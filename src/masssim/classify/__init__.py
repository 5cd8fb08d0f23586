"""The classification core: plug-in classifiers that label inbound mentions, and their quality.

Built in: ``keyword`` (the naive baseline) and ``hashed`` (hashed n-grams + a linear model). Find a
classifier by name or ``package.module:attr`` with :func:`resolve_classifier` / :func:`build_classifier`.
"""

# Importing the built-ins runs their @register_classifier decorators: the registry itself imports no plug-in.
from masssim.classify import hashed, keyword  # noqa: F401
from masssim.classify.base import (
    INTENT_NAMES,
    INTENT_PRIORITY,
    N_INTENTS,
    Classifier,
    ClassifierBase,
    ClassifierParams,
    Intent,
    Labels,
    TrainableClassifier,
    TrainingSet,
    priority_from,
)
from masssim.classify.quality import (
    BinaryScores,
    MulticlassScores,
    QualityReport,
    binary_scores,
    confusion_matrix,
    evaluate,
    multiclass_scores,
)
from masssim.classify.registry import (
    build_classifier,
    classifier_names,
    params_model,
    register_classifier,
    resolve_classifier,
)

__all__ = [
    "INTENT_NAMES",
    "INTENT_PRIORITY",
    "N_INTENTS",
    "BinaryScores",
    "Classifier",
    "ClassifierBase",
    "ClassifierParams",
    "Intent",
    "Labels",
    "MulticlassScores",
    "QualityReport",
    "TrainableClassifier",
    "TrainingSet",
    "binary_scores",
    "build_classifier",
    "classifier_names",
    "confusion_matrix",
    "evaluate",
    "multiclass_scores",
    "params_model",
    "priority_from",
    "register_classifier",
    "resolve_classifier",
]
