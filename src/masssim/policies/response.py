"""Respond (DESIGN §1.5): response policies, plug-ins that decide which classified mention gets an answer.

A response policy has one verb, :meth:`ResponsePolicy.route`: given the classification core's
:class:`~masssim.classify.Labels` for a slice of mentions (and the slice itself, for its observable
columns: source, language, time — a policy must not read the ground-truth columns ``relevant``, ``intent``,
``urgency``, ``true_label``), it returns :class:`Decisions`, parallel arrays of

* ``respond`` (bool): answer this message at all;
* ``pool`` (int): index of the responder pool it goes to first (by convention 0 = bot, 1 = human);
* ``priority`` (int): its place in a ``"priority"`` queue (higher first); ignored by FIFO pools;
* ``escalate_to`` (int, -1 = never) and ``p_resolve`` (float): when the first pool has served it, the
  conversation is resolved with probability ``p_resolve``, otherwise it is handed to pool ``escalate_to``
  (the engine draws the coin, so policies stay deterministic).

Built in (:func:`response_policy_names`):

* ``respond_all`` — answer every mention, relevant or not ("answering 100% of comments"): the core is
  bypassed for the decision, so every piece of haystack is a false alarm;
* ``threshold`` — answer when the classifier's priority (relevance probability × intent weight) is at least
  ``min_priority``;
* ``bot_first`` — messages the core flags relevant (``relevant_prob >= relevance_threshold``) go to the bot
  pool; the bot resolves with probability ``bot_resolution[predicted intent]``, otherwise the conversation
  is escalated to the human pool *with the customer's clock still running* (response time and patience are
  counted from the message's arrival, not from the escalation).

**Mode** (``always_on`` or ``business_hours``, every policy): it is applied through the pools' shift
schedules, not by holding messages back. :meth:`ResponsePolicy.schedule_for` gives a pool of kind
``"human"`` without an explicit schedule ``always_on(agents)`` in ``always_on`` mode and
``business_hours(agents, open_hour, close_hour, days, utc_offset_hours)`` in ``business_hours`` mode; bots
are always on in both modes. Outside opening hours a human pool has no agents, so messages routed to it
queue (and their customers may abandon) until it opens.

Policies are found by name or ``package.module:attr`` (:func:`resolve_response_policy`), built from
validated parameters (:func:`build_response_policy`), like targeting policies
(:mod:`masssim.policies.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field, field_validator

from masssim.classify.base import INTENT_NAMES, Labels
from masssim.config.plugins import Registry
from masssim.model.shifts import always_on, business_hours

if TYPE_CHECKING:
    from masssim.model.messages import Mentions

BOT, HUMAN = 0, 1
PRIORITY_SCALE = 1000  # classifier priority in [0, 1] -> integer queue priority 0..1000
Mode = Literal["always_on", "business_hours"]
PoolKind = Literal["bot", "human"]


@dataclass
class Decisions:
    """A response policy's decisions for n messages (struct of arrays)."""

    respond: np.ndarray  # bool [n]
    pool: np.ndarray  # int64 [n]: first pool (0 = bot, 1 = human, ...)
    priority: np.ndarray  # int64 [n]: higher is served first by a priority queue
    escalate_to: np.ndarray  # int64 [n]: pool after the first one if not resolved; -1 = none
    p_resolve: np.ndarray  # float64 [n]: probability that the first pool resolves it

    def __post_init__(self) -> None:
        self.respond = np.asarray(self.respond, dtype=bool)
        n = self.respond.shape
        self.pool = np.broadcast_to(np.asarray(self.pool, dtype=np.int64), n).copy()
        self.priority = np.broadcast_to(np.asarray(self.priority, dtype=np.int64), n).copy()
        self.escalate_to = np.broadcast_to(np.asarray(self.escalate_to, dtype=np.int64), n).copy()
        self.p_resolve = np.broadcast_to(np.asarray(self.p_resolve, dtype=np.float64), n).copy()
        if self.respond.ndim != 1:
            raise ValueError("Decisions arrays must be one-dimensional")
        if np.any((self.p_resolve < 0) | (self.p_resolve > 1)):
            raise ValueError("p_resolve must be in [0, 1]")

    def __len__(self) -> int:
        return int(self.respond.shape[0])

    @classmethod
    def of(
        cls,
        respond: ArrayLike,
        pool: ArrayLike = HUMAN,
        priority: ArrayLike = 0,
        escalate_to: ArrayLike = -1,
        p_resolve: ArrayLike = 1.0,
    ) -> Decisions:
        """Decisions from arrays or scalars (scalars are broadcast to the length of ``respond``)."""
        return cls(*(np.asarray(a) for a in (respond, pool, priority, escalate_to, p_resolve)))


