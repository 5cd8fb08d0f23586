"""Tests of the classification core: plug-in contract, registry, keyword baseline, hashed model, quality."""

from __future__ import annotations

import numpy as np
import pytest

from masssim.classify import (
    INTENT_NAMES,
    Classifier,
    ClassifierParams,
    Intent,
    Labels,
    TrainableClassifier,
    TrainingSet,
    binary_scores,
    build_classifier,
    classifier_names,
    confusion_matrix,
    evaluate,
    multiclass_scores,
    resolve_classifier,
)
from masssim.classify import hashed as hashed_module
from masssim.classify.hashed import Featurizer, HashedClassifier, HashedParams, hash_features
from masssim.classify.keyword import KeywordClassifier, KeywordParams

# --- A small templated corpus, built here: a software brand whose products are "Windows" and "Office". ----

CMP, SUP, BUY, QST, PRS, OTH = (
    Intent.COMPLAINT,
    Intent.SUPPORT,
    Intent.PURCHASE,
    Intent.QUESTION,
    Intent.PRAISE,
    Intent.OTHER,
)
FILL = {
    "product": ["Windows", "Office", "Windows 11", "Office 365", "the Office suite", "Windows Defender"],
    "device": ["laptop", "PC", "desktop", "surface tablet", "work machine", "gaming rig"],
    "app": ["Word", "Excel", "Outlook", "PowerPoint", "Teams"],
    "fault": ["keeps crashing", "froze again", "won't boot", "is so slow", "lost my files", "blue screens"],
    "room": ["office", "kitchen", "living room", "bedroom", "shop", "classroom"],
    "person": ["my boss", "the landlord", "my neighbour", "the cleaner", "my mum", "the intern"],
    "time": ["today", "this morning", "again", "every day", "since Monday", "all week"],
}
RELEVANT = [
    (CMP, "{product} {fault} on my {device}, need a refund"),
    (CMP, "worst update ever, {product} {fault} {time}"),
    (CMP, "paid for {product} and it {fault}, I want my money back"),
    (CMP, "{product} broke {app} on my {device} {time}, terrible"),
    (SUP, "how do I reset my password for {product} on the {device}"),
    (SUP, "getting an error when I install {product} on my {device}, help"),
    (SUP, "{app} in {product} will not activate, can support fix my licence"),
    (SUP, "need help: {product} update stuck at 30% on my {device}"),
    (BUY, "how much is a {product} licence for a small business"),
    (BUY, "want to buy {product} for my new {device}, best price?"),
    (BUY, "is there a student discount on {product}? thinking of ordering it"),
    (BUY, "ordering {product} for the whole team, who sells the family plan"),
    (QST, "does {product} run on an old {device}?"),
    (QST, "anyone know if {app} in {product} supports dark mode"),
    (QST, "why does {product} ask me to sign in to use {app}"),
    (QST, "can {product} sync {app} files between my {device} and phone?"),
    (PRS, "love the new {product}, {app} is so fast on my {device}"),
    (PRS, "{product} has been great on my {device} {time}, thanks team"),
    (PRS, "honestly {app} in {product} is the best tool I use"),
    (OTH, "installed {product} on my {device} {time}"),
    (OTH, "writing my thesis in {app} from {product} {time}"),
    (OTH, "my {device} came with {product} preinstalled"),
]
IRRELEVANT = [
    (OTH, "clean the windows in my {room}"),
    (OTH, "{person} left the windows open in the {room} {time}"),
    (CMP, "the windows in my {room} are broken and {person} won't refund the deposit"),
    (CMP, "worst day at the office {time}, {person} is terrible"),
    (BUY, "price of new windows for the {room} is crazy, want to buy double glazing"),
    (BUY, "buying a desk and chair for my home office {time}"),
    (QST, "anyone know a good window cleaner? the windows in the {room} are filthy"),
    (QST, "why is {person} always late to the office?"),
    (PRS, "love the big windows in the {room}, so much light"),
    (PRS, "great team lunch at the office {time}, thanks {person}"),
    (SUP, "help, {person} locked me out of the office {time}"),
    (OTH, "back at the office {time} after the holidays"),
    (OTH, "{person} is running for office next year"),
    (OTH, "the post office was closed {time}"),
]


