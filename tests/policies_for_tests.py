"""Policies used by the tests through ``module:attr``, as a user's own policy would be."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from masssim.config.schema import CHANNEL_NAMES
from masssim.policies.base import Feedback, Plan, PolicyBase, PolicyParams, PolicyWorld, WaveContext
from masssim.policies.targeting import BroadcastPolicy


class RecordingParams(PolicyParams):
    channel: str = Field("email")
    everyone: bool = Field(False, description="plan every customer, held out and opted out included")


class RecordingPolicy(PolicyBase):
    """Sends creative 0 to every reachable customer (or everyone) and keeps every feedback it receives."""

    Params = RecordingParams
    instances: ClassVar[list[RecordingPolicy]] = []

    def __init__(self, params: RecordingParams, world: PolicyWorld) -> None:
        super().__init__(params, world)
        self.channel = CHANNEL_NAMES.index(params.channel)
        self.feedback: list[Feedback] = []
        self.plans: list[tuple[float, Plan]] = []
        self.saw_latent = world.customers.latent_taste is not None
        RecordingPolicy.instances.append(self)

    def plan(self, wave: WaveContext) -> Plan:
        view = self.world.customers
        who = np.arange(view.n) if self.params.everyone else np.flatnonzero(view.reachable(self.channel))
        plan = Plan(
            customer=who,
            creative=np.zeros(who.shape[0], np.int32),
            channel=np.full(who.shape[0], self.channel, np.int8),
        )
        self.plans.append((wave.time_s, plan))
        return plan

    def observe(self, feedback: Feedback) -> None:
        self.feedback.append(feedback)

    def events(self, kind: str) -> dict[str, np.ndarray]:
        parts = [f.get(kind) for f in self.feedback if kind in f.events]
        if not parts:
            return {"customer": np.empty(0, np.int64), "time_s": np.empty(0)}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class DuplicatePolicy(PolicyBase):
    """A buggy policy: contacts customer 0 twice in one wave."""

    def plan(self, wave: WaveContext) -> Plan:
        return Plan(customer=np.array([0, 0]), creative=np.zeros(2, np.int32), channel=np.zeros(2, np.int8))


def not_a_policy() -> None:
    """Referenced by a test as a wrong module:attr target."""


class MinimalPolicy:
    """A README-style policy: plan and observe methods, no base class, a constructor taking nothing."""

    def plan(self, wave: WaveContext) -> Plan:
        return Plan(customer=np.zeros(0, np.int64), creative=np.zeros(0, np.int32), channel=np.zeros(0, np.int8))

    def observe(self, feedback: Feedback) -> None:
        return None


def make_minimal(params: PolicyParams, world: PolicyWorld) -> MinimalPolicy:
    """A factory function annotated to return a policy class: accepted as a plug-in."""
    return MinimalPolicy()


class PlanOnly:
    """Not a policy: it has plan but no observe."""

    def plan(self, wave: WaveContext) -> Plan:  # pragma: no cover - never called
        raise NotImplementedError


class NarrowViewPolicy(PolicyBase):
    """Names no optional view column (``view_columns``) but reads the send counters: a sharded coordinator does
    not gather them, so a sharded run stops with one line (one process has every column)."""

    view_columns: ClassVar[frozenset[str]] = frozenset()

    def plan(self, wave: WaveContext) -> Plan:
        view = self.world.customers
        who = np.flatnonzero(view.reachable(0) & (view.sends < 3))
        return Plan(customer=who, creative=np.zeros(who.shape[0], np.int32), channel=np.zeros(who.shape[0], np.int8))


class HistoryBroadcastPolicy(BroadcastPolicy):
    """``broadcast``, naming every view column (as a policy that names none does): the engine then counts each
    customer's recorded opens."""

    @classmethod
    def view_columns(cls, params: PolicyParams) -> None:  # type: ignore[override]
        return None


class NarrowOpensPolicy(NarrowViewPolicy):
    """Names no optional view column but reads the recorded opens: one process counts them per customer only
    for a policy that names ``history``, so even one process stops with one line."""

    def plan(self, wave: WaveContext) -> Plan:
        view = self.world.customers
        who = np.flatnonzero(view.reachable(0) & (view.opens < 3))
        return Plan(customer=who, creative=np.zeros(who.shape[0], np.int32), channel=np.zeros(who.shape[0], np.int8))


class MisnamedColumnsPolicy(NarrowViewPolicy):
    """Names a view column that does not exist: refused before a sharded run starts."""

    view_columns: ClassVar[frozenset[str]] = frozenset({"history", "purchases"})
