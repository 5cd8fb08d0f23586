"""The scenario schema: every field, its defaults, and the errors a user can act on.

Every field has a type, a unit in its name where it has one, a range and a default. The schema is data: it
imports nothing above :mod:`masssim.config`. Checks that need a plug-in, a message file or a calibration file
are made when a scenario is loaded, by :mod:`masssim.scenario.load`, so a run never dies an hour in on a typo.
The sources of the defaults are in ``docs/model.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from masssim.config.errors import toml_key
from masssim.config.mentions import INTENTS, LANGUAGES, MentionStreamConfig, MessageSource
from masssim.config.mentions import _FieldProblem as _MessageFieldProblem

CHANNEL_NAMES: tuple[str, ...] = ("email", "sms", "messaging", "paid_social")
YEAR_DAYS = 365.25  # the simulator's year (leap years averaged), as in the engine's clock
MAX_PURCHASES_PER_YEAR = 365.0  # category purchases per customer per year: at most about one a day

ChannelName = Literal["email", "sms", "messaging", "paid_social"]
# A channel preference order (first choice first): each planned contact goes on the first channel that takes
# it (see docs/model.md, "Channel mixes").
# Distinct and non-empty are checked by _check_channel_order, which says so in words.
ChannelOrder = list[ChannelName]


def _check_channel_order(field: str, order: Sequence[str] | None) -> None:
    if order is not None and not order:
        raise _FieldProblem(field, order, "a channel order needs at least one channel")
    if order is not None and len(set(order)) != len(order):
        raise _FieldProblem(field, order, "each channel may appear once in a channel order")


class _Model(BaseModel):
    # strict: a number written as a string in TOML ("5") is a mistake, not something to coerce.
    # allow_inf_nan=False: TOML can spell inf and nan, and neither is a meaningful rate, share or cost.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


# A label that may become a folder name under --out: one path component, never "." or ".." (no leading dot).
NAME_PATTERN = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$"
# Labels that never become folder names (arms, pools).
LABEL_PATTERN = r"^[A-Za-z0-9_.\-]+$"
_PATTERN_WORDS = {
    NAME_PATTERN: "letters, digits, '_', '-' and '.', not starting with '.'",
    LABEL_PATTERN: "letters, digits, '_', '-' and '.'",
}
# Deeper nesting than this is refused when a scenario is read: the schema itself is at most 5 levels deep,
# and unbounded depth makes the recursive code downstream (validation, copying, JSON) run out of stack.
MAX_DEPTH = 32


Share = Annotated[float, Field(ge=0.0, le=1.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class Region(_Model):
    name: str = Field(min_length=1, description="region label")
    utc_offset_hours: float = Field(ge=-12.0, le=14.0, description="local time minus UTC, hours")
    share: float = Field(gt=0.0, le=1.0, description="share of customers living here")


def _default_regions() -> list[Region]:
    # Four regions spread over the day, so that "send at 10:00" means four different instants.
    return [
        Region(name="americas", utc_offset_hours=-5.0, share=0.35),
        Region(name="europe", utc_offset_hours=1.0, share=0.30),
        Region(name="india", utc_offset_hours=5.5, share=0.15),
        Region(name="southeast_asia", utc_offset_hours=7.0, share=0.20),
    ]


class PopulationConfig(_Model):
    customers: int = Field(100_000, ge=100, le=200_000_000, description="number of customers N")
    taste_dims: int = Field(8, ge=1, le=64, description="topics d of latent taste")
    persona_signal: float = Field(
        0.3, ge=0.0, le=1.0, description="rho: share of taste variance that observables explain"
    )
    taste_tail_dof: float = Field(
        5.0, gt=2.0, le=1000.0, description="nu: Student-t degrees of freedom of idiosyncratic taste"
    )
    regions: list[Region] = Field(default_factory=_default_regions, min_length=1, max_length=64)
    age_band_shares: list[float] = Field(
        default_factory=lambda: [0.12, 0.20, 0.20, 0.18, 0.30],
        min_length=1,
        max_length=16,
        description="shares of age bands 18-24, 25-34, 35-44, 45-54, 55+",
    )
    income_band_shares: list[float] = Field(
        default_factory=lambda: [0.25, 0.35, 0.25, 0.15],
        min_length=1,
        max_length=16,
        description="shares of income bands, lowest first",
    )
    crm_loyalty_signal: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="correlation of the first CRM score with warmth toward our brand (past buying); 0 = none",
    )
    crm_scores: int = Field(
        0,
        ge=0,
        le=16,
        description="continuous CRM signals per customer (standard normal scores) that join the observables",
    )
    category_rate_observable_loading: float = Field(
        0.0,
        ge=0.0,
        le=2.0,
        description="how strongly observables shift the category purchase rate (0 = pure NBD)",
    )
    active_window_hours: float = Field(
        4.0, ge=1.0, le=24.0, description="mean length of a customer's daily active window, hours"
    )
    voice_posts_per_year: float = Field(
        2.0, ge=0.0, le=1000.0, description="mean rate at which a customer posts about the brand"
    )
    declared_taste_share: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="share of customers whose taste is declared from the start (preference centre, surveys)",
    )
    declared_taste_noise_sd: float = Field(
        0.5, ge=0.0, le=10.0, description="sigma_decl: declared taste = latent taste + N(0, sigma_decl^2) per topic"
    )
    patience_median_minutes: float = Field(
        30.0, gt=0.0, le=10_080.0, description="median minutes a customer waits for an answer"
    )

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> PopulationConfig:
        if self.crm_loyalty_signal > 0 and self.crm_scores < 1:
            raise _FieldProblem(
                "crm_loyalty_signal", self.crm_loyalty_signal, "needs at least one CRM score (crm_scores >= 1)"
            )
        for name, shares in (
            ("regions", [r.share for r in self.regions]),
            ("age_band_shares", self.age_band_shares),
            ("income_band_shares", self.income_band_shares),
        ):
            if any(s < 0 for s in shares) or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
                raise _FieldProblem(name, shares, "shares must be non-negative and sum to 1")
        return self


class Brand(_Model):
    name: str = Field(min_length=1)
    market_share: float = Field(gt=0.0, lt=1.0, description="long-run share of category purchases")


def _default_brands() -> list[Brand]:
    return [
        Brand(name="ours", market_share=0.20),
        Brand(name="rival_a", market_share=0.30),
        Brand(name="rival_b", market_share=0.20),
        Brand(name="rival_c", market_share=0.10),
        Brand(name="other_brands", market_share=0.20),
    ]


class MarketConfig(_Model):
    brands: list[Brand] = Field(
        default_factory=_default_brands,
        min_length=2,
        max_length=32,
        description="brands of the category; the first is ours",
    )
    category_purchases: float = Field(
        6.0,
        gt=0.0,
        le=365_250.0,
        description="M: mean category purchases per customer in period_days (as published for that period)",
    )
    period_days: float = Field(
        YEAR_DAYS,
        ge=1.0,
        le=3652.5,
        description="the period category_purchases refers to, days; the market section reports this period",
    )
    category_rate_shape: float = Field(
        0.8, gt=0.0, le=100.0, description="K: Gamma shape of category purchase rates (NBD heterogeneity)"
    )
    dirichlet_s: float = Field(1.2, gt=0.0, le=100.0, description="S: Dirichlet polarisation parameter of brand choice")
    price: float = Field(30.0, gt=0.0, le=1e7, description="our revenue per purchase, currency units")
    gross_margin_share: float = Field(0.4, gt=0.0, le=1.0, description="gross margin as share of revenue")

    @model_validator(mode="before")
    @classmethod
    def _per_year_is_a_period_of_a_year(cls, data: Any) -> Any:
        """``category_purchases_per_year = M`` (the older spelling) means ``category_purchases = M`` with
        ``period_days`` a year; mixing the two spellings is refused, so a rate never silently means another."""
        if not isinstance(data, dict) or "category_purchases_per_year" not in data:
            return data
        given = data["category_purchases_per_year"]
        if "category_purchases" in data or "period_days" in data:
            raise _FieldProblem(
                "category_purchases_per_year",
                given,
                "give the rate one way: either category_purchases_per_year alone, or category_purchases "
                "(M per period) with period_days; delete category_purchases_per_year",
            )
        rest = {key: value for key, value in data.items() if key != "category_purchases_per_year"}
        return {**rest, "category_purchases": given}  # period_days keeps its default, a year

    @property
    def category_purchases_per_year(self) -> float:
        """M per year (365.25 days): the rate the population is drawn with. Exact when the period is a year."""
        return self.category_purchases * (YEAR_DAYS / self.period_days)

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> MarketConfig:
        if self.category_purchases_per_year > MAX_PURCHASES_PER_YEAR:
            raise _FieldProblem(
                "category_purchases",
                self.category_purchases,
                f"at most {MAX_PURCHASES_PER_YEAR:g} purchases per customer per year "
                f"({MAX_PURCHASES_PER_YEAR * self.period_days / YEAR_DAYS:g} in period_days = {self.period_days:g})",
            )
        shares = [b.market_share for b in self.brands]
        if not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
            raise _FieldProblem("brands", shares, "market_share of the brands must sum to 1")
        names = [b.name for b in self.brands]
        if len(set(names)) != len(names):
            raise _FieldProblem("brands", names, "brand names must be distinct")
        return self


class ChannelConfig(_Model):
    """One channel's economics and benchmark response rates (defaults per channel in ``CHANNEL_DEFAULTS``)."""

    reach: Probability = Field(description="probability a customer of the youngest age band is opted in / reachable")
    reach_age_slope: float = Field(
        0.0, ge=-1.0, le=1.0, description="change in log-odds of reach per age band above the youngest"
    )
    paid: bool = Field(False, description="priced per thousand impressions (CPM) instead of per send")
    cost_per_send: float = Field(0.0, ge=0.0, le=100.0, description="currency per message sent")
    cpm: float = Field(0.0, ge=0.0, le=10_000.0, description="currency per thousand impressions (paid)")
    narrow_audience_eta: float = Field(
        0.0, ge=0.0, le=2.0, description="eta: CPM premium exponent for audiences below the reference size"
    )
    reference_audience: int = Field(1_000_000, ge=1, le=10**10, description="audience size with no premium")
    min_audience: int = Field(0, ge=0, le=10**9, description="smallest audience the platform accepts")
    delivery_rate: Probability = Field(description="share of sends that are delivered")
    delivery_latency_minutes: float = Field(1.0, ge=0.0, le=10_080.0)
    open_rate: Probability = Field(description="benchmark P(open | delivered) with no fatigue")
    open_delay_median_minutes: float = Field(gt=0.0, le=100_000.0)
    open_delay_sigma: float = Field(1.0, ge=0.0, le=5.0, description="lognormal sigma of the open delay")
    opens_wait_for_active_window: bool = Field(
        True, description="reads happen only in the customer's daily active window"
    )
    recorded_open_inflation: Probability = Field(
        0.0, description="share of delivered messages recorded as opened though never read (pre-fetch)"
    )
    click_to_open: Probability = Field(description="benchmark P(click | open) at zero affinity/fatigue")
    unsubscribe_rate: Probability = Field(description="benchmark P(unsubscribe | delivered), no fatigue")
    reply_rate: Probability = Field(0.0, description="P(reply | open); a reply starts a conversation")
    fatigue_open_kappa: float = Field(0.15, ge=0.0, le=10.0, description="kappa: open-rate loss per unit fatigue")
    capacity_per_hour: float = Field(gt=0.0, le=1e12, description="sends the channel can push per hour")
    quiet_hours_start: int | None = Field(None, ge=0, le=23, description="local hour quiet hours begin")
    quiet_hours_end: int | None = Field(None, ge=0, le=23, description="local hour quiet hours end")
    frequency_cap_per_week: int = Field(7, ge=0, le=10_000, description="max sends per customer per week")
    adstock_per_open: float = Field(0.02, ge=0.0, le=10.0, description="adstock added by a read")
    adstock_per_click: float = Field(0.3, ge=0.0, le=10.0, description="adstock added by a click")

    @model_validator(mode="after")
    def _quiet_hours_pair(self) -> ChannelConfig:
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            raise _FieldProblem(
                "quiet_hours_start",
                self.quiet_hours_start,
                "quiet_hours_start and quiet_hours_end must be given together",
            )
        if self.paid and self.cpm <= 0:
            raise _FieldProblem("cpm", self.cpm, "a paid channel needs a cpm above 0")
        return self


