"""Find and Classify (DESIGN §1.5): the mention stream, synthetic messages with ground truth, user-labelled files.

**Arrivals.** Each source (social, forum, messaging, email, chat, voice) emits stranger mentions as a
non-homogeneous Poisson process with rate ``base_rate_per_hour x diurnal(local hour) x burst(t)``, where the
diurnal curve (mean 1 over the day) is read at the source audience's local time and ``burst(t)`` is the burst
multiplier inside the union of viral windows (Poisson starts, ``per_year``; fixed ``duration_hours``) and 1
outside. Customers post about the brand at their own voice rate (posts per year) along the customer diurnal curve
at their own local time, with the same bursts. Both are drawn exactly by thinning: a homogeneous process at the
peak rate, plus an extra process at ``(multiplier - 1) x`` peak inside the burst windows, each point kept with
probability ``diurnal / max(diurnal)``. Everything is vectorised; only the text assembly loops over messages.

**Content.** A stranger mention is a needle (``relevant``) with probability ``needle_share``; a customer's post
is about the brand by definition and is always a needle. Needles get an intent (complaint, support, purchase,
question, praise, other), an urgency in [0, 1] (by intent, plus noise) and a language; haystack gets intent
``other`` and urgency 0. The text comes from :mod:`masssim.model.message_templates` with the traps of §1.5: brand
words used as everyday words, vertical-dependent words, hard negatives with the vertical's vocabulary, vague
needles, ambiguous texts whose truth is a coin flip, typos, code-mixing; the observed label is flipped with
probability ``label_noise`` (the truth is kept). ``difficulty`` in [0, 1] scales the share of traps, the typo
rate and the ambiguity, so that no classifier can be perfect once ``difficulty > 0``.

Randomness comes only from the :class:`numpy.random.Generator` passed in (see :mod:`masssim.model.streams`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from masssim.config.errors import ScenarioError
from masssim.config.mentions import (
    INTENTS,
    LANGUAGES,
    SOURCES,
    VERTICALS,
    BrandProfile,
    BurstConfig,
    MentionStreamConfig,
    MessageSource,
    SourceConfig,
    mention_stream_from_dict,
)
from masssim.model.message_templates import TEMPLATES

LABELS: tuple[str, ...] = (*INTENTS, "irrelevant")
IRRELEVANT = len(INTENTS)  # label code of haystack; intents are 0..5
OTHER = INTENTS.index("other")
STRANGER = -1
HOURS_PER_YEAR = 8766.0  # 365.25 days
TRAINING_STREAM_KEY = 9_001  # spawn key of the training-corpus child stream (never renumber)

# Kinds of message (which template family made the text), for diagnostics and tests.
KIND_CLEAR, KIND_VAGUE, KIND_AMBIGUOUS, KIND_EVERYDAY, KIND_HARD, KIND_CHATTER = range(6)
KINDS: tuple[str, ...] = ("clear", "vague", "ambiguous", "everyday", "hard", "chatter")


def _curve(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr / arr.mean()


# Hourly shapes by local hour 0..23, each normalised to mean 1 (so base_rate_per_hour is the daily mean).
DIURNAL_CURVES: dict[str, np.ndarray] = {
    "flat": np.ones(24),
    # Awake-hours activity (social posting, forums): trough 03:00-05:00, broad day, peak around 20:00-22:00.
    "evening": _curve([3, 2, 1.5, 1, 1, 1.2, 2, 4, 5, 6, 6, 6.5, 7, 6.5, 6, 6, 6.5, 7, 8, 9, 10, 9.5, 8, 5]),
    # Daytime (messaging apps): morning rise, plateau, early-evening taper.
    "daytime": _curve([1, 0.6, 0.5, 0.5, 0.5, 0.8, 2, 4, 7, 8, 8.5, 8.5, 8, 8, 8, 8, 7.5, 7, 6, 5, 4, 3, 2, 1.5]),
    # Business hours (email, chat and voice to a company): concentrated 09:00-17:00.
    "business_hours": _curve(
        [0.3, 0.2, 0.2, 0.2, 0.2, 0.3, 0.6, 1.5, 5, 9, 10, 10, 9, 9.5, 10, 9.5, 8, 5, 2, 1.2, 0.8, 0.6, 0.5, 0.4]
    ),
}


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerVoices:
    """Who can author a mention: per customer, posts about the brand per year and local time offset."""

    voice_rate_per_year: np.ndarray
    utc_offset_hours: np.ndarray | None = None

    @classmethod
    def from_population(cls, pop: Any) -> CustomerVoices:
        return cls(
            np.asarray(pop.voice_rate, dtype=np.float64),
            np.asarray(pop.utc_offset_seconds(), dtype=np.float64) / 3600.0,
        )


@dataclass
class Mentions:
    """The mention stream as a struct of arrays, sorted by time. Codes index SOURCES, INTENTS, LANGUAGES, LABELS."""

    time_s: np.ndarray  # float64 seconds from the start
    source: np.ndarray  # int8 index into SOURCES
    author: np.ndarray  # int64 customer index, or -1 for a stranger
    relevant: np.ndarray  # bool ground truth
    intent: np.ndarray  # int8 ground-truth intent (haystack: "other")
    urgency: np.ndarray  # float32 in [0, 1]; 0 for haystack
    language: np.ndarray  # int8 index into LANGUAGES
    text: list[str]
    true_label: np.ndarray  # int8: intent code for needles, IRRELEVANT for haystack
    noisy_label: np.ndarray  # int8: true_label flipped with probability label_noise
    kind: np.ndarray  # int8 index into KINDS (which template family)
    bursts_s: np.ndarray  # float64 [k, 2] viral windows (start, end), merged, seconds

    def __len__(self) -> int:
        return len(self.text)

    @property
    def priority(self) -> np.ndarray:
        return self.urgency

    @property
    def noisy_relevant(self) -> np.ndarray:
        return self.noisy_label != IRRELEVANT

    def labelled(self, *, observed: bool = True) -> LabelledMessages:
        """The messages as a labelled set: with the observed (noisy) labels, or the ground truth."""
        label = self.noisy_label if observed else self.true_label
        relevant = label != IRRELEVANT
        return LabelledMessages(
            text=list(self.text),
            relevant=relevant,
            intent=np.where(relevant, label, OTHER).astype(np.int8),
            urgency=self.urgency.copy(),
            language=[LANGUAGES[c] for c in self.language.tolist()],
        )


@dataclass
class LabelledMessages:
    text: list[str]
    relevant: np.ndarray  # bool
    intent: np.ndarray  # int8 index into INTENTS
    urgency: np.ndarray  # float32 in [0, 1]
    language: list[str]

    def __len__(self) -> int:
        return len(self.text)

    @property
    def label(self) -> np.ndarray:
        """int8: intent code for relevant messages, IRRELEVANT otherwise."""
        return np.where(self.relevant, self.intent, IRRELEVANT).astype(np.int8)


# --------------------------------------------------------------------------------------------------
# Arrivals
# --------------------------------------------------------------------------------------------------


def _local_hour(time_s: np.ndarray, offset_hours: float | np.ndarray) -> np.ndarray:
    return (np.floor(time_s / 3600.0 + offset_hours) % 24).astype(np.intp)


def _merge_windows(starts: np.ndarray, duration_s: float, horizon_s: float) -> np.ndarray:
    if len(starts) == 0:
        return np.zeros((0, 2))
    starts = np.sort(starts)
    merged: list[list[float]] = []
    for s in starts.tolist():
        e = min(s + duration_s, horizon_s)
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return np.asarray(merged, dtype=np.float64)


def draw_bursts(cfg: MentionStreamConfig, horizon_s: float, rng: np.random.Generator) -> np.ndarray:
    """Viral windows on [0, horizon_s): Poisson starts, merged where they overlap. Shape [k, 2], seconds."""
    count = rng.poisson(cfg.bursts.per_year * horizon_s / 3600.0 / HOURS_PER_YEAR)
    starts = rng.random(count) * horizon_s
    return _merge_windows(starts, cfg.bursts.duration_hours * 3600.0, horizon_s)


def _in_windows(time_s: np.ndarray, windows: np.ndarray) -> np.ndarray:
    if len(windows) == 0:
        return np.zeros(time_s.shape, dtype=bool)
    idx = np.searchsorted(windows[:, 0], time_s, side="right") - 1
    ok = idx >= 0
    inside = np.zeros(time_s.shape, dtype=bool)
    inside[ok] = time_s[ok] < windows[idx[ok], 1]
    return inside


def _candidates(
    rng: np.random.Generator, peak_per_h: float, horizon_s: float, windows: np.ndarray, multiplier: float
) -> np.ndarray:
    """Points of a process with rate ``peak`` on [0, horizon) and ``multiplier x peak`` inside the windows."""
    base = rng.random(rng.poisson(peak_per_h * horizon_s / 3600.0)) * horizon_s
    if len(windows) == 0 or multiplier <= 1.0:
        return base
    lengths = windows[:, 1] - windows[:, 0]
    n_extra = rng.poisson((multiplier - 1.0) * peak_per_h * lengths.sum() / 3600.0)
    pos = rng.random(n_extra) * lengths.sum()
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    which = np.clip(np.searchsorted(cum, pos, side="right") - 1, 0, len(lengths) - 1)
    extra = windows[which, 0] + (pos - cum[which])
    return np.concatenate([base, extra])


def stranger_rate_per_hour(
    cfg: MentionStreamConfig, time_s: np.ndarray, bursts_s: np.ndarray, reference_utc_offset_hours: float = 0.0
) -> np.ndarray:
    """The stranger mention rate (all sources, per hour) at the given instants: for tests and plots."""
    time_s = np.asarray(time_s, dtype=np.float64)
    rate = np.zeros(time_s.shape)
    for src in cfg.sources:
        local = _local_hour(time_s, src.utc_offset_hours - reference_utc_offset_hours)
        rate += src.base_rate_per_hour * DIURNAL_CURVES[src.diurnal][local]
    return np.where(_in_windows(time_s, bursts_s), cfg.bursts.multiplier, 1.0) * rate


def generate_mentions(
    cfg: MentionStreamConfig,
    horizon_s: float,
    rng: np.random.Generator,
    *,
    customers: CustomerVoices | None = None,
    bursts_s: np.ndarray | None = None,
    reference_utc_offset_hours: float = 0.0,
    content: LabelledMessages | None = None,
) -> Mentions:
    """The mention stream on [0, horizon_s): arrivals, authors, ground truth, text and observed labels.

    ``bursts_s`` (merged [k, 2] windows in seconds) replaces the random viral events when given. t = 0 is
    Monday 00:00 in the time zone ``reference_utc_offset_hours``; sources' and customers' diurnal curves are
    read at their own local hour. With ``content`` (a user's labelled messages, see
    :func:`draw_user_content`), each message's text and labels are drawn from it instead of the templates.
    """
    ref = reference_utc_offset_hours
    if not horizon_s > 0:
        raise ScenarioError("the horizon must be positive", field="horizon_s", value=horizon_s, allowed="> 0 seconds")
    windows = draw_bursts(cfg, horizon_s, rng) if bursts_s is None else np.asarray(bursts_s, np.float64).reshape(-1, 2)
    mult = cfg.bursts.multiplier
    times: list[np.ndarray] = []
    sources: list[np.ndarray] = []
    authors: list[np.ndarray] = []
    for src in cfg.sources:
        curve = DIURNAL_CURVES[src.diurnal]
        cand = _candidates(rng, src.base_rate_per_hour * curve.max(), horizon_s, windows, mult)
        keep = rng.random(len(cand)) * curve.max() < curve[_local_hour(cand, src.utc_offset_hours - ref)]
        t = cand[keep]
        times.append(t)
        sources.append(np.full(len(t), SOURCES.index(src.name), np.int8))
        authors.append(np.full(len(t), STRANGER, np.int64))
    if customers is not None and len(customers.voice_rate_per_year) > 0:
        voice = np.asarray(customers.voice_rate_per_year, dtype=np.float64)
        total = float(voice.sum())
        if total > 0:
            curve = DIURNAL_CURVES[cfg.customer_diurnal]
            cand = _candidates(rng, total / HOURS_PER_YEAR * curve.max(), horizon_s, windows, mult)
            who = np.searchsorted(np.cumsum(voice) / total, rng.random(len(cand)), side="right")
            who = np.minimum(who, len(voice) - 1)
            offset = 0.0 if customers.utc_offset_hours is None else np.asarray(customers.utc_offset_hours)[who]
            keep = rng.random(len(cand)) * curve.max() < curve[_local_hour(cand, offset - ref)]
            t = cand[keep]
            weights = np.array([s.base_rate_per_hour for s in cfg.sources], dtype=np.float64)
            weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(weights), 1 / len(weights))
            src_idx = np.minimum(
                np.searchsorted(np.cumsum(weights), rng.random(len(t)), side="right"), len(weights) - 1
            )
            codes = np.array([SOURCES.index(s.name) for s in cfg.sources], dtype=np.int8)
            times.append(t)
            sources.append(codes[src_idx])
            authors.append(who[keep].astype(np.int64))
    time_s = np.concatenate(times) if times else np.zeros(0)
    order = np.argsort(time_s, kind="stable")
    time_s = time_s[order]
    source = np.concatenate(sources)[order] if sources else np.zeros(0, np.int8)
    author = np.concatenate(authors)[order] if authors else np.zeros(0, np.int64)
    relevant = (author >= 0) | (rng.random(len(time_s)) < cfg.needle_share)
    drawn = _draw_content(cfg, rng, relevant) if content is None else draw_user_content(content, rng, relevant)
    return Mentions(time_s=time_s, source=source, author=author, bursts_s=windows, relevant=relevant, **drawn)


def reply_messages(
    cfg: MentionStreamConfig,
    time_s: np.ndarray,
    author: np.ndarray,
    source: np.ndarray,
    rng: np.random.Generator,
    *,
    needle_share: float,
    intent_shares: dict[str, float],
    content: LabelledMessages | None = None,
) -> Mentions:
    """Replies to outbound messages as inbound messages: given times (sorted), authors and sources.

    Content is drawn as for mentions (templates, languages, traps, typos, label noise) with the replies'
    own share of needles and intent mix.
    """
    n = len(time_s)
    relevant = rng.random(n) < needle_share
    if content is None:
        drawn = _draw_content(cfg.model_copy(update={"intent_shares": intent_shares}), rng, relevant)
    else:  # a user's messages carry their own intent mix
        drawn = draw_user_content(content, rng, relevant)
    return Mentions(
        time_s=np.asarray(time_s, np.float64),
        source=np.asarray(source, np.int8),
        author=np.asarray(author, np.int64),
        relevant=relevant,
        bursts_s=np.zeros((0, 2)),
        **drawn,
    )


def check_simulation_content(messages: LabelledMessages) -> None:
    """A user's messages can feed the simulated stream: both classes present (at least two of each, so a
    training and a stream share can be split off) and languages the responder pools know."""
    for code in sorted(set(messages.language)):
        if code == "und":
            raise ValueError(
                "some messages have no language (und); the simulated responders route by language, so give "
                f"every row a language column value ({', '.join(LANGUAGES)})"
            )
        if code not in LANGUAGES:
            raise ValueError(
                f"language {code!r} is not one the simulated responders handle ({', '.join(LANGUAGES)}); "
                "use those codes in the file's language column"
            )
    n_rel = int(np.count_nonzero(messages.relevant))
    if n_rel < 2 or len(messages) - n_rel < 2:
        raise ValueError(
            f"the file has {n_rel} relevant and {len(messages) - n_rel} irrelevant messages; the simulation "
            "needs at least 2 of each (needles and haystack are drawn apart)"
        )


def split_labelled(
    messages: LabelledMessages, rng: np.random.Generator, training_share: float = 0.5
) -> tuple[LabelledMessages, LabelledMessages]:
    """A stratified split of a user's messages: (training, stream), disjoint, both classes on each side."""
    train_rows: list[int] = []
    stream_rows: list[int] = []
    for mask in (messages.relevant, ~messages.relevant):
        rows = rng.permutation(np.flatnonzero(mask))
        k = min(max(1, round(training_share * rows.shape[0])), rows.shape[0] - 1)
        train_rows += rows[:k].tolist()
        stream_rows += rows[k:].tolist()

    def take(rows: list[int]) -> LabelledMessages:
        idx = np.sort(np.asarray(rows, dtype=np.int64))
        return LabelledMessages(
            text=[messages.text[i] for i in idx.tolist()],
            relevant=messages.relevant[idx],
            intent=messages.intent[idx],
            urgency=messages.urgency[idx],
            language=[messages.language[i] for i in idx.tolist()],
        )

    return take(train_rows), take(stream_rows)


