"""Quality of a classifier against ground truth: precision, recall, F1, macro-F1, confusion matrix.

Conventions: a ratio whose denominator is zero (no predicted positives for precision, no true positives
to find for recall) is 0.0, and so is F1 when precision + recall is 0. Macro-F1 averages the per-class F1
over the classes that occur in the truth or the predictions (a class absent from both says nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from masssim.classify.base import INTENT_NAMES, N_INTENTS, Labels


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2.0 * precision * recall, precision + recall)


@dataclass(frozen=True)
class BinaryScores:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.tp + self.fp + self.fn + self.tn)

    def as_dict(self) -> dict[str, float]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


def binary_scores(predicted: np.ndarray, truth: np.ndarray) -> BinaryScores:
    """Counts of a binary prediction against the truth (both bool-like, same shape)."""
    p = np.asarray(predicted, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    if p.shape != t.shape:
        raise ValueError(f"predicted and truth shapes differ: {p.shape} vs {t.shape}")
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return BinaryScores(tp, fp, fn, int(p.size) - tp - fp - fn)


def confusion_matrix(predicted: np.ndarray, truth: np.ndarray, n_classes: int = N_INTENTS) -> np.ndarray:
    """int64 [n_classes, n_classes]: entry [t, p] counts items of true class t predicted as p."""
    p = np.asarray(predicted).astype(np.int64, copy=False)
    t = np.asarray(truth).astype(np.int64, copy=False)
    if p.shape != t.shape:
        raise ValueError(f"predicted and truth shapes differ: {p.shape} vs {t.shape}")
    for name, a in (("predicted", p), ("truth", t)):
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"{name} class codes must be in 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass(frozen=True)
class MulticlassScores:
    confusion: np.ndarray  # [true, predicted]
    names: tuple[str, ...]

    def per_class(self) -> dict[str, BinaryScores]:
        c = self.confusion
        total = int(c.sum())
        out = {}
        for i, name in enumerate(self.names):
            tp = int(c[i, i])
            fp = int(c[:, i].sum()) - tp
            fn = int(c[i, :].sum()) - tp
            out[name] = BinaryScores(tp, fp, fn, total - tp - fp - fn)
        return out

    @property
    def macro_f1(self) -> float:
        c = self.confusion
        present = (c.sum(axis=0) + c.sum(axis=1)) > 0
        f1s = [s.f1 for s, keep in zip(self.per_class().values(), present, strict=True) if keep]
        return float(np.mean(f1s)) if f1s else 0.0

    @property
    def accuracy(self) -> float:
        return _ratio(np.trace(self.confusion), self.confusion.sum())


def multiclass_scores(
    predicted: np.ndarray, truth: np.ndarray, names: tuple[str, ...] = INTENT_NAMES
) -> MulticlassScores:
    return MulticlassScores(confusion_matrix(predicted, truth, len(names)), names)


@dataclass(frozen=True)
class QualityReport:
    """Relevance scores over all messages; intent scores over the truly relevant ones (by default)."""

    relevance: BinaryScores
    intent: MulticlassScores
    threshold: float
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "threshold": self.threshold,
            "relevance": self.relevance.as_dict(),
            "intent": {name: s.as_dict() for name, s in self.intent.per_class().items()},
            "intent_macro_f1": self.intent.macro_f1,
            "intent_confusion": self.intent.confusion.tolist(),
        }


def evaluate(
    labels: Labels,
    relevant: np.ndarray,
    intent: np.ndarray,
    *,
    threshold: float = 0.5,
    intent_on_relevant_only: bool = True,
) -> QualityReport:
    """Score a classifier's :class:`Labels` against ground-truth relevance and intent.

    Intent is scored on the messages that truly concern the brand (the intent of a haystack message
    does not matter to the response team) unless ``intent_on_relevant_only`` is False.
    """
    truth_rel = np.asarray(relevant, dtype=bool)
    truth_int = np.asarray(intent)
    if truth_rel.shape != (len(labels),) or truth_int.shape != (len(labels),):
        raise ValueError(f"ground truth must have shape ({len(labels)},) like the labels")
    rel = binary_scores(labels.relevant(threshold), truth_rel)
    mask = truth_rel if intent_on_relevant_only else np.ones(len(labels), bool)
    itn = multiclass_scores(labels.intent[mask], truth_int[mask])
    return QualityReport(rel, itn, threshold)