# Defaults are sourced in docs/model.md ("Channel defaults").
CHANNEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "email": {
        "reach": 0.85,
        "cost_per_send": 0.001,
        "delivery_rate": 0.98,
        "delivery_latency_minutes": 1.0,
        "open_rate": 0.21,
        "open_delay_median_minutes": 90.0,
        "open_delay_sigma": 1.2,
        "opens_wait_for_active_window": True,
        "recorded_open_inflation": 0.35,
        "click_to_open": 0.1228,  # 2.62% clicks / 21.33% opens
        "unsubscribe_rate": 0.0026,
        "reply_rate": 0.0,
        "capacity_per_hour": 2_000_000.0,
        "frequency_cap_per_week": 7,
    },
    "sms": {
        "reach": 0.45,
        "reach_age_slope": -0.1,
        "cost_per_send": 0.0079,
        "delivery_rate": 0.97,
        "delivery_latency_minutes": 0.2,
        "open_rate": 0.95,
        "open_delay_median_minutes": 3.0,
        "open_delay_sigma": 1.0,
        "opens_wait_for_active_window": False,
        "click_to_open": 0.10,
        "unsubscribe_rate": 0.01,
        "reply_rate": 0.02,
        "capacity_per_hour": 270_000.0,
        "quiet_hours_start": 21,
        "quiet_hours_end": 8,
        "frequency_cap_per_week": 2,
    },
    "messaging": {
        "reach": 0.30,
        "reach_age_slope": -0.15,
        "cost_per_send": 0.025,
        "delivery_rate": 0.95,
        "delivery_latency_minutes": 0.1,
        "open_rate": 0.80,
        "open_delay_median_minutes": 10.0,
        "open_delay_sigma": 1.2,
        "opens_wait_for_active_window": False,
        "click_to_open": 0.4375,
        "unsubscribe_rate": 0.005,
        "reply_rate": 0.05,
        "capacity_per_hour": 288_000.0,
        "quiet_hours_start": 21,
        "quiet_hours_end": 8,
        "frequency_cap_per_week": 2,
    },
    "paid_social": {
        "reach": 0.60,
        "paid": True,
        "cpm": 8.0,
        "narrow_audience_eta": 0.3,
        "reference_audience": 1_000_000,
        "min_audience": 1_000,
        "delivery_rate": 1.0,
        "delivery_latency_minutes": 0.0,
        "open_rate": 0.70,
        "open_delay_median_minutes": 60.0,
        "open_delay_sigma": 1.5,
        "opens_wait_for_active_window": True,
        "click_to_open": 0.0129,
        "unsubscribe_rate": 0.0005,
        "reply_rate": 0.0,
        "capacity_per_hour": 1e9,
        "frequency_cap_per_week": 10,
        "adstock_per_open": 0.01,
    },
}


