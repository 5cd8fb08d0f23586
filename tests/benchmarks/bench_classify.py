"""Classification core speed and quality: masssim's ``hashed`` core against scikit-learn and fastText.

Run:  python tests/benchmarks/bench_classify.py [--messages 200000] [--train 20000] [--repeat 5]
      [--difficulty 0.3] [--seed 1] [--json out.json]

One synthetic corpus, one run, one core (BLAS/OpenMP threads are set to 1 before numpy is imported): every
contender is trained on the same labelled ``training_corpus`` (balanced, half needles, drawn from a stream
separate from the test stream, as ``masssim run`` does) and then labels the same ``generate_mentions`` stream
of ``--messages`` messages in one batch call. Contenders:

- masssim ``hashed`` (default parameters);
- scikit-learn ``HashingVectorizer(ngram_range=(1, 2))`` + ``SGDClassifier``, and the same vectoriser +
  ``LogisticRegression``: one vectorisation, one model for relevance and one for intent;
- fastText supervised (``fasttext`` / ``fasttext-wheel``), word uni- and bigrams, and a second model with
  character 3-5-grams too: one model over seven labels (``irrelevant`` or the intent), predicted with
  ``predict(list_of_texts, k=2)``: relevant if the top label is not ``irrelevant``; the intent is the top
  intent label.

Throughput is messages per second of prediction only (the model is fitted beforehand), the median over
``--repeat`` runs, as wall-clock time and as process CPU time (the machine is shared: CPU time is the less
disturbed figure; both are single-threaded). Quality is relevance F1 and intent macro-F1 (intent scored on the
truly relevant messages, as ``masssim.classify.evaluate`` does). The script prints each figure and the ratios
masssim / scikit-learn and masssim / fastText. A contender whose package is missing is reported and skipped
(``pip install masssim[bench]`` installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # single core: before numpy (and its BLAS) is imported

import numpy as np  # noqa: E402

DAY_S = 86_400.0


@dataclass
class Corpus:
    train_texts: list[str]
    train_relevant: np.ndarray
    train_intent: np.ndarray
    texts: list[str]
    relevant: np.ndarray
    intent: np.ndarray


@dataclass
class Result:
    name: str
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    fit_s: float = 0.0
    relevance_f1: float = float("nan")
    intent_macro_f1: float = float("nan")
    skipped: str = ""

    def rate(self, n: int, kind: str) -> float:
        times = self.wall_s if kind == "wall" else self.cpu_s
        return n / statistics.median(times) if times else float("nan")


def build_corpus(messages: int, train: int, difficulty: float, seed: int) -> Corpus:
    from masssim.model.messages import MentionStreamConfig, generate_mentions, training_corpus

    cfg = MentionStreamConfig(difficulty=difficulty)
    probe = generate_mentions(cfg, DAY_S, np.random.default_rng(seed))
    per_day = max(len(probe.text), 1)
    days = 1.1 * messages / per_day + 1.0
    rng = np.random.default_rng(seed)
    stream = generate_mentions(cfg, days * DAY_S, rng)
    corpus = training_corpus(cfg, train, rng, needle_share=0.5)
    n = min(messages, len(stream.text))
    return Corpus(
        list(corpus.text),
        np.asarray(corpus.relevant, bool),
        np.asarray(corpus.intent, np.int8),
        list(stream.text[:n]),
        np.asarray(stream.relevant[:n], bool),
        np.asarray(stream.intent[:n], np.int8),
    )


def measure(result: Result, predict: Callable[[], tuple[np.ndarray, np.ndarray]], c: Corpus, repeat: int) -> None:
    from masssim.classify import Labels, evaluate

    rel, itn = predict()  # warm-up, and the labels scored for quality
    labels = Labels(rel.astype(np.float32), itn.astype(np.int8), np.zeros(len(rel), np.float32))
    report = evaluate(labels, c.relevant, c.intent)
    result.relevance_f1 = report.relevance.f1
    result.intent_macro_f1 = report.intent.macro_f1
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        predict()
        result.cpu_s.append(time.process_time() - c0)
        result.wall_s.append(time.perf_counter() - w0)


def run_masssim(c: Corpus, repeat: int) -> Result:
    from masssim.classify.hashed import HashedClassifier

    result = Result("masssim hashed")
    model = HashedClassifier()
    t0 = time.perf_counter()
    model.fit(c.train_texts, c.train_relevant, c.train_intent)
    result.fit_s = time.perf_counter() - t0

    def predict() -> tuple[np.ndarray, np.ndarray]:
        labels = model.classify(c.texts)
        return labels.relevant(), labels.intent

    measure(result, predict, c, repeat)
    return result


def run_sklearn(c: Corpus, repeat: int) -> list[Result]:
    try:
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.linear_model import LogisticRegression, SGDClassifier
    except ImportError as exc:
        return [Result("scikit-learn HashingVectorizer(1-2) + SGD", skipped=f"not installed ({exc})")]
    results = []
    vectoriser = HashingVectorizer(ngram_range=(1, 2), n_features=2**18)
    for name, make in (
        ("scikit-learn HashingVectorizer(1-2) + SGD", lambda: SGDClassifier(random_state=0)),
        ("scikit-learn HashingVectorizer(1-2) + LogReg", lambda: LogisticRegression(C=10.0, max_iter=1000)),
    ):
        result = Result(name)
        t0 = time.perf_counter()
        x = vectoriser.transform(c.train_texts)
        rel_model = make().fit(x, c.train_relevant)
        int_model = make().fit(x, c.train_intent)
        result.fit_s = time.perf_counter() - t0

        def predict(rel_model: Any = rel_model, int_model: Any = int_model) -> tuple[np.ndarray, np.ndarray]:
            xt = vectoriser.transform(c.texts)
            return rel_model.predict(xt), int_model.predict(xt)

        measure(result, predict, c, repeat)
        results.append(result)
    return results


def run_fasttext(c: Corpus, repeat: int) -> list[Result]:
    try:
        import fasttext
    except ImportError as exc:
        return [Result("fastText (word 1-2-grams)", skipped=f"not installed ({exc})")]
    from masssim.classify import INTENT_NAMES

    def line(text: str) -> str:
        return text.replace("\n", " ")

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.txt"
        with path.open("w", encoding="utf-8") as f:
            for text, rel, itn in zip(c.train_texts, c.train_relevant, c.train_intent, strict=True):
                label = INTENT_NAMES[itn] if rel else "irrelevant"
                f.write(f"__label__{label} {line(text)}\n")
        texts = [line(t) for t in c.texts]
        intent_code = {f"__label__{name}": i for i, name in enumerate(INTENT_NAMES)}
        for name, extra in (
            ("fastText (word 1-2-grams)", {}),
            ("fastText (word 1-2-grams + char 3-5-grams)", {"minn": 3, "maxn": 5}),
        ):
            result = Result(name)
            t0 = time.perf_counter()
            model = fasttext.train_supervised(
                str(path), epoch=25, lr=0.5, wordNgrams=2, thread=1, seed=1, verbose=0, **extra
            )
            result.fit_s = time.perf_counter() - t0

            def predict(model: Any = model) -> tuple[np.ndarray, np.ndarray]:
                top, _ = model.predict(texts, k=2)
                rel = np.array([t[0] != "__label__irrelevant" for t in top])
                itn = np.array([intent_code.get(t[0], intent_code.get(t[-1], 5)) for t in top], np.int8)
                return rel, itn

            # Time fastText's own predict only (not the decoding of its label lists above).
            measure(result, predict, c, 0)
            for _ in range(repeat):
                w0, c0 = time.perf_counter(), time.process_time()
                model.predict(texts, k=2)
                result.cpu_s.append(time.process_time() - c0)
                result.wall_s.append(time.perf_counter() - w0)
            results.append(result)
    return results


def report(results: Sequence[Result], n: int) -> dict[str, Any]:
    print(f"\n{n} messages, median of repeats, single core")
    print(
        f"{'contender':48s} {'msg/s (wall)':>13s} {'msg/s (CPU)':>12s} {'rel F1':>7s} {'intent F1':>9s} {'fit s':>6s}"
    )
    for r in results:
        if r.skipped:
            print(f"{r.name:48s} skipped: {r.skipped}")
            continue
        print(
            f"{r.name:48s} {r.rate(n, 'wall'):13,.0f} {r.rate(n, 'cpu'):12,.0f} {r.relevance_f1:7.4f} "
            f"{r.intent_macro_f1:9.4f} {r.fit_s:6.1f}"
        )
    ours = results[0]
    ratios: dict[str, dict[str, float]] = {}
    print("\nratios (masssim / contender): throughput wall, CPU; F1 difference relevance, intent")
    for r in results[1:]:
        if r.skipped:
            continue
        ratios[r.name] = {
            "wall": ours.rate(n, "wall") / r.rate(n, "wall"),
            "cpu": ours.rate(n, "cpu") / r.rate(n, "cpu"),
            "relevance_f1_diff": ours.relevance_f1 - r.relevance_f1,
            "intent_f1_diff": ours.intent_macro_f1 - r.intent_macro_f1,
        }
        q = ratios[r.name]
        print(
            f"  vs {r.name:44s} {q['wall']:6.2f}x {q['cpu']:6.2f}x   "
            f"{q['relevance_f1_diff']:+.4f} {q['intent_f1_diff']:+.4f}"
        )
    return {
        "messages": n,
        "results": [
            {
                "name": r.name,
                "skipped": r.skipped,
                "msg_per_s_wall": r.rate(n, "wall") if not r.skipped else None,
                "msg_per_s_cpu": r.rate(n, "cpu") if not r.skipped else None,
                "wall_s": r.wall_s,
                "cpu_s": r.cpu_s,
                "fit_s": r.fit_s,
                "relevance_f1": r.relevance_f1,
                "intent_macro_f1": r.intent_macro_f1,
            }
            for r in results
        ],
        "ratios": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000, help="size of the test stream")
    parser.add_argument("--train", type=int, default=20_000, help="size of the training corpus")
    parser.add_argument("--repeat", type=int, default=5, help="timed predictions of each; medians are reported")
    parser.add_argument("--difficulty", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    corpus = build_corpus(args.messages, args.train, args.difficulty, args.seed)
    n = len(corpus.texts)
    print(f"corpus: {len(corpus.train_texts)} training messages, {n} test messages", file=sys.stderr)
    results = [run_masssim(corpus, args.repeat)]
    results += run_sklearn(corpus, args.repeat)
    results += run_fasttext(corpus, args.repeat)
    figures = report(results, n)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
