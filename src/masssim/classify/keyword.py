"""The naive baseline: a message is relevant iff it contains a brand keyword.

This is what a keyword alert does, and it falls into every trap of the haystack: "clean the windows in my
office" matches a software brand named like Windows or Office. Intent is the first intent (in the order
complaint, support, purchase, question, praise) any of whose cue words appears; otherwise ``other``.
Matching is case-insensitive on whole words (a cue of one punctuation character, like ``?``, matches
anywhere).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from masssim.classify.base import (
    INTENT_NAMES,
    ClassifierBase,
    ClassifierParams,
    Intent,
    Labels,
    check_texts,
    priority_from,
)
from masssim.classify.registry import register_classifier

DEFAULT_CUES: dict[str, list[str]] = {
    "complaint": ["refund", "broken", "crash", "crashes", "crashing", "worst", "terrible", "awful", "angry"],
    "support": ["help", "error", "fix", "install", "reset", "password", "support", "stuck", "how do i"],
    "purchase": ["buy", "price", "pricing", "cost", "order", "subscription", "license", "discount"],
    "question": ["?", "anyone know", "does", "is there", "why"],
    "praise": ["love", "great", "awesome", "thanks", "thank you", "amazing", "best"],
}


class KeywordParams(ClassifierParams):
    brand_keywords: list[str] = Field(
        default_factory=lambda: ["windows", "office"], min_length=1, description="words that make a message relevant"
    )
    intent_cues: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_CUES.items()},
        description="cue words per intent (complaint, support, purchase, question, praise)",
    )


def _pattern(words: Sequence[str]) -> re.Pattern[str] | None:
    parts = []
    for raw in words:
        w = raw.strip().lower()
        if not w:
            continue
        # Whole words for words; punctuation cues (like "?") anywhere.
        parts.append(rf"\b{re.escape(w)}\b" if w[0].isalnum() and w[-1].isalnum() else re.escape(w))
    return re.compile("|".join(parts)) if parts else None


@register_classifier("keyword")
class KeywordClassifier(ClassifierBase):
    """Relevant iff any brand keyword appears; intent from cue words; priority from intent."""

    Params = KeywordParams
    params: KeywordParams

    def __init__(self, params: KeywordParams | None = None) -> None:
        super().__init__(params)
        unknown = set(self.params.intent_cues) - set(INTENT_NAMES[:-1])
        if unknown:
            raise ValueError(f"intent_cues has unknown intents {sorted(unknown)}; allowed: {INTENT_NAMES[:-1]}")
        self._brand = _pattern(self.params.brand_keywords)
        if self._brand is None:
            raise ValueError("brand_keywords must contain at least one non-empty word")
        # Checked in intent-code order, so the first match wins.
        self._cues = [
            (code, pat)
            for code, name in enumerate(INTENT_NAMES[:-1])
            if (pat := _pattern(self.params.intent_cues.get(name, ()))) is not None
        ]

    def classify(self, texts: Sequence[str]) -> Labels:
        check_texts(texts)
        n = len(texts)
        if n == 0:
            return Labels.empty()
        lowered = [t.lower() for t in texts]
        brand = self._brand
        assert brand is not None
        relevant = np.fromiter((brand.search(t) is not None for t in lowered), dtype=bool, count=n)
        intent = np.full(n, Intent.OTHER, dtype=np.int8)
        undecided = np.ones(n, dtype=bool)
        for code, pat in self._cues:
            hit = np.fromiter((pat.search(t) is not None for t in lowered), dtype=bool, count=n) & undecided
            intent[hit] = code
            undecided &= ~hit
        prob = relevant.astype(np.float32)
        return Labels(prob, intent, priority_from(prob, intent))