def queue_priority(labels: Labels) -> np.ndarray:
    """The classifier's priority in [0, 1] as an integer queue priority (0..PRIORITY_SCALE)."""
    p = np.clip(np.nan_to_num(labels.priority.astype(np.float64)), 0.0, 1.0)
    return np.rint(p * PRIORITY_SCALE).astype(np.int64)


class ResponseParams(BaseModel):
    """Parameters every response policy has: the mode and the opening hours used in business_hours mode."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    mode: Mode = Field("always_on", description="always_on, or business_hours (human pools work opening hours)")
    open_hour: float = Field(9.0, ge=0.0, lt=24.0, description="opening time, local hour (business_hours)")
    close_hour: float = Field(17.0, ge=0.0, le=24.0, description="closing time, local hour (business_hours)")
    days: tuple[int, ...] = Field((0, 1, 2, 3, 4), description="open days, 0 = Monday (business_hours)")
    utc_offset_hours: float = Field(0.0, ge=-12.0, le=14.0, description="the team's local time minus UTC")

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, tuple) and any(not isinstance(d, int) or not 0 <= d <= 6 for d in value):
            raise ValueError("days are integers 0 (Monday) .. 6 (Sunday)")
        return value


@runtime_checkable
class ResponsePolicyProtocol(Protocol):
    """What the inbound engine needs from a response policy."""

    def route(self, labels: Labels, mentions: Mentions) -> Decisions: ...

    def schedule_for(self, kind: PoolKind, agents: int) -> np.ndarray: ...


class ResponsePolicy:
    """Base of the built-in response policies: stores parameters, applies the mode to pool schedules."""

    Params: ClassVar[type[ResponseParams]] = ResponseParams
    registered_name: ClassVar[str] = ""

    def __init__(self, params: ResponseParams | None = None) -> None:
        self.params = params if params is not None else self.Params()
        # Time zone of the simulation clock's t = 0 (the scenario's reference_utc_offset_hours), so that
        # business hours in utc_offset_hours land on the right hours of the reference week.
        self.reference_utc_offset_hours = 0.0

    def route(self, labels: Labels, mentions: Mentions) -> Decisions:  # pragma: no cover - abstract
        raise NotImplementedError

    def schedule_for(self, kind: PoolKind, agents: int) -> np.ndarray:
        """168-entry shift schedule for a pool of ``kind`` with ``agents`` (see the module docstring)."""
        p = self.params
        if kind == "bot" or p.mode == "always_on":
            return always_on(agents)
        return business_hours(
            agents, p.open_hour, p.close_hour, p.days, p.utc_offset_hours, self.reference_utc_offset_hours
        )


_REGISTRY = Registry(  # the built-ins are in this module
    "response policy", ResponseParams, methods=("route", "schedule_for"), called_as="cls(params)"
)


def register_response_policy(name: str) -> Callable[[Any], Any]:
    """Class decorator: make a response policy available under ``name``."""
    return _REGISTRY.register(name)


class RespondAllParams(ResponseParams):
    pool: int = Field(HUMAN, ge=0, description="pool that answers (0 = bot, 1 = human)")


@register_response_policy("respond_all")
class RespondAll(ResponsePolicy):
    """Answer every mention, relevant or not; queue priority from the classifier."""

    Params = RespondAllParams
    params: RespondAllParams

    def route(self, labels: Labels, mentions: Mentions) -> Decisions:
        n = len(labels)
        return Decisions.of(np.ones(n, bool), self.params.pool, queue_priority(labels), -1, 1.0)


class ThresholdParams(ResponseParams):
    min_priority: float = Field(0.1, ge=0.0, le=1.0, description="answer when the classifier's priority >= this")
    pool: int = Field(HUMAN, ge=0, description="pool that answers (0 = bot, 1 = human)")


@register_response_policy("threshold")
class Threshold(ResponsePolicy):
    """Answer when the classifier's priority reaches ``min_priority``."""

    Params = ThresholdParams
    params: ThresholdParams

    def route(self, labels: Labels, mentions: Mentions) -> Decisions:
        respond = labels.priority.astype(np.float64) >= self.params.min_priority
        return Decisions.of(respond, self.params.pool, queue_priority(labels), -1, 1.0)


