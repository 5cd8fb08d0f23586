"""The samples a benchmark sends, with their ground truth, so quality is measured on the same run.

Either synthetic messages from the inbound generator (:func:`masssim.model.messages.training_corpus` on a stream
of the run's seed that the classifier's training corpus never uses), or a user's labelled JSONL/CSV file
read by :func:`masssim.model.message_files.load_labelled_messages` (same schema and one-line errors).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from masssim.bench.schedule import STREAM_CORPUS, STREAM_TRAINING, child_generator
from masssim.classify.base import Labels
from masssim.classify.quality import evaluate
from masssim.model.message_files import load_labelled_messages
from masssim.model.messages import MentionStreamConfig, training_corpus


@dataclass
class Corpus:
    texts: list[str]
    relevant: np.ndarray  # bool
    intent: np.ndarray  # int8
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def stream_config(*, difficulty: float | None = None, needle_share: float | None = None) -> MentionStreamConfig:
    update: dict[str, float] = {}
    if difficulty is not None:
        update["difficulty"] = float(difficulty)
    if needle_share is not None:
        update["needle_share"] = float(needle_share)
    return MentionStreamConfig().model_copy(update=update)


def synthetic_corpus(
    root: np.random.SeedSequence, n: int, *, difficulty: float | None = None, needle_share: float | None = None
) -> Corpus:
    mentions = training_corpus(
        stream_config(difficulty=difficulty, needle_share=needle_share), n, child_generator(root, STREAM_CORPUS)
    )
    return Corpus(list(mentions.text), mentions.relevant.copy(), mentions.intent.copy(), f"synthetic ({n} messages)")


def file_corpus(path: str | Path) -> Corpus:
    """A user's labelled messages (raises :class:`~masssim.config.errors.ScenarioError` naming the file and row)."""
    labelled = load_labelled_messages(path)
    return Corpus(labelled.text, labelled.relevant.copy(), labelled.intent.copy(), f"file {Path(path).name}")


def training_set(
    root: np.random.SeedSequence, n: int, *, difficulty: float | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Half-needle synthetic training messages for a trainable classifier (a stream apart from the corpus)."""
    mentions = training_corpus(
        stream_config(difficulty=difficulty), n, child_generator(root, STREAM_TRAINING), needle_share=0.5
    )
    return list(mentions.text), mentions.relevant.copy(), mentions.intent.copy()


class Predictions:
    """The answers collected during a run, by corpus index (the last answer for a sample sent twice)."""

    def __init__(self, n: int) -> None:
        self.answered = np.zeros(n, dtype=bool)
        self.relevant_prob = np.zeros(n, dtype=np.float32)
        self.intent = np.zeros(n, dtype=np.int8)
        self.priority = np.zeros(n, dtype=np.float32)

    def record(self, indices: np.ndarray, labels: Labels) -> None:
        self.answered[indices] = True
        self.relevant_prob[indices] = labels.relevant_prob
        self.intent[indices] = labels.intent
        self.priority[indices] = labels.priority

    def quality(self, corpus: Corpus) -> dict[str, object] | None:
        """Precision, recall and F1 (relevance; intent per class on the truly relevant) over answered samples."""
        mask = self.answered
        if not mask.any():
            return None
        labels = Labels(self.relevant_prob[mask], self.intent[mask], self.priority[mask])
        report = evaluate(labels, corpus.relevant[mask], corpus.intent[mask])
        return {"samples_scored": int(mask.sum()), "corpus": corpus.source, **report.as_dict()}