class ChannelsConfig(_Model):
    """Overrides of the built-in channels; a field not given keeps the channel's default."""

    email: ChannelConfig
    sms: ChannelConfig
    messaging: ChannelConfig
    paid_social: ChannelConfig

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return data  # pydantic reports the type error
        merged: dict[str, Any] = {}
        for name, defaults in CHANNEL_DEFAULTS.items():
            given = data.get(name, {})
            merged[name] = {**defaults, **given} if isinstance(given, dict) else given
        for name, given in data.items():
            if name not in merged:
                merged[name] = given  # rejected as an unknown key, with a hint
        return merged

    def by_name(self) -> dict[str, ChannelConfig]:
        return {name: getattr(self, name) for name in CHANNEL_NAMES}


class ResponseConfig(_Model):
    """How customers respond to contacts (DESIGN §1.3)."""

    affinity_click_beta: float = Field(0.8, ge=0.0, le=10.0, description="beta: click log-odds per unit affinity")
    warmth_click_delta: float = Field(0.3, ge=0.0, le=10.0, description="delta: click log-odds per unit warmth")
    fatigue_click_gamma: float = Field(0.1, ge=0.0, le=10.0, description="gamma: click log-odds lost per fatigue")
    fatigue_unsubscribe_zeta: float = Field(
        0.3, ge=0.0, le=10.0, description="zeta: unsubscribe log-odds gained per unit fatigue"
    )
    fatigue_time_constant_days: float = Field(
        3.0, gt=0.0, le=365.0, description="tau_f: a contact's fatigue decays as exp(-dt/tau_f)"
    )
    adstock_half_life_days: float = Field(7.0, gt=0.0, le=365.0)
    direct_purchase_per_click: Probability = Field(0.08, description="P(a click starts an immediate purchase occasion)")
    pull_forward_share: Probability = Field(
        0.5, description="P(a click-triggered occasion replaces the customer's next organic one)"
    )