def _default_bot_resolution() -> dict[str, float]:
    # Assumptions to sweep: a bot settles simple questions and thanks, rarely an angry complaint.
    return {"complaint": 0.1, "support": 0.4, "purchase": 0.3, "question": 0.6, "praise": 0.9, "other": 0.5}


class BotFirstParams(ResponseParams):
    relevance_threshold: float = Field(0.5, ge=0.0, le=1.0, description="answer when relevant_prob >= this")
    bot_resolution: dict[str, float] = Field(
        default_factory=_default_bot_resolution,
        description="probability the bot resolves a conversation, per (predicted) intent; missing intents: 0",
    )
    bot_pool: int = Field(BOT, ge=0, description="pool of the bot")
    escalate_to: int = Field(HUMAN, ge=0, description="pool that takes what the bot does not resolve")

    @field_validator("bot_resolution")
    @classmethod
    def _resolution(cls, value: dict[str, float]) -> dict[str, float]:
        for key, p in value.items():
            if key not in INTENT_NAMES:
                raise ValueError(f"unknown intent {key!r}; allowed: {', '.join(INTENT_NAMES)}")
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"bot_resolution[{key!r}] must be in [0, 1]")
        return value


@register_response_policy("bot_first")
class BotFirst(ResponsePolicy):
    """Relevant messages go to the bot; what it does not resolve is escalated to humans."""

    Params = BotFirstParams
    params: BotFirstParams

    def route(self, labels: Labels, mentions: Mentions) -> Decisions:
        p = self.params
        by_intent = np.array([p.bot_resolution.get(name, 0.0) for name in INTENT_NAMES], dtype=np.float64)
        respond = labels.relevant(p.relevance_threshold)
        resolve = by_intent[labels.intent.astype(np.intp)]
        return Decisions.of(respond, p.bot_pool, queue_priority(labels), p.escalate_to, resolve)


# ------------------------------------------------------------------------------------------------------
# Registry
def response_policy_names() -> list[str]:
    return _REGISTRY.names()


def resolve_response_policy(name: str) -> Any:
    """The factory for a response policy name or ``package.module:attr``; LookupError with a hint."""
    return _REGISTRY.resolve(name)


def response_params_model(factory: Any) -> type[ResponseParams]:
    model: type[ResponseParams] = _REGISTRY.params_model(factory)  # type: ignore[assignment]
    return model


def build_response_policy(
    name: str, params: Mapping[str, Any] | ResponseParams | None = None
) -> ResponsePolicyProtocol:
    """Resolve ``name``, validate ``params`` and build the policy (``factory(params)``).

    Raises LookupError for an unknown name, ValueError naming the parameter for bad parameters and
    TypeError when the result has no ``route``/``schedule_for``.
    """
    built: ResponsePolicyProtocol = _REGISTRY.build(
        name, params, ResponsePolicyProtocol, "needs route and schedule_for"
    )
    return built
    return built
