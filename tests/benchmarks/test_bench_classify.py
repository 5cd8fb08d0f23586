"""pytest-benchmark case for the classification core (run with: python -m pytest -m benchmark tests/benchmarks).

The ``hashed`` core's batch throughput on a synthetic mention stream; ``bench_classify.py`` in this folder
compares it with scikit-learn and fastText and reports quality too.
"""

from __future__ import annotations

import numpy as np
import pytest

from masssim.classify.hashed import HashedClassifier
from masssim.model.messages import MentionStreamConfig, generate_mentions, training_corpus

pytestmark = pytest.mark.benchmark

DAYS = 14.0  # about 30,000 mentions with the default sources


@pytest.fixture(scope="module")
def fitted_and_stream():  # type: ignore[no-untyped-def]
    cfg = MentionStreamConfig(difficulty=0.3)
    rng = np.random.default_rng(1)
    stream = generate_mentions(cfg, DAYS * 86_400.0, rng)
    corpus = training_corpus(cfg, 5_000, rng, needle_share=0.5)
    model = HashedClassifier()
    model.fit(corpus.text, corpus.relevant, corpus.intent)
    return model, list(stream.text)


def test_hashed_classify_throughput(benchmark, fitted_and_stream) -> None:  # type: ignore[no-untyped-def]
    model, texts = fitted_and_stream
    labels = benchmark(model.classify, texts)
    assert len(labels) == len(texts)
    benchmark.extra_info["messages"] = len(texts)