class CreativesConfig(_Model):
    count: int = Field(6, ge=1, le=8_000_000, description="creatives in the catalogue")
    production_cost: float = Field(500.0, ge=0.0, le=1e9, description="currency per creative put into use")
    quality_sd: float = Field(
        0.3, ge=0.0, le=5.0, description="sd of each creative's quality: a click log-odds shift for everyone"
    )


class ScheduleConfig(_Model):
    wave_every_days: int = Field(1, ge=1, le=365, description="days between outbound waves")
    first_wave_day: int = Field(0, ge=0, le=3650, description="day of the first wave (day 0 is a Monday)")
    send_hour: float = Field(10.0, ge=0.0, lt=24.0, description="hour of day a wave is sent")
    send_in_local_time: bool = Field(True, description="send_hour is each customer's local time")
    channel: Literal["email", "sms", "messaging", "paid_social"] = Field(
        "email", description="channel the built-in policies use"
    )
    channels: ChannelOrder | None = Field(
        None,
        description="channel preference order for every arm without its own: each planned contact goes on the "
        "first channel that takes it (opted in, under its cap, capacity and budget); replaces channel",
    )

    @model_validator(mode="after")
    def _order_distinct(self) -> ScheduleConfig:
        _check_channel_order("channels", self.channels)
        return self