def draw_user_content(messages: LabelledMessages, rng: np.random.Generator, relevant: np.ndarray) -> dict[str, Any]:
    """Content for messages whose relevance is already drawn: each needle takes a random relevant row of the
    user's file, each haystack message a random irrelevant row (with replacement). The file's labels are
    the ground truth and the observed labels alike (no label noise is added); ``kind`` is ``clear`` for
    needles and ``chatter`` for haystack (a user's message has no template family)."""
    relevant = np.asarray(relevant, dtype=bool)
    rel_rows = np.flatnonzero(messages.relevant)
    hay_rows = np.flatnonzero(~messages.relevant)
    pick = np.empty(relevant.shape[0], np.int64)
    n_rel = int(relevant.sum())
    pick[relevant] = rel_rows[rng.integers(0, rel_rows.shape[0], size=n_rel)]
    pick[~relevant] = hay_rows[rng.integers(0, hay_rows.shape[0], size=relevant.shape[0] - n_rel)]
    intent = np.where(relevant, messages.intent[pick], OTHER).astype(np.int8)
    codes = np.array([LANGUAGES.index(c) for c in messages.language], dtype=np.int8)
    true_label = np.where(relevant, intent, IRRELEVANT).astype(np.int8)
    texts = np.array(messages.text, dtype=object)
    return {
        "intent": intent,
        "urgency": np.where(relevant, messages.urgency[pick], 0.0).astype(np.float32),
        "language": codes[pick],
        "text": texts[pick].tolist(),
        "true_label": true_label,
        "noisy_label": true_label.copy(),
        "kind": np.where(relevant, KIND_CLEAR, KIND_CHATTER).astype(np.int8),
    }