def make_corpus(n: int, seed: int) -> TrainingSet:
    """About half relevant, half everyday uses of the brand words."""
    rng = np.random.default_rng(seed)
    texts, rel, itn = [], [], []
    for _ in range(n):
        relevant = bool(rng.random() < 0.5)
        templates = RELEVANT if relevant else IRRELEVANT
        intent, template = templates[rng.integers(len(templates))]
        text = template
        for key, values in FILL.items():
            while "{" + key + "}" in text:
                text = text.replace("{" + key + "}", values[rng.integers(len(values))], 1)
        if rng.random() < 0.2:
            text = text.lower()
        texts.append(text)
        rel.append(relevant)
        itn.append(int(intent))
    return TrainingSet(texts, np.array(rel), np.array(itn, np.int8))


TRAPS = [
    ("clean the windows in my office", False, OTH),
    ("Office keeps crashing on my Windows laptop, need a refund", True, CMP),
    ("the windows in my office are broken, the landlord won't refund me", False, CMP),
    ("Windows update froze my laptop, terrible", True, CMP),
    ("love the big windows in the office", False, PRS),
    ("the post office was closed today", False, OTH),
]


@pytest.fixture(scope="module")
def train() -> TrainingSet:
    return make_corpus(600, seed=1)


@pytest.fixture(scope="module")
def heldout() -> TrainingSet:
    return make_corpus(400, seed=2)


@pytest.fixture(scope="module")
def hashed(train: TrainingSet) -> HashedClassifier:
    model = HashedClassifier(HashedParams(bits=16))
    model.fit(train.texts, train.relevant, train.intent)
    return model


# --- Contract ---------------------------------------------------------------------------------------------


def test_both_builtins_satisfy_the_protocol(hashed: HashedClassifier) -> None:
    keyword = KeywordClassifier()
    assert isinstance(keyword, Classifier)
    assert isinstance(hashed, Classifier)
    assert isinstance(hashed, TrainableClassifier)
    assert not isinstance(keyword, TrainableClassifier)
    for model in (keyword, hashed):
        labels = model.classify(["Office keeps crashing", "hello"])
        assert labels.relevant_prob.dtype == np.float32 and labels.relevant_prob.shape == (2,)
        assert labels.intent.dtype == np.int8 and labels.priority.dtype == np.float32
        assert np.all((labels.relevant_prob >= 0) & (labels.relevant_prob <= 1))
        assert np.all((labels.intent >= 0) & (labels.intent < len(INTENT_NAMES)))


@pytest.mark.parametrize("name", ["keyword", "hashed"])
def test_empty_batch(name: str, hashed: HashedClassifier) -> None:
    model = hashed if name == "hashed" else KeywordClassifier()
    labels = model.classify([])
    assert len(labels) == 0 and labels.intent.dtype == np.int8
    assert hash_features([], bits=10).shape == (0, 1024)