class HoldoutConfig(_Model):
    share: float = Field(0.1, gt=0.0, le=0.9, description="share of customers never contacted")


class AttributionConfig(_Model):
    window_days: float = Field(7.0, gt=0.0, le=365.0, description="a purchase this soon after a click is attributed")


class DiagnosticsConfig(_Model):
    """Measurements only a simulator can make (it knows latent taste); they never change the outcome."""

    fanatic_top_share: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="customers with the strongest taste (top share by |theta|) tracked as fanatics; 0 = off",
    )


class Arm(BaseModel):
    """One targeting strategy run on the population; its extra keys are the policy's parameters."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=64, pattern=LABEL_PATTERN, description="arm label")
    policy: str = Field(min_length=1, description="registered policy name or module:attr")
    channels: ChannelOrder | None = Field(
        None,
        description="this arm's channel preference order (overrides schedule.channels); the policy picks who "
        "and what, the engine picks the channel",
    )

    @model_validator(mode="after")
    def _order_alone(self) -> Arm:
        _check_channel_order("channels", self.channels)
        if self.channels is not None and "channel" in (self.model_extra or {}):
            raise _FieldProblem(
                "channels", self.channels, "give an arm either one channel or a channel order (channels), not both"
            )
        return self

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def channel_order(self, schedule: ScheduleConfig) -> list[str] | None:
        """The arm's channel preference order: its own, else the schedule's unless the arm's policy was given
        one channel of its own; None when the arm sends each contact on the channel its policy names."""
        if self.channels is not None:
            return list(self.channels)
        if schedule.channels is not None and "channel" not in (self.model_extra or {}):
            return list(schedule.channels)
        return None


def _default_arms() -> list[Arm]:
    return [Arm(name="broadcast", policy="broadcast")]


class CoreConfig(_Model):
    """The classification core as a batch server (``engine/inbound.py``, ``CoreServer``)."""

    batch_size: int = Field(32, ge=1, le=100_000, description="messages per batch at most")
    replicas: int = Field(1, ge=1, le=10_000, description="identical workers serving batches")
    a_s: float = Field(0.05, ge=0.0, le=3600.0, description="fixed seconds per batch")
    b_s: float = Field(0.002, ge=0.0, le=3600.0, description="seconds per message in a batch")
    max_wait_s: float = Field(1.0, ge=0.0, le=86_400.0, description="a batch is sent this long after it opened")
    calibration: str | None = Field(
        None,
        min_length=1,
        description="a file written by `masssim bench --calibrate` (relative to the scenario file); its a_s, b_s "
        "(and replicas, batch_size) replace the defaults, fields set here win",
    )

    cost_per_1000: float = Field(0.01, ge=0.0, le=1e6, description="cost of classifying 1,000 messages, currency")


class PoolConfig(_Model):
    """A responder pool: agents (bots or people) answering the mentions the response policy routes to it."""

    name: str = Field(min_length=1, max_length=64, pattern=LABEL_PATTERN, description="pool label")
    agents: int = Field(ge=0, le=1_000_000, description="agents on shift (humans follow the policy's mode)")
    kind: Literal["bot", "human"] = Field("human", description="bots are always on; humans follow the mode")
    handle_time_median_minutes: float = Field(gt=0.0, le=10_080.0, description="median minutes per answer")
    handle_time_sigma: float = Field(0.6, ge=0.0, le=5.0, description="lognormal sigma of the handle time")
    handle_time_median_minutes_by_intent: dict[str, float] = Field(
        default_factory=dict, description="median minutes per answer for some intents (others: the pool's median)"
    )
    languages: list[str] | None = Field(None, description="language codes the pool handles; absent = all")
    discipline: Literal["fifo", "priority"] = Field("fifo", description="queue order")
    cost_per_agent_hour: float = Field(0.0, ge=0.0, le=1e6, description="cost of one agent on shift for an hour")
    cost_per_conversation: float = Field(0.0, ge=0.0, le=1e6, description="cost of each conversation taken")

    @model_validator(mode="after")
    def _languages_known(self) -> PoolConfig:
        for key, minutes in self.handle_time_median_minutes_by_intent.items():
            field = f"handle_time_median_minutes_by_intent.{toml_key(key)}"
            if key not in INTENTS:
                raise _FieldProblem(field, key, f"unknown intent; allowed: {', '.join(INTENTS)}")
            if not (0 < minutes <= 10_080 and math.isfinite(minutes)):
                raise _FieldProblem(field, minutes, "a median handle time in minutes, in (0, 10080]")
        for code in self.languages or []:
            if code not in LANGUAGES:
                raise _FieldProblem("languages", code, f"unknown language; allowed: {', '.join(LANGUAGES)}")
        return self


def _default_pools() -> list[PoolConfig]:
    # Index 0 is the bot, index 1 the humans: the built-in response policies route by these indices.
    return [
        PoolConfig(
            name="bot",
            agents=20,
            kind="bot",
            handle_time_median_minutes=0.5,
            handle_time_sigma=0.3,
            cost_per_conversation=0.10,
        ),
        PoolConfig(
            name="human",
            agents=10,
            kind="human",
            handle_time_median_minutes=6.0,
            discipline="priority",
            cost_per_agent_hour=30.0,
        ),
    ]


class OutcomesConfig(_Model):
    """What conversations lead to (``engine/conversations.py``); probabilities and half-lives."""

    satisfaction_max: float = Field(0.85, ge=0.0, le=1.0, description="P(satisfied) for an instant answer")
    satisfaction_half_life_minutes: float = Field(
        240.0, gt=0.0, le=1e6, description="waiting this long halves the chance of satisfaction"
    )
    conversion_max: float = Field(0.3, ge=0.0, le=1.0, description="P(purchase) for an instant answer to a buyer")
    conversion_half_life_minutes: float = Field(
        60.0, gt=0.0, le=1e6, description="waiting this long halves the chance of converting"
    )
    churn_after_unanswered_complaint: float = Field(
        0.2, ge=0.0, le=1.0, description="P(the author leaves) when a complaint is never answered"
    )
    declare_share: float = Field(
        0.5, ge=0.0, le=1.0, description="P(an answered customer's taste is captured as declared data)"
    )


class RepliesConfig(_Model):
    """Replies to outbound messages on conversational channels (reply_rate > 0) enter the inbound stream."""

    enabled: bool = Field(True, description="replies start conversations")
    needle_share: float = Field(0.8, ge=0.0, le=1.0, description="share of replies that need an answer")
    intent_shares: dict[str, float] = Field(
        default_factory=lambda: {
            "complaint": 0.1,
            "support": 0.1,
            "purchase": 0.3,
            "question": 0.3,
            "praise": 0.1,
            "other": 0.1,
        },
        description="intents of the replies that need an answer",
    )

    @model_validator(mode="after")
    def _intents_known(self) -> RepliesConfig:
        for key, value in self.intent_shares.items():
            if key not in INTENTS:
                raise _FieldProblem(
                    f"intent_shares.{toml_key(key)}", key, f"unknown intent; allowed: {', '.join(INTENTS)}"
                )
            if not (value >= 0 and math.isfinite(value)):
                raise _FieldProblem(f"intent_shares.{toml_key(key)}", value, "a share must be a non-negative number")
        if sum(self.intent_shares.values()) <= 0:
            raise _FieldProblem("intent_shares", self.intent_shares, "at least one share must be positive")
        return self


class InboundConfig(_Model):
    """Find -> classify -> respond (DESIGN §1.5), run after the outbound arms when the table is present."""

    mentions: MentionStreamConfig = Field(default_factory=MentionStreamConfig)
    messages: MessageSource | None = Field(
        None, description="a user's labelled messages: the stream's texts and the classifier's training set"
    )
    classifier: str = Field("keyword", min_length=1, description="registered classifier name or module:attr")
    classifier_params: dict[str, Any] = Field(default_factory=dict, description="the classifier's parameters")
    training_messages: int = Field(
        5000, ge=0, le=10_000_000, description="labelled synthetic messages to fit a trainable classifier"
    )
    core: CoreConfig = Field(default_factory=CoreConfig)
    response_policy: str = Field("threshold", min_length=1, description="registered response policy or module:attr")
    response_params: dict[str, Any] = Field(default_factory=dict, description="the response policy's parameters")
    pools: list[PoolConfig] = Field(default_factory=_default_pools, min_length=1, max_length=64)
    patience_sigma: float = Field(1.0, ge=0.0, le=5.0, description="lognormal sigma of customers' patience")
    sla_minutes: float = Field(60.0, ge=0.0, le=100_000.0, description="an answer this soon after arrival is on time")
    outcomes: OutcomesConfig = Field(default_factory=OutcomesConfig)
    replies: RepliesConfig = Field(default_factory=RepliesConfig)

    @model_validator(mode="after")
    def _check(self) -> InboundConfig:
        names = [p.name for p in self.pools]
        if len(set(names)) != len(names):
            raise _FieldProblem("pools", names, "pool names must be distinct")
        return self


class LessonClaim(_Model):
    """One thing a gallery lesson says, checked on every run of it: ``metric`` of strategy ``arm`` minus
    ``metric`` of strategy ``versus``, paired by replication, has ``sign`` and a 95% CI that excludes 0.

    A strategy is an arm name (run, sweep) or a compared label (compare: the variant's name, or
    ``variant/arm`` when the scenario has several arms). In a sweep, ``at`` picks the cell of ``arm``
    (swept path -> value) and ``versus_at`` the cell of ``versus`` (default: the same cell). With
    ``minus_at``, the claim is about a difference of differences: (arm - versus) at ``at`` minus the same
    (arm - versus) at ``minus_at``, e.g. "the gain is larger with more customers".
    """

    metric: str = Field(min_length=1, max_length=80)
    arm: str = Field(min_length=1, max_length=120)
    versus: str = Field(min_length=1, max_length=120)
    sign: Literal["positive", "negative"]
    at: dict[str, Any] | None = None
    versus_at: dict[str, Any] | None = None
    minus_at: dict[str, Any] | None = None


class MarketClaim(_Model):
    """One thing a lesson says about the run's market section (every brand's buying, masssim.model.market).

    ``figure`` names a market figure per replication: ``KIND.BRAND`` with KIND one of penetration,
    purchases_per_buyer, share, bought_a_rival; or ``KIND.BRAND.OTHER`` with KIND duplication (the share of
    BRAND's buyers who also bought OTHER) or duplication_coefficient (that duplication over OTHER's
    penetration). ``versus`` is another such figure or a number. The claim is about ``figure - versus``,
    replication by replication: with ``sign`` its 95% CI excludes 0 on that side; with ``within`` the whole
    95% CI lies inside (-within, +within) (an equivalence claim: "the same, to within this much"). Names are
    checked against the scenario's brands when the lesson is resolved (masssim.lessons.gallery).
    """

    figure: str = Field(min_length=1, max_length=200)
    versus: str | float = Field(description="another market figure, or a number")
    sign: Literal["positive", "negative"] | None = None
    within: float | None = Field(None, gt=0.0, le=1e6, description="equivalence margin around 0")

    @model_validator(mode="after")
    def _sign_or_within(self) -> MarketClaim:
        if (self.sign is None) == (self.within is None):
            raise _FieldProblem("sign", self.sign, "give exactly one of sign (a direction) or within (a margin)")
        return self


class Lesson(_Model):
    """``[lesson]``: what a gallery scenario teaches and how to run it (see masssim.lessons.gallery).

    ``command`` is the kind of run; with ``compare`` the unmodified scenario is the strategy ``baseline``
    and each of ``variants`` (``NAME:path=value,...``) another. ``headline`` metrics lead every reading of
    the lesson; ``claims`` are checked by ``masssim lessons check``. Metric and strategy names are checked
    against the registry and the scenario's arms when the lesson is resolved (masssim.lessons.gallery), not here:
    the schema does not know the metric registry.
    """

    purpose: str = Field(min_length=1, max_length=240)
    command: Literal["run", "compare", "sweep"] = "run"
    baseline: str | None = Field(None, min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
    variants: list[str] = Field(default_factory=list, max_length=16)
    headline: list[str] = Field(default_factory=list, max_length=8)
    claims: list[LessonClaim] = Field(default_factory=list, max_length=16)
    market_claims: list[MarketClaim] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _variants_only_for_compare(self) -> Lesson:
        if self.command == "compare" and not self.variants:
            raise _FieldProblem("variants", self.variants, "a compare lesson needs at least one NAME:path=value")
        if self.command != "compare" and (self.variants or self.baseline):
            raise _FieldProblem("command", self.command, "variants and baseline belong to compare lessons")
        if not self.headline and not self.market_claims:
            raise _FieldProblem("headline", self.headline, "name at least one headline metric")
        if self.market_claims and self.command != "run":
            raise _FieldProblem(
                "market_claims", self.command, "market claims read a run's market section: the lesson's command is run"
            )
        return self


class Scenario(_Model):
    name: str = Field(
        min_length=1,
        max_length=80,
        pattern=NAME_PATTERN,
        description="the scenario's name; results go to <out>/<name>/",
    )
    description: str = Field("", max_length=2000)
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="root seed; none draws fresh entropy")
    replications: int = Field(5, ge=1, le=10_000)
    horizon_days: float = Field(30.0, gt=0.0, le=3650.0)
    reference_utc_offset_hours: float = Field(0.0, ge=-12.0, le=14.0, description="time zone of t = 0")
    budget_total: float | None = Field(None, gt=0.0, le=1e12, description="spend cap per arm, currency")
    feedback_bucket_minutes: int = Field(
        60, ge=1, le=1440, description="delayed outcomes reach state and policy in buckets of this length"
    )
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    market: MarketConfig = Field(default_factory=MarketConfig)
    channels: ChannelsConfig = Field(default_factory=lambda: ChannelsConfig.model_validate({}))
    response: ResponseConfig = Field(default_factory=ResponseConfig)
    creatives: CreativesConfig = Field(default_factory=CreativesConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    holdout: HoldoutConfig = Field(default_factory=HoldoutConfig)
    attribution: AttributionConfig = Field(default_factory=AttributionConfig)
    diagnostics: DiagnosticsConfig = Field(default_factory=DiagnosticsConfig)
    arms: list[Arm] = Field(
        default_factory=_default_arms,
        min_length=1,
        max_length=64,
        description="[[arms]] tables, each with name, policy and the policy's parameters",
    )
    inbound: InboundConfig | None = Field(
        None, description="find -> classify -> respond after the outbound arms; absent = off"
    )
    sweep: dict[str, list[Any]] | None = Field(
        None, description="parameter grid for `masssim sweep`: dotted path -> list of values"
    )
    lesson: Lesson | None = Field(None, description="gallery lessons: purpose, command, headline and claims")

    @model_validator(mode="after")
    def _arm_names_unique(self) -> Scenario:
        if 1440 % self.feedback_bucket_minutes:
            raise _FieldProblem(
                "feedback_bucket_minutes", self.feedback_bucket_minutes, "must divide a day (1440 minutes)"
            )
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise _FieldProblem("arms", names, "arm names must be distinct")
        return self

    def to_toml_dict(self) -> dict[str, Any]:
        """The fully resolved scenario (defaults filled in), for writing next to results."""
        return drop_none(self.model_dump(mode="python"))


def drop_none(obj: Any) -> Any:
    """The value without None entries (TOML has no null)."""
    # TOML has no null: an absent key means "default", which is what None means here.
    if isinstance(obj, dict):
        return {k: drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [drop_none(v) for v in obj]
    return obj


class _FieldProblem(ValueError):
    """Raised inside model validators to name a field of the model being validated."""

    def __init__(self, field: str, value: Any, message: str) -> None:
        self.field = field
        self.value = value
        super().__init__(message)


_FIELD_PROBLEMS = (_FieldProblem, _MessageFieldProblem)

__all__ = [
    "CHANNEL_DEFAULTS",
    "CHANNEL_NAMES",
    "Arm",
    "ChannelConfig",
    "CoreConfig",
    "InboundConfig",
    "MarketConfig",
    "PoolConfig",
    "PopulationConfig",
    "Scenario",
]
