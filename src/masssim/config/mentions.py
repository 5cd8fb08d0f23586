"""The mention stream's configuration and vocabulary: sources, bursts, the brand, languages and intents.

Data only (pydantic models and names): the stream itself is drawn by :mod:`masssim.model.messages`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from masssim.config.errors import ScenarioError

SOURCES: tuple[str, ...] = ("social", "forum", "messaging", "email", "chat", "voice")
INTENTS: tuple[str, ...] = ("complaint", "support", "purchase", "question", "praise", "other")
LANGUAGES: tuple[str, ...] = ("en", "fr", "id", "ar", "te")
VERTICALS: tuple[str, ...] = ("software", "energy_drink", "clinic")

SourceName = Literal["social", "forum", "messaging", "email", "chat", "voice"]
DiurnalName = Literal["flat", "daytime", "evening", "business_hours"]
Vertical = Literal["software", "energy_drink", "clinic"]


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class _FieldProblem(ValueError):
    def __init__(self, field: str, value: Any, message: str) -> None:
        self.field = field
        self.value = value
        super().__init__(message)


class SourceConfig(_Model):
    name: SourceName = Field(description="where mentions are found")
    base_rate_per_hour: float = Field(
        ge=0.0, le=1e6, description="stranger mentions per hour, averaged over the day (before bursts)"
    )
    diurnal: DiurnalName = Field("evening", description="shape of the rate over the local day (mean 1)")
    utc_offset_hours: float = Field(0.0, ge=-12.0, le=14.0, description="local time of the audience minus UTC, hours")


def _default_sources() -> list[SourceConfig]:
    # Volumes of a mid-size consumer brand: public social dominates keyword matches; direct channels are small.
    return [
        SourceConfig(name="social", base_rate_per_hour=60.0, diurnal="evening"),
        SourceConfig(name="forum", base_rate_per_hour=8.0, diurnal="evening"),
        SourceConfig(name="messaging", base_rate_per_hour=6.0, diurnal="daytime"),
        SourceConfig(name="email", base_rate_per_hour=4.0, diurnal="business_hours"),
        SourceConfig(name="chat", base_rate_per_hour=3.0, diurnal="business_hours"),
        SourceConfig(name="voice", base_rate_per_hour=1.0, diurnal="business_hours"),
    ]


class BurstConfig(_Model):
    per_year: float = Field(6.0, ge=0.0, le=8766.0, description="viral events per year (Poisson starts)")
    multiplier: float = Field(5.0, ge=1.0, le=1000.0, description="rate multiplier while a viral event lasts")
    duration_hours: float = Field(12.0, gt=0.0, le=720.0, description="length of a viral event, hours")


class BrandProfile(_Model):
    words: list[str] = Field(
        default_factory=lambda: ["Windows", "Office"],
        min_length=1,
        max_length=16,
        description="the brand's names as written; the keyword query matches them case-insensitively",
    )
    vertical: Vertical = Field("software", description="the brand's business; decides what ambiguous words mean")

    @model_validator(mode="after")
    def _words_ok(self) -> BrandProfile:
        for word in self.words:
            if not word.strip() or any(c in word for c in "{}"):
                raise _FieldProblem("words", word, "a brand word must be non-empty text without braces")
        return self


def _default_language_shares() -> dict[str, float]:
    return {"en": 0.5, "fr": 0.15, "id": 0.15, "ar": 0.1, "te": 0.1}


def _default_intent_shares() -> dict[str, float]:
    return {"complaint": 0.25, "support": 0.3, "purchase": 0.15, "question": 0.15, "praise": 0.1, "other": 0.05}


class MentionStreamConfig(_Model):
    """The Find stream and the synthetic messages.

    ``needle_share`` defaults to 0.05: the share of keyword-matched stranger mentions that concern the brand.
    This is a modelling assumption, not a measurement: social-listening practice is that a bare keyword query on
    a brand whose name is an everyday word ("windows", "office", "apple") returns mostly unrelated posts and
    needs exclusion rules, i.e. the needles are a small minority. 5% is an order of magnitude for such a brand;
    sweep it (e.g. 0.01-0.5) rather than trusting it.
    """

    sources: list[SourceConfig] = Field(default_factory=_default_sources, min_length=1, max_length=32)
    bursts: BurstConfig = Field(default_factory=BurstConfig)
    customer_diurnal: DiurnalName = Field("evening", description="shape over the local day of customers' posts")
    needle_share: float = Field(
        0.05, ge=0.0, le=1.0, description="share of stranger mentions that concern the brand (the rest is haystack)"
    )
    language_shares: dict[str, float] = Field(
        default_factory=_default_language_shares, description="share of messages per language code"
    )
    intent_shares: dict[str, float] = Field(
        default_factory=_default_intent_shares, description="share of needles per intent"
    )
    brand: BrandProfile = Field(default_factory=BrandProfile)
    difficulty: float = Field(
        0.3, ge=0.0, le=1.0, description="0 = clean, separable text; 1 = many traps, typos and ambiguous texts"
    )
    label_noise: float = Field(0.03, ge=0.0, le=0.5, description="probability that an observed label is wrong")
    typo_rate: float = Field(
        0.02, ge=0.0, le=0.2, description="typos per character at difficulty 0.5 (scaled by 2 x difficulty)"
    )
    code_mix_rate: float = Field(
        0.2, ge=0.0, le=1.0, description="share of non-English messages that mix in English words"
    )

    @model_validator(mode="after")
    def _check(self) -> MentionStreamConfig:
        for name, shares, allowed in (
            ("language_shares", self.language_shares, LANGUAGES),
            ("intent_shares", self.intent_shares, INTENTS),
        ):
            for key in shares:
                if key not in allowed:
                    raise _FieldProblem(name, key, f"unknown key; allowed: {', '.join(allowed)}")
            values = list(shares.values())
            if not values or any(v < 0 for v in values) or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
                raise _FieldProblem(name, shares, "shares must be non-negative and sum to 1")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise _FieldProblem("sources", names, "source names must be distinct")
        return self


class MessageSource(_Model):
    """A user's own labelled messages, used instead of the synthetic ones (schema: :func:`load_labelled_messages`)."""

    path: str = Field(min_length=1, description="a .jsonl or .csv file of labelled messages")
    format: Literal["auto", "jsonl", "csv"] = Field("auto", description="file format; auto = by extension")


def mention_stream_from_dict(data: Any, *, file: str | None = None) -> MentionStreamConfig:
    """Validate a plain dict into a :class:`MentionStreamConfig`, raising :class:`ScenarioError` on problems."""
    try:
        return MentionStreamConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        ctx = err.get("ctx", {}).get("error")
        if isinstance(ctx, _FieldProblem):
            field = f"{loc}.{ctx.field}" if loc else ctx.field
            raise ScenarioError(str(ctx), file=file, field=field, value=ctx.value) from None
        if err["type"] == "extra_forbidden":
            raise ScenarioError("unknown field", file=file, field=loc) from None
        raise ScenarioError(
            "value not allowed", file=file, field=loc, value=err.get("input"), allowed=err["msg"]
        ) from None