@pytest.mark.parametrize("name", ["keyword", "hashed"])
def test_non_string_input_is_a_clear_error(name: str, hashed: HashedClassifier) -> None:
    model = hashed if name == "hashed" else KeywordClassifier()
    with pytest.raises(TypeError, match=r"texts\[1\] is int, not str"):
        model.classify(["fine", 42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not a single string"):
        model.classify("a bare string")


def test_hashed_must_be_fitted_first() -> None:
    with pytest.raises(RuntimeError, match="fitted"):
        HashedClassifier().classify(["x"])


def test_fit_checks_targets() -> None:
    with pytest.raises(ValueError, match="shape"):
        HashedClassifier(HashedParams(bits=10)).fit(["a", "b"], np.array([True]), np.array([0, 1]))
    with pytest.raises(ValueError, match="intent codes"):
        TrainingSet(["a"], np.array([True]), np.array([9]))


def test_labels_validate_shapes() -> None:
    with pytest.raises(ValueError, match="same length"):
        Labels(np.zeros(2), np.zeros(3), np.zeros(2))


# --- Registry ---------------------------------------------------------------------------------------------


def test_registry_names_and_module_attr() -> None:
    assert {"keyword", "hashed"} <= set(classifier_names())
    assert resolve_classifier("keyword") is KeywordClassifier
    assert resolve_classifier("masssim.classify.hashed:HashedClassifier") is HashedClassifier
    built = build_classifier("keyword", {"brand_keywords": ["acme"]})
    assert isinstance(built, KeywordClassifier)
    assert built.classify(["ACME rocks", "nothing"]).relevant_prob.tolist() == [1.0, 0.0]
    assert isinstance(build_classifier("masssim.classify.hashed:HashedClassifier", {"bits": 12}), HashedClassifier)
    assert isinstance(build_classifier("keyword", KeywordParams()), KeywordClassifier)


def test_registry_errors_are_clear() -> None:
    with pytest.raises(LookupError, match="did you mean 'keyword'"):
        resolve_classifier("keywords")
    with pytest.raises(LookupError, match="cannot import module 'no_such_module_xyz'"):
        resolve_classifier("no_such_module_xyz:Thing")
    with pytest.raises(LookupError, match="has no attribute 'Nope'"):
        resolve_classifier("masssim.classify.hashed:Nope")
    with pytest.raises(ValueError, match=r"unknown parameter 'bitz'.*did you mean 'bits'"):
        build_classifier("hashed", {"bitz": 10})
    with pytest.raises(ValueError, match="parameter 'bits'"):
        build_classifier("hashed", {"bits": 99})
    with pytest.raises(TypeError, match="takes HashedParams"):
        build_classifier("hashed", ClassifierParams())
    # a module:attr of the wrong kind is refused before it is called
    with pytest.raises(LookupError, match=r"the class dict without classify\(\), not a classifier"):
        build_classifier("builtins:dict")


# --- Keyword baseline falls into the traps; the hashed model does not -----------------------------------


def test_keyword_baseline_falls_into_the_traps() -> None:
    texts, truth, _ = zip(*TRAPS, strict=True)
    labels = KeywordClassifier().classify(list(texts))
    assert labels.relevant(0.5)[0]  # "clean the windows in my office" is flagged
    scores = binary_scores(labels.relevant(), np.array(truth))
    assert scores.recall == 1.0
    assert scores.precision <= 0.5  # every everyday use of "windows"/"office" is a false positive
    assert labels.intent[1] == Intent.COMPLAINT


def test_hashed_beats_keyword_on_heldout(hashed: HashedClassifier, heldout: TrainingSet) -> None:
    keyword = evaluate(KeywordClassifier().classify(heldout.texts), heldout.relevant, heldout.intent)
    learned = evaluate(hashed.classify(heldout.texts), heldout.relevant, heldout.intent)
    assert keyword.relevance.precision < 0.6
    assert learned.relevance.f1 > keyword.relevance.f1 + 0.2
    assert learned.relevance.f1 > 0.9
    assert learned.intent.macro_f1 > keyword.intent.macro_f1 + 0.1
    # The traps themselves.
    texts, truth, intents = zip(*TRAPS, strict=True)
    labels = hashed.classify(list(texts))
    assert labels.relevant().tolist() == list(truth)
    assert labels.intent[1] == intents[1] == Intent.COMPLAINT
    # Priority follows relevance: the haystack waits.
    assert labels.priority[1] > labels.priority[0]


def test_hashed_is_deterministic(train: TrainingSet, heldout: TrainingSet, hashed: HashedClassifier) -> None:
    again = HashedClassifier(HashedParams(bits=16))
    again.fit(train.texts, train.relevant, train.intent)
    a, b = hashed.classify(heldout.texts), again.classify(heldout.texts)
    np.testing.assert_array_equal(a.relevant_prob, b.relevant_prob)
    np.testing.assert_array_equal(a.intent, b.intent)


def test_hashed_labels_do_not_depend_on_the_batch(hashed: HashedClassifier, heldout: TrainingSet) -> None:
    whole = hashed.classify(heldout.texts)
    one_by_one = [hashed.classify([t]).relevant_prob[0] for t in heldout.texts[:20]]
    np.testing.assert_allclose(whole.relevant_prob[:20], one_by_one, rtol=1e-5, atol=1e-6)


def test_hash_features_handles_odd_text() -> None:
    texts = ["", "   ", "?!", "a\x00b", "Café ÉTÉ", "ویندوز خراب شد؟", "విండోస్ పని చేయడం లేదు", "x" * 1000]
    x = hash_features(texts, bits=12)
    assert x.shape == (len(texts), 4096)
    # An empty or blank message has only its (constant) boundary grams; every other message has more.
    assert (x[0] != x[1]).nnz == 0
    assert np.all(np.diff(x.indptr)[2:] > np.diff(x.indptr)[0])
    # Case-insensitive (beyond ASCII too), and a NUL inside a text does not split it into two messages.
    y = hash_features(["CAFÉ été", "a b"], bits=12)
    assert (x[4] != y[0]).nnz == 0 and (x[3] != y[1]).nnz == 0
    # Each feature occurrence weighs 1/sqrt(count): a row sums to sqrt(its number of features).
    count = Featurizer(bits=12).chunk(texts).count
    np.testing.assert_allclose(np.asarray(x.sum(axis=1)).ravel(), np.sqrt(count), rtol=1e-5)


def same_rows(a: object, b: object) -> bool:
    return bool((a != b).nnz == 0)  # type: ignore[attr-defined]


def test_featuriser_normalises_scripts_and_punctuation() -> None:
    pairs = [
        ("ΑΘΗΝΑ Όμορφη", "αθηνα όμορφη"),  # Greek
        ("МОСКВА Привет", "москва привет"),  # Cyrillic
        ("ẠỲ Ứng", "ạỳ ứng"),  # Latin Extended Additional (3-byte UTF-8)
        ("ok — fine… “yes”", "ok fine yes"),  # general punctuation
        ("ویندوز، خراب شد؟", "ویندوز خراب شد?"),  # Arabic comma and question mark
        ("hello,   world!!", "hello world!!"),  # ASCII punctuation and runs of spaces
        ("tab\tand\nnew line", "tab and new line"),
        ("sep\x02bytes\x03here", "sep bytes here"),  # the featuriser's own separator bytes
    ]
    x = hash_features([a for a, _ in pairs], bits=14)
    y = hash_features([b for _, b in pairs], bits=14)
    for i, (a, b) in enumerate(pairs):
        assert same_rows(x[i], y[i]), (a, b)
    assert not same_rows(x[0], x[1])
    # Telugu has no case and is kept byte for byte.
    t = hash_features(["విండోస్", "విండోస"], bits=14)
    assert not same_rows(t[0], t[1])


@pytest.mark.parametrize("params", [{}, {"char_min": 3, "char_max": 5, "word_ngrams": 3}, {"char_max": 0 + 1}])
def test_features_do_not_depend_on_batch_or_chunking(params: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["Office keeps crashing", "", "ok", "Windows 11 won't boot!!", "a b c d e", "విండోస్ పని", "x?"] * 3
    whole = hash_features(texts, bits=12, **params)
    alone = [hash_features([t], bits=12, **params) for t in texts]
    for i in range(len(texts)):
        assert same_rows(whole[i], alone[i])
    shuffled = hash_features(texts[::-1], bits=12, **params)
    assert same_rows(whole, shuffled[::-1])
    monkeypatch.setattr(hashed_module, "CHUNK", 4)
    assert same_rows(whole, hash_features(texts, bits=12, **params))


def test_hashed_scores_do_not_depend_on_chunking(
    hashed: HashedClassifier, heldout: TrainingSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = hashed.classify(heldout.texts)
    monkeypatch.setattr(hashed_module, "CHUNK", 7)
    chunked = hashed.classify(heldout.texts)
    np.testing.assert_allclose(whole.relevant_prob, chunked.relevant_prob, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(whole.intent, chunked.intent)
    # The fast scoring path agrees with the canonical feature matrix.
    assert hashed.weights is not None and hashed.bias is not None
    z = np.asarray(hashed.featurize(heldout.texts) @ hashed.weights[:-1]) + hashed.bias
    np.testing.assert_allclose(hashed.scores(heldout.texts)[:, :7], z, rtol=1e-4, atol=1e-5)


def test_word_bigrams_stay_inside_a_message() -> None:
    # "b c" is a bigram of the second text only; the first text ending in "b" must not get it from the batch.
    only_words = {"bits": 16, "char_min": 2, "char_max": 1, "word_ngrams": 2}
    x = hash_features(["a b", "c d"], **only_words)
    assert np.diff(x.indptr).tolist() == [3, 3]  # two unigrams and one bigram each


# --- Quality metrics on hand-computed examples ------------------------------------------------------------


def test_binary_scores_by_hand() -> None:
    pred = np.array([1, 1, 1, 0, 0, 1], bool)
    truth = np.array([1, 0, 1, 1, 0, 0], bool)
    s = binary_scores(pred, truth)
    assert (s.tp, s.fp, s.fn, s.tn) == (2, 2, 1, 1)
    assert s.precision == pytest.approx(0.5)
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))  # = 4/7
    assert s.f1 == pytest.approx(4 / 7)
    empty = binary_scores(np.zeros(3, bool), np.zeros(3, bool))
    assert empty.precision == empty.recall == empty.f1 == 0.0


def test_multiclass_scores_by_hand() -> None:
    truth = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    cm = confusion_matrix(pred, truth, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    m = multiclass_scores(pred, truth, ("a", "b", "c"))
    per = m.per_class()
    # a: tp 1, fp 1, fn 1 -> P = R = F1 = 1/2; b: tp 2, fp 1, fn 0 -> P 2/3, R 1, F1 4/5; c: P 1, R 1/2, F1 2/3
    assert per["a"].f1 == pytest.approx(0.5)
    assert per["b"].precision == pytest.approx(2 / 3) and per["b"].f1 == pytest.approx(0.8)
    assert per["c"].recall == pytest.approx(0.5) and per["c"].f1 == pytest.approx(2 / 3)
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m.accuracy == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="codes must be in"):
        confusion_matrix(np.array([3]), np.array([0]), 3)


def test_macro_f1_skips_absent_classes_and_evaluate_masks_haystack() -> None:
    labels = Labels(
        relevant_prob=np.array([0.9, 0.8, 0.2, 0.7], np.float32),
        intent=np.array([CMP, SUP, CMP, OTH], np.int8),
        priority=np.zeros(4, np.float32),
    )
    report = evaluate(labels, np.array([True, True, False, False]), np.array([CMP, CMP, OTH, OTH]))
    r = report.relevance
    assert (r.tp, r.fp, r.fn, r.tn) == (2, 1, 0, 1)
    # Intent on the two truly relevant messages: complaint->complaint, complaint->support.
    assert report.intent.confusion.sum() == 2
    per = report.intent.per_class()
    assert per["complaint"].f1 == pytest.approx(2 / 3)  # P 1, R 1/2
    assert per["support"].f1 == 0.0
    assert report.intent.macro_f1 == pytest.approx((2 / 3 + 0.0) / 2)  # other classes absent
    assert set(report.as_dict()) >= {"relevance", "intent", "intent_macro_f1", "intent_confusion"}


def test_intent_codes_agree_with_the_message_generator() -> None:
    """Predictions and the generator's ground truth use the same intent codes."""
    from masssim.classify.base import INTENT_NAMES
    from masssim.config.mentions import INTENTS

    assert tuple(INTENT_NAMES) == tuple(INTENTS)
