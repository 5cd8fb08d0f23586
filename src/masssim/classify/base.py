"""Contracts of the classification core: what a classifier is given and what it returns.

A classifier has one main verb, :meth:`Classifier.classify`, which turns a batch of message texts into
:class:`Labels` — parallel arrays of the probability that each message concerns the brand, its intent and
a priority for the response queue. A classifier that learns also has ``fit(texts, relevant, intent)``;
:class:`TrainingSet` bundles such a labelled corpus.

Intent codes are small integers (:class:`Intent`), shared with the synthetic mention generator so that
predictions and ground truth can be compared array to array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict


class Intent(IntEnum):
    """What the author of a message wants. Stored as ``int8`` in label arrays."""

    COMPLAINT = 0
    SUPPORT = 1
    PURCHASE = 2
    QUESTION = 3
    PRAISE = 4
    OTHER = 5


INTENT_NAMES: tuple[str, ...] = tuple(i.name.lower() for i in Intent)
N_INTENTS = len(INTENT_NAMES)

# Default priority weight of each intent (indexed by intent code): an unanswered complaint costs most.
INTENT_PRIORITY = np.array([1.0, 0.8, 0.7, 0.5, 0.2, 0.1], dtype=np.float32)


def priority_from(relevant_prob: np.ndarray, intent: np.ndarray, weights: np.ndarray = INTENT_PRIORITY) -> np.ndarray:
    """Priority in [0, 1]: probability of relevance times the weight of the intent (float32)."""
    return (np.asarray(relevant_prob, np.float32) * weights[np.asarray(intent, np.intp)]).astype(np.float32)


@dataclass
class Labels:
    """A classifier's output for a batch of n messages (struct of arrays)."""

    relevant_prob: np.ndarray  # float32 [n]: probability the message concerns the brand
    intent: np.ndarray  # int8 [n]: an :class:`Intent` code
    priority: np.ndarray  # float32 [n]: higher is answered first

    def __post_init__(self) -> None:
        self.relevant_prob = np.asarray(self.relevant_prob, dtype=np.float32)
        self.intent = np.asarray(self.intent, dtype=np.int8)
        self.priority = np.asarray(self.priority, dtype=np.float32)
        n = self.relevant_prob.shape
        if self.relevant_prob.ndim != 1 or self.intent.shape != n or self.priority.shape != n:
            raise ValueError("Labels arrays must be one-dimensional and of the same length")

    def __len__(self) -> int:
        return int(self.relevant_prob.shape[0])

    def relevant(self, threshold: float = 0.5) -> np.ndarray:
        """Bool mask: predicted relevant at ``threshold``."""
        return self.relevant_prob >= np.float32(threshold)

    @classmethod
    def empty(cls) -> Labels:
        return cls(np.empty(0, np.float32), np.empty(0, np.int8), np.empty(0, np.float32))


@dataclass
class TrainingSet:
    """A labelled corpus: texts with ground-truth relevance and intent (parallel)."""

    texts: Sequence[str]
    relevant: np.ndarray  # bool [n]
    intent: np.ndarray  # int8 [n], :class:`Intent` codes

    def __post_init__(self) -> None:
        self.texts = check_texts(self.texts)
        self.relevant, self.intent = check_targets(len(self.texts), self.relevant, self.intent)

    def __len__(self) -> int:
        return len(self.texts)


@runtime_checkable
class Classifier(Protocol):
    """Labels a batch of messages. Must accept an empty batch and return empty :class:`Labels`."""

    def classify(self, texts: Sequence[str]) -> Labels: ...


@runtime_checkable
class TrainableClassifier(Classifier, Protocol):
    """A classifier that learns from a labelled corpus (separate from the stream it will be tested on)."""

    def fit(self, texts: Sequence[str], relevant: np.ndarray, intent: np.ndarray) -> None: ...


class ClassifierParams(BaseModel):
    """Base of every classifier's parameter model: strict, unknown keys rejected."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class ClassifierBase:
    """Convenience base for built-in classifiers: stores the validated parameters."""

    Params: ClassVar[type[ClassifierParams]] = ClassifierParams

    def __init__(self, params: ClassifierParams | None = None) -> None:
        self.params = params if params is not None else self.Params()

    def classify(self, texts: Sequence[str]) -> Labels:  # pragma: no cover - abstract
        raise NotImplementedError


def join_texts(texts: Sequence[str], sep: str) -> str:
    """``sep.join(texts)`` with a clear error for a bare string or a non-string item.

    Cheap on the good path: items are only inspected one by one when joining fails.
    """
    if isinstance(texts, str | bytes):
        raise TypeError("texts must be a sequence of strings, not a single string")
    try:
        return sep.join(texts)
    except TypeError:
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, not str") from None
        raise


def check_texts(texts: Sequence[str]) -> Sequence[str]:
    """Raise TypeError unless ``texts`` is a sequence of strings; returns it unchanged."""
    join_texts(texts, "")
    return texts


def check_targets(n: int, relevant: np.ndarray, intent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate ground-truth arrays for ``n`` messages; returns them as bool and int8."""
    rel = np.asarray(relevant)
    itn = np.asarray(intent)
    if rel.shape != (n,) or itn.shape != (n,):
        raise ValueError(f"relevant and intent must both have shape ({n},), got {rel.shape} and {itn.shape}")
    if itn.size and (not np.issubdtype(itn.dtype, np.integer) or itn.min() < 0 or itn.max() >= N_INTENTS):
        raise ValueError(f"intent codes must be integers in 0..{N_INTENTS - 1} ({', '.join(INTENT_NAMES)})")
    return rel.astype(bool), itn.astype(np.int8)
