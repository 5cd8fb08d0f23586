"""The mention stream (Find) and the synthetic labelled messages (Classify), DESIGN §1.5."""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from masssim.config.errors import ScenarioError
from masssim.model.message_files import load_labelled_messages, load_source
from masssim.model.messages import (
    IRRELEVANT,
    KIND_EVERYDAY,
    KIND_HARD,
    KIND_VAGUE,
    LANGUAGES,
    BurstConfig,
    CustomerVoices,
    MentionStreamConfig,
    MessageSource,
    SourceConfig,
    generate_mentions,
    mention_stream_from_dict,
    stranger_rate_per_hour,
    training_corpus,
)

DAY = 86_400.0
NO_BURSTS = BurstConfig(per_year=0.0)


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))


def _expected_per_hour(cfg: MentionStreamConfig, hours: int, bursts: np.ndarray) -> np.ndarray:
    # Rates are piecewise constant on whole minutes (offsets are multiples of 30 min): minute midpoints are exact.
    t = (np.arange(hours * 60) + 0.5) * 60.0
    return stranger_rate_per_hour(cfg, t, bursts).reshape(hours, 60).mean(axis=1)


def test_hourly_counts_match_integrated_rate() -> None:
    cfg = MentionStreamConfig(
        sources=[
            SourceConfig(name="social", base_rate_per_hour=40.0, diurnal="evening", utc_offset_hours=-5.0),
            SourceConfig(name="email", base_rate_per_hour=15.0, diurnal="business_hours", utc_offset_hours=5.5),
        ],
        bursts=NO_BURSTS,
    )
    hours = 24 * 14
    m = generate_mentions(cfg, hours * 3600.0, _rng(1))
    assert np.all(np.diff(m.time_s) >= 0)
    observed = np.bincount((m.time_s // 3600).astype(int), minlength=hours)
    expected = _expected_per_hour(cfg, hours, m.bursts_s)
    # Total: Poisson, 4 sd. Per hour: chi-square goodness of fit at the 0.1% level.
    assert abs(observed.sum() - expected.sum()) < 4 * math.sqrt(expected.sum())
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < stats.chi2.ppf(0.999, hours)
    # The diurnal shape is visible: the busiest hour of the day has several times the quietest.
    by_hour = observed.reshape(14, 24).sum(axis=0)
    assert by_hour.max() > 2 * by_hour.min()


def test_bursts_raise_the_rate_in_their_window() -> None:
    cfg = MentionStreamConfig(
        sources=[SourceConfig(name="social", base_rate_per_hour=30.0, diurnal="flat")],
        bursts=BurstConfig(per_year=0.0, multiplier=5.0, duration_hours=12.0),
    )
    window = np.array([[2 * DAY, 2 * DAY + 12 * 3600.0]])
    m = generate_mentions(cfg, 5 * DAY, _rng(2), bursts_s=window)
    inside = ((m.time_s >= window[0, 0]) & (m.time_s < window[0, 1])).sum()
    outside = len(m) - inside
    exp_in, exp_out = 5 * 30.0 * 12, 30.0 * (5 * 24 - 12)
    assert abs(inside - exp_in) < 4 * math.sqrt(exp_in)
    assert abs(outside - exp_out) < 4 * math.sqrt(exp_out)
    # Random viral events: their number is Poisson(per_year x years) and each raises the rate.
    cfg2 = cfg.model_copy(update={"bursts": BurstConfig(per_year=365.0, multiplier=4.0, duration_hours=6.0)})
    m2 = generate_mentions(cfg2, 60 * DAY, _rng(3))
    assert len(m2.bursts_s) > 20
    in2 = np.zeros(len(m2), bool)
    for start, end in m2.bursts_s:
        in2 |= (m2.time_s >= start) & (m2.time_s < end)
    # The windows are merged (disjoint) and the diurnal curve is flat: 4 x 30 an hour inside, 30 outside.
    length = float((m2.bursts_s[:, 1] - m2.bursts_s[:, 0]).sum()) / 3600.0
    exp_in2, exp_out2 = 4.0 * 30.0 * length, 30.0 * (60 * 24 - length)
    assert abs(in2.sum() - exp_in2) < 4 * math.sqrt(exp_in2)
    assert abs((~in2).sum() - exp_out2) < 4 * math.sqrt(exp_out2)


def test_needle_share_and_customer_authors() -> None:
    cfg = MentionStreamConfig(needle_share=0.05, bursts=NO_BURSTS)
    m = generate_mentions(cfg, 14 * DAY, _rng(4))
    n = len(m)
    assert n > 20_000
    assert abs(m.relevant.mean() - 0.05) < 4 * math.sqrt(0.05 * 0.95 / n)
    assert np.all(m.author == -1)
    # Customers post at their voice rate; their posts are about the brand.
    voices = CustomerVoices(np.full(20_000, 12.0), np.full(20_000, 7.0))
    mc = generate_mentions(cfg, 14 * DAY, _rng(5), customers=voices)
    from_customers = mc.author >= 0
    expected = 20_000 * 12.0 * 14 / 365.25
    assert abs(from_customers.sum() - expected) < 4 * math.sqrt(expected)
    assert np.all(mc.relevant[from_customers])
    assert mc.author.max() < 20_000


def test_label_noise_rate() -> None:
    cfg = MentionStreamConfig(label_noise=0.1)
    m = training_corpus(cfg, 30_000, _rng(6))
    flipped = (m.noisy_label != m.true_label).mean()
    assert abs(flipped - 0.1) < 4 * math.sqrt(0.1 * 0.9 / 30_000)
    assert np.array_equal(m.true_label != IRRELEVANT, m.relevant)


def test_every_language_in_native_script() -> None:
    m = training_corpus(MentionStreamConfig(needle_share=0.3), 5_000, _rng(7))
    seen = {LANGUAGES[c] for c in m.language.tolist()}
    assert seen == set(LANGUAGES)
    script = {"ar": re.compile("[\u0600-\u06ff]"), "te": re.compile("[\u0c00-\u0c7f]")}
    for lang, pattern in script.items():
        # Every text but the few-word vague needles ("{brand} 🙄") is in the native script.
        texts = [
            t for t, c, k in zip(m.text, m.language.tolist(), m.kind.tolist(), strict=True) if LANGUAGES[c] == lang
        ]
        wordy = [
            t
            for t, c, k in zip(m.text, m.language.tolist(), m.kind.tolist(), strict=True)
            if LANGUAGES[c] == lang and k != KIND_VAGUE
        ]
        assert len(texts) > 200
        assert all(pattern.search(t) for t in wordy)
    fr = [t for t, c in zip(m.text, m.language.tolist(), strict=True) if LANGUAGES[c] == "fr"]
    assert any(re.search("[éèàç]", t) for t in fr)


def _has_brand(texts: list[str], words: list[str]) -> np.ndarray:
    lowered = [w.lower() for w in words]
    return np.array([any(w in t.lower() for w in lowered) for t in texts])


def test_traps_haystack_mentions_brand_words() -> None:
    cfg = MentionStreamConfig(difficulty=0.0)
    m = training_corpus(cfg, 5_000, _rng(8))
    words = cfg.brand.words
    traps = np.isin(m.kind, [KIND_EVERYDAY, KIND_HARD])
    assert traps.sum() > 500 and not m.relevant[traps].any()
    assert _has_brand([m.text[i] for i in np.flatnonzero(traps)], words).all()
    # The vertical changes the words: "sick" is praise for an energy drink, illness at a clinic.
    drink = training_corpus(
        mention_stream_from_dict({"brand": {"words": ["Bolt"], "vertical": "energy_drink"}, "needle_share": 0.5}),
        5_000,
        _rng(9),
    )
    clinic = training_corpus(
        mention_stream_from_dict({"brand": {"words": ["CareWell"], "vertical": "clinic"}, "needle_share": 0.5}),
        5_000,
        _rng(9),
    )
    sick_drink = Counter(
        int(i) for t, i, r in zip(drink.text, drink.intent, drink.relevant, strict=True) if r and "sick" in t
    )
    sick_clinic = Counter(
        int(i) for t, i, r in zip(clinic.text, clinic.intent, clinic.relevant, strict=True) if r and "sick" in t
    )
    praise, support = 4, 1
    assert sick_drink[praise] > 0.15 * sum(sick_drink.values()) and sick_drink[support] == 0
    assert sick_clinic.most_common(1)[0][0] == support and sick_clinic[praise] == 0


def _precision_recall_f1(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float((pred & truth).sum())
    p = tp / max(pred.sum(), 1)
    r = tp / max(truth.sum(), 1)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def test_keyword_rule_precision_falls_with_difficulty() -> None:
    precisions = []
    for difficulty in (0.0, 0.5, 1.0):
        cfg = MentionStreamConfig(difficulty=difficulty, bursts=NO_BURSTS)
        m = generate_mentions(cfg, 10 * DAY, _rng(10))
        flagged = _has_brand(m.text, cfg.brand.words)
        precisions.append(_precision_recall_f1(flagged, m.relevant)[0])
    assert all(p < 0.5 for p in precisions)
    assert precisions[0] > precisions[1] > precisions[2]


_TOKEN = re.compile(r"\w+")


def _naive_bayes_f1(difficulty: float, seed: int) -> float:
    """Multinomial naive Bayes on word counts, trained on the noisy labels, scored on the true relevance."""
    cfg = MentionStreamConfig(difficulty=difficulty, needle_share=0.2, bursts=NO_BURSTS)
    rng = _rng(seed)
    train = training_corpus(cfg, 20_000, rng)
    test = generate_mentions(cfg, 7 * DAY, rng)
    vocab: dict[str, int] = {}
    docs = [[vocab.setdefault(w, len(vocab)) for w in _TOKEN.findall(t.lower())] for t in train.text]
    y = train.noisy_relevant
    counts = np.ones((2, len(vocab) + 1))  # Laplace smoothing; the last column is "unknown word"
    for doc, label in zip(docs, y.tolist(), strict=True):
        np.add.at(counts[int(label)], doc, 1.0)
    log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
    log_prior = np.log(np.array([1 - y.mean(), y.mean()]))
    unknown = len(vocab)
    scores = np.array(
        [
            log_prior + log_p[:, [vocab.get(w, unknown) for w in _TOKEN.findall(t.lower())]].sum(axis=1)
            for t in test.text
        ]
    )
    return _precision_recall_f1(scores[:, 1] > scores[:, 0], test.relevant)[2]


def test_difficulty_keeps_a_good_classifier_short_of_perfect() -> None:
    easy = _naive_bayes_f1(0.0, 11)
    hard = _naive_bayes_f1(0.5, 11)
    assert easy > 0.95
    assert hard < 0.9
    assert easy - hard > 0.07


def test_same_seed_same_stream_and_training_is_separate() -> None:
    cfg = MentionStreamConfig()
    a = generate_mentions(cfg, 2 * DAY, _rng(12))
    b = generate_mentions(cfg, 2 * DAY, _rng(12))
    assert np.array_equal(a.time_s, b.time_s) and a.text == b.text
    rng = _rng(12)
    train = training_corpus(cfg, 2_000, rng)
    test = generate_mentions(cfg, 2 * DAY, rng)
    assert test.text == a.text  # training drew from a child stream, not from rng itself
    assert train.text[:50] != a.text[:50]


def test_hundred_thousand_messages_in_a_few_seconds() -> None:
    cfg = MentionStreamConfig(difficulty=0.5)
    start = time.perf_counter()
    m = training_corpus(cfg, 100_000, _rng(13))
    elapsed = time.perf_counter() - start
    assert len(m) == 100_000
    assert elapsed < 5.0


def test_config_errors_name_field_value_and_allowed() -> None:
    with pytest.raises(ScenarioError) as exc:
        mention_stream_from_dict({"language_shares": {"en": 0.5, "xx": 0.5}}, file="s.toml")
    assert "language_shares" in str(exc.value) and "xx" in str(exc.value)
    with pytest.raises(ScenarioError) as exc:
        mention_stream_from_dict({"difficulty": 1.5}, file="s.toml")
    assert exc.value.field == "difficulty" and exc.value.value == 1.5
    with pytest.raises(ScenarioError):
        mention_stream_from_dict({"needle_sahre": 0.1})


def test_loader_accepts_good_files(tmp_path: Path) -> None:
    jsonl = tmp_path / "good.jsonl"
    jsonl.write_text(
        '{"text": "Windows crashed again", "relevant": true, "intent": "complaint", "urgency": 0.9, "language": "en"}\n'
        "\n"
        '{"text": "clean the windows", "relevant": false}\n',
        encoding="utf-8",
    )
    got = load_labelled_messages(jsonl)
    assert got.text == ["Windows crashed again", "clean the windows"]
    assert got.relevant.tolist() == [True, False]
    assert got.label.tolist() == [0, IRRELEVANT]
    assert got.urgency[0] == pytest.approx(0.9) and got.urgency[1] == 0.0
    csv_file = tmp_path / "good.csv"
    csv_file.write_text(
        'text,relevant,intent,language\n"Office, help!",yes,support,en\nكم سعر Office؟,1,purchase,ar\nhi,no,,\n',
        encoding="utf-8",
    )
    got = load_source(MessageSource(path="good.csv"), base=tmp_path)
    assert got.text[0] == "Office, help!" and got.language == ["en", "ar", "und"]
    assert got.intent.tolist()[:2] == [1, 2]


@pytest.mark.parametrize(
    ("content", "suffix", "where", "field"),
    [
        ('{"text": "x", "relevant": "maybe", "intent": "praise"}\n', ".jsonl", ":1", "relevant"),
        (
            '{"text": "ok", "relevant": false}\n{"text": "x", "relevant": true, "intent": "rant"}\n',
            ".jsonl",
            ":2",
            "intent",
        ),
        ('{"text": "x", "relevant": true}\n', ".jsonl", ":1", "intent"),
        ('{"text": "", "relevant": false}\n', ".jsonl", ":1", "text"),
        ('{"text": "x", "relevant": false, "urgency": 2}\n', ".jsonl", ":1", "urgency"),
        ('{"text": "x", "relevant": false, "lang": "en"}\n', ".jsonl", ":1", "lang"),
        ("{not json\n", ".jsonl", ":1", None),
        ("text,relevant,intent\nfine,true,praise\nbad,perhaps,praise\n", ".csv", ":3", "relevant"),
        ("text,relevant,colour\nx,true,red\n", ".csv", ":1", "colour"),
    ],
)
def test_loader_rejects_bad_rows(tmp_path: Path, content: str, suffix: str, where: str, field: str | None) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_labelled_messages(path)
    message = str(exc.value)
    assert "\n" not in message
    assert exc.value.file == f"{path}{where}"
    assert message.startswith(f"{path}{where}")
    if field is not None:
        assert exc.value.field == field and "allowed" in message


def test_loader_reports_every_bad_row_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text('{"text": "a", "relevant": 3}\n{"text": "b", "relevant": true, "intent": "x"}\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_labelled_messages(path)
    assert len(exc.value.problems) == 2 and "1 more" in str(exc.value)
    with pytest.raises(ScenarioError, match="file not found"):
        load_labelled_messages(tmp_path / "nope.jsonl")
    other = tmp_path / "data.txt"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(ScenarioError, match="extension"):
        load_labelled_messages(other)