# --------------------------------------------------------------------------------------------------
# Content and text
# --------------------------------------------------------------------------------------------------

_URGENCY_BY_INTENT = np.array([0.7, 0.6, 0.45, 0.3, 0.1, 0.15])  # complaint .. other


def _shares(keys: Sequence[str], shares: dict[str, float]) -> np.ndarray:
    p = np.array([shares.get(k, 0.0) for k in keys], dtype=np.float64)
    return np.cumsum(p / p.sum())


def _pick(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


def _kind_probabilities(cfg: MentionStreamConfig) -> tuple[float, float, float, float, float]:
    """(ambiguous, vague) among needles; (ambiguous, everyday, hard) among haystack."""
    d = cfg.difficulty
    s = min(max(cfg.needle_share, 1e-9), 0.5)
    amb_n = 0.4 * d
    vague_n = 0.25 * d
    amb_h = min(0.5, amb_n * s / (1.0 - s))  # as many ambiguous haystack texts as ambiguous needles
    trap = (0.3 + 0.6 * d) * (1.0 - amb_h)
    hard = trap * (0.15 + 0.5 * d)
    return amb_n, vague_n, amb_h, trap - hard, hard


def _draw_content(cfg: MentionStreamConfig, rng: np.random.Generator, relevant: np.ndarray) -> dict[str, Any]:
    n = len(relevant)
    language = _pick(_shares(LANGUAGES, cfg.language_shares), rng.random(n)).astype(np.int8)
    intent = np.where(relevant, _pick(_shares(INTENTS, cfg.intent_shares), rng.random(n)), OTHER).astype(np.int8)
    urgency = np.clip(_URGENCY_BY_INTENT[intent] + 0.15 * rng.standard_normal(n), 0.0, 1.0)
    urgency = np.where(relevant, urgency, 0.0).astype(np.float32)
    amb_n, vague_n, amb_h, everyday_h, hard_h = _kind_probabilities(cfg)
    u = rng.random(n)
    kind_rel = np.where(u < amb_n, KIND_AMBIGUOUS, np.where(u < amb_n + vague_n, KIND_VAGUE, KIND_CLEAR))
    kind_hay = np.select(
        [u < amb_h, u < amb_h + everyday_h, u < amb_h + everyday_h + hard_h],
        [KIND_AMBIGUOUS, KIND_EVERYDAY, KIND_HARD],
        KIND_CHATTER,
    )
    kind = np.where(relevant, kind_rel, kind_hay).astype(np.int8)
    text = _texts(cfg, rng, kind, intent, language)
    true_label = np.where(relevant, intent, IRRELEVANT).astype(np.int8)
    flip = rng.random(n) < cfg.label_noise
    shift = rng.integers(1, len(LABELS), size=n)
    noisy_label = np.where(flip, (true_label + shift) % len(LABELS), true_label).astype(np.int8)
    return {
        "intent": intent,
        "urgency": urgency,
        "language": language,
        "text": text,
        "true_label": true_label,
        "noisy_label": noisy_label,
        "kind": kind,
    }


def _texts(
    cfg: MentionStreamConfig, rng: np.random.Generator, kind: np.ndarray, intent: np.ndarray, language: np.ndarray
) -> list[str]:
    """Texts from the templates: each message's choices are drawn as numbers, then every distinct
    combination (template, brand form, word form, thing, code-mix) is formatted once and shared.

    Per message, seven uniforms pick: the brand word (u0), the template in its pool (u1), lower/title case
    (u2), brand name or a generic reference such as "your team" (u3, u4), the vertical's thing (u5) and
    code-mixing (u6)."""
    n = len(kind)
    d = cfg.difficulty
    vertical = cfg.brand.vertical
    words = list(cfg.brand.words)
    lowers = [w.lower() for w in words]
    nw = len(words)
    # Every template pool, flattened: pool_of[lang, kind, sub] (sub = intent for clear, word for everyday).
    templates: list[str] = []
    template_lang: list[int] = []
    pool_start: list[int] = []
    pool_len: list[int] = []
    width = max(len(INTENTS), nw)
    pool_of = np.zeros((len(LANGUAGES), len(KINDS), width), np.int64)
    things, generics, mixes = [], [], []
    for lg, lang in enumerate(LANGUAGES):
        t = TEMPLATES[lang]

        def add(pool: Sequence[str], lg: int = lg) -> int:
            pool_start.append(len(templates))
            pool_len.append(len(pool))
            templates.extend(pool)
            template_lang.extend([lg] * len(pool))
            return len(pool_start) - 1

        for it, name in enumerate(INTENTS):
            pool_of[lg, KIND_CLEAR, it] = add(
                list(t["relevant"][name]) + list(t["vertical_relevant"].get(vertical, {}).get(name, []))
            )
        pool_of[lg, KIND_VAGUE, :] = add(t["vague"])
        pool_of[lg, KIND_AMBIGUOUS, :] = add(t["ambiguous"])
        for w, low in enumerate(lowers):
            pool_of[lg, KIND_EVERYDAY, w] = add(list(t["everyday"]) + list(t["everyday_by_word"].get(low, [])))
        pool_of[lg, KIND_HARD, :] = add(t["hard"][vertical])
        pool_of[lg, KIND_CHATTER, :] = add(t["chatter"])
        things.append(list(t["things"][vertical]))
        generics.append(list(t["generic_ref"]))
        mixes.append(list(t["code_mix"]))
    p_name = 0.9 - 0.3 * d  # needles that name the brand (the rest say "you guys", "your team")
    p_case = 0.5 * d  # casing no longer tells a name from a word
    u = rng.random((n, 7)).T
    kind = np.asarray(kind, np.int64)
    lang_of = np.asarray(language, np.int64)
    w = (u[0] * nw).astype(np.int64)
    cased = u[2] < p_case
    sub = np.where(kind == KIND_CLEAR, intent, np.where(kind == KIND_EVERYDAY, w, 0))
    pool = pool_of[lang_of, np.minimum(kind, KIND_CHATTER), sub]
    template = np.asarray(pool_start)[pool] + (u[1] * np.asarray(pool_len)[pool]).astype(np.int64)
    named = (kind == KIND_CLEAR) | (kind == KIND_VAGUE)
    use_name = (kind == KIND_VAGUE) | (u[3] < p_name)
    n_generic = np.array([len(g) for g in generics], np.int64)[lang_of]
    generic = (u[4] * n_generic).astype(np.int64)
    # Brand form: 0 = the word itself; 1 + 2w + cased = the name; 1 + 2 nw + 2g + cased = a generic reference.
    brand = np.where(named, 1 + np.where(use_name, 2 * w, 2 * nw + 2 * generic) + cased.astype(np.int64), 0).astype(
        np.int64
    )
    word = 2 * w + cased
    thing = (u[5] * np.array([len(x) for x in things], np.int64)[lang_of]).astype(np.int64)
    has_mix = np.array([bool(m) for m in mixes])[lang_of]
    mixed = has_mix & (u[6] < cfg.code_mix_rate)
    n_brand = 1 + 2 * nw + 2 * int(max(len(g) for g in generics))
    n_thing = max(len(x) for x in things)
    key = (((template * n_brand + brand) * (2 * nw) + word) * n_thing + thing) * 2 + mixed
    unique, inverse = np.unique(key, return_inverse=True)
    formatted: list[str] = []
    for combination in unique.tolist():
        rest, mix = divmod(combination, 2)
        rest, th = divmod(rest, n_thing)
        rest, wd = divmod(rest, 2 * nw)
        tpl, br = divmod(rest, n_brand)
        lang = template_lang[tpl]
        the_word = lowers[wd // 2].capitalize() if wd % 2 else lowers[wd // 2]
        if br == 0:
            the_brand = the_word
        else:
            code, lower = divmod(br - 1, 2)
            the_brand = words[code] if code < nw else generics[lang][code - nw]
            if lower:
                the_brand = the_brand.lower()
        text = templates[tpl].format(brand=the_brand, word=the_word, thing=things[lang][th])
        if mix:
            for native, english in mixes[lang]:
                text = text.replace(native, english)
        formatted.append(text)
    table = np.array(formatted, dtype=object)
    return _add_typos(table[inverse.ravel()].tolist(), cfg.typo_rate * 2.0 * d, rng)


def _add_typos(texts: list[str], rate: float, rng: np.random.Generator) -> list[str]:
    """Per character, with probability ``rate``: swap with the next, drop, or double it."""
    if rate <= 0 or not texts:
        return texts
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    counts = rng.poisson(np.minimum(rate, 0.5) * lengths)
    total = int(counts.sum())
    pos_u = rng.random(total).tolist()
    op_u = rng.random(total).tolist()
    j = 0
    for i in np.flatnonzero(counts).tolist():
        chars = list(texts[i])
        for _ in range(int(counts[i])):
            if len(chars) < 2:
                break
            p = int(pos_u[j] * (len(chars) - 1))
            op = op_u[j]
            j += 1
            if op < 0.5:
                chars[p], chars[p + 1] = chars[p + 1], chars[p]
            elif op < 0.8:
                del chars[p]
            else:
                chars.insert(p, chars[p])
        texts[i] = "".join(chars)
    return texts


def training_corpus(
    cfg: MentionStreamConfig, n: int, rng: np.random.Generator, *, needle_share: float | None = None
) -> Mentions:
    """``n`` labelled messages for training a classifier, from a stream separate from the test stream.

    The draws come from a child of ``rng``'s seed sequence with the fixed key ``TRAINING_STREAM_KEY`` (or, if
    ``rng`` has no seed sequence, from ``rng.spawn``), so training texts are independent of the messages that
    :func:`generate_mentions` draws from ``rng`` itself. ``needle_share`` overrides the config's (e.g. 0.5 for a
    balanced training set). Times are 0; authors are strangers.
    """
    if n < 0:
        raise ScenarioError("the corpus size must be non-negative", field="n", value=n, allowed=">= 0")
    seq = getattr(rng.bit_generator, "seed_seq", None)
    if isinstance(seq, np.random.SeedSequence):
        child_seq = np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, TRAINING_STREAM_KEY))
        child = np.random.Generator(np.random.PCG64(child_seq))
    else:  # pragma: no cover - every masssim generator has a SeedSequence
        child = rng.spawn(1)[0]
    if needle_share is not None:
        cfg = cfg.model_copy(update={"needle_share": float(needle_share)})
    relevant = child.random(n) < cfg.needle_share
    content = _draw_content(cfg, child, relevant)
    return Mentions(
        time_s=np.zeros(n),
        source=np.zeros(n, np.int8),
        author=np.full(n, STRANGER, np.int64),
        relevant=relevant,
        bursts_s=np.zeros((0, 2)),
        **content,
    )


__all__ = [
    "DIURNAL_CURVES",
    "INTENTS",
    "IRRELEVANT",
    "KINDS",
    "LABELS",
    "LANGUAGES",
    "SOURCES",
    "VERTICALS",
    "BrandProfile",
    "BurstConfig",
    "CustomerVoices",
    "LabelledMessages",
    "MentionStreamConfig",
    "Mentions",
    "MessageSource",
    "SourceConfig",
    "draw_bursts",
    "generate_mentions",
    "mention_stream_from_dict",
    "stranger_rate_per_hour",
    "training_corpus",
]
