"""The worker process that runs an in-process (``python:``) classifier for the load generator.

The generator and the classifier never share a GIL: the classifier is built (and fitted, if it learns) in
this process, which then answers queries from a pipe. Queries waiting in the pipe when the classifier
becomes free are merged into one ``classify`` call (at most ``max_merge`` texts), as a batching server
would; each reply carries the wall time of the call that produced it (``service_s``).

Messages in: ``("q", qid, texts)``, or ``None`` to stop. Messages out: ``("ready", info)``,
``("fatal", message)``, ``("r", qid, relevant_prob, intent, priority, service_s)``, ``("e", qid, message)``.
"""

from __future__ import annotations

import os
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np


def worker_main(
    inbox: Connection,
    outbox: Connection,
    spec: str,
    params: dict[str, Any],
    training_messages: int,
    seed: np.random.SeedSequence,
    difficulty: float | None,
    max_merge: int,
) -> None:
    try:
        classifier, fitted = _build(spec, params, training_messages, seed, difficulty)
    except BaseException as exc:  # everything goes back to the parent as one line
        outbox.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    outbox.send(("ready", {"classifier": spec, "fitted_on": fitted, "pid": os.getpid()}))
    stop = False
    while not stop:
        try:
            msg = inbox.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        batch = [msg]
        size = len(msg[2])
        while size < max_merge and inbox.poll():
            more = inbox.recv()
            if more is None:
                stop = True
                break
            batch.append(more)
            size += len(more[2])
        _answer(classifier, batch, outbox)


def _build(
    spec: str, params: dict[str, Any], training_messages: int, seed: np.random.SeedSequence, difficulty: float | None
) -> tuple[Any, int]:
    # Imported here, in the worker process that builds the classifier, not by every process importing this module.
    from masssim.bench.corpus import training_set
    from masssim.classify.base import Labels
    from masssim.classify.registry import build_classifier

    classifier = build_classifier(spec, params)
    fitted = 0
    fit = getattr(classifier, "fit", None)
    if training_messages > 0 and callable(fit):
        texts, relevant, intent = training_set(seed, training_messages, difficulty=difficulty)
        fit(texts, relevant, intent)
        fitted = training_messages
    probe = classifier.classify(["hello"])
    if not isinstance(probe, Labels) or len(probe) != 1:
        raise TypeError("classify(['hello']) did not return Labels of length 1")
    return classifier, fitted


def _answer(classifier: Any, batch: list[Any], outbox: Connection) -> None:
    texts: list[str] = []
    for _, _, chunk in batch:
        texts.extend(chunk)
    start = time.perf_counter()
    try:
        labels = classifier.classify(texts)
        if len(labels) != len(texts):
            raise ValueError(f"returned {len(labels)} labels for {len(texts)} texts")
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        for _, qid, _ in batch:
            outbox.send(("e", qid, message))
        return
    service_s = time.perf_counter() - start
    offset = 0
    for _, qid, chunk in batch:
        end = offset + len(chunk)
        outbox.send(
            (
                "r",
                qid,
                labels.relevant_prob[offset:end],
                labels.intent[offset:end],
                labels.priority[offset:end],
                service_s,
            )
        )
        offset = end
