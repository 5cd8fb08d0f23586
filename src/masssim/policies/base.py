"""Contracts between the engine and targeting policies.

A targeting policy has two verbs: :meth:`TargetingPolicy.plan` decides, at each wave, who gets which
creative on which channel; :meth:`TargetingPolicy.observe` receives delayed outcomes in time buckets.
Everything the policy may look at comes through :class:`CustomerView` — observables, engagement history
and eligibility, never the latent taste (only a policy that declares ``reads_latent_taste = True``, the
``oracle``, gets it, as a teaching upper bound).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

# The catalogue is the model's (masssim.model.creatives); policies see it, and plug-ins import it from here too.
from masssim.model.creatives import Catalogue
from masssim.policies.compiled import NUMBA, compiled

# The channel of a plan row that leaves the choice to the engine: it goes on the first channel of the arm's
# channel preference order that takes it (docs/model.md, "Channel mixes"). An arm with an order gives its
# policy this as ``PolicyWorld.default_channel``, so every policy that sends on the default channel mixes.
ARM_CHANNELS = -1
REACHABLE_BLOCK = 1 << 20  # customers per block of CustomerView.reachable_customers
UNIFORM_BLOCK = 1 << 20  # uniforms drawn at a time by uniform_below


def uniform_below(rng: np.random.Generator, n: int, threshold: float | Callable[[slice], np.ndarray]) -> np.ndarray:
    """bool [n]: whether each row's uniform falls below ``threshold``, a number or, for per-row thresholds, a
    function giving the thresholds of a slice of rows.

    The same draws and the same mask as ``rng.random(n) < threshold`` (numpy's uniforms come one after another,
    so drawing them a block at a time changes none of them), without the float64 per row, nor the per-row
    thresholds, for the whole plan at once: at 95 million customers each is 760 MB."""
    below = np.empty(n, bool)
    uniforms = np.empty(min(n, UNIFORM_BLOCK))
    for lo in range(0, n, UNIFORM_BLOCK):
        rows = slice(lo, min(lo + UNIFORM_BLOCK, n))
        u = uniforms[: rows.stop - lo]
        rng.random(out=u)
        np.less(u, threshold if not callable(threshold) else threshold(rows), out=below[rows])
    return below


class PolicyParams(BaseModel):
    """Base of every policy's parameter model: strict, unknown keys rejected."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass
class CustomerView:
    """What a marketer's systems know about the customers (struct of arrays, one row per customer).

    Arrays are read-only views of the engine's state; a policy must not write to them.
    """

    n: int
    region: np.ndarray  # uint8
    age_band: np.ndarray  # uint8
    income_band: np.ndarray  # uint8
    observables: Any  # callable idx -> float32 [n, q] standardised encoding e_i
    contactable: np.ndarray  # bool: not in the holdout
    optin: np.ndarray  # uint8 bit mask by channel index (changes when customers unsubscribe)
    sends: np.ndarray  # uint16 outbound contacts so far
    opens: np.ndarray  # uint16 recorded opens so far (pre-fetch inflated where the channel does that)
    clicks: np.ndarray  # uint16 clicks so far
    latent_taste: np.ndarray | None = None  # only for policies that declare reads_latent_taste
    continuous_observables: int = 0  # trailing columns of observables() that are continuous CRM scores
    # Declared taste (zero-party data: a preference centre now, conversations later), stored sparsely:
    # customer i declared iff declared_row[i] >= 0, and then theta_hat_i = declared_taste[declared_row[i]]
    # = theta_i + N(0, sigma_decl^2) per topic. Both None when nobody has declared anything.
    declared_row: np.ndarray | None = None  # int32 [N]
    declared_taste: np.ndarray | None = None  # float32 [M, d]
    # Rows are only ever appended (conversations capture taste during the run); the version goes up each
    # time declared_row / declared_taste change, so a policy can cache what it derives from them.
    declared_version: int = 0
    # The arm's channel preference order (channel indices), empty when the arm has none.
    channel_order: tuple[int, ...] = ()

    def reachable(self, channel: int) -> np.ndarray:
        """Bool mask: may be contacted on ``channel`` now (not held out, opted in). For ``ARM_CHANNELS``: on
        at least one channel of the arm's order."""
        return reachable_mask(self.contactable, self.optin, channel_bits(channel, self.channel_order))

    def reachable_customers(self, channel: int) -> np.ndarray[tuple[int], np.dtype[np.signedinteger[Any]]]:
        """The customers :meth:`reachable` on ``channel``, ascending, as int32 indices (int64 from 2^31
        customers): what a plan names, found a block of customers at a time (:func:`reachable_rows`)."""
        dtype = np.int32 if self.n < 2**31 else np.int64
        return reachable_rows(self.contactable, self.optin, channel_bits(channel, self.channel_order), dtype)


def channel_bits(channel: int, channel_order: tuple[int, ...]) -> np.uint8:
    """The opt-in bits of which any one makes a customer reachable on ``channel`` (for ``ARM_CHANNELS``, those
    of the arm's ``channel_order``)."""
    if channel == ARM_CHANNELS:
        return np.uint8(sum(1 << c for c in channel_order))
    return np.uint8(1 << channel)


def reachable_mask(contactable: np.ndarray, optin: np.ndarray, bits: np.uint8) -> np.ndarray:
    """Bool mask of the rows that are ``contactable`` and opted in to one of the channels ``bits``."""
    return contactable & ((optin & bits) != 0)  # type: ignore[no-any-return]


def reachable_rows(contactable: np.ndarray, optin: np.ndarray, bits: np.uint8, dtype: type) -> np.ndarray:
    """The rows of :func:`reachable_mask`, ascending, in ``dtype`` (int32 below 2^31 rows). Neither a mask as
    long as the population nor an int64 index array is built (at 95 million customers the index array alone
    would be 760 MB).

    Compiled, the rows are counted first and written straight into an array of that size: no pieces to join,
    so the plan's largest array never needs room beside a copy of itself (a hole the heap keeps, docs/model.md
    §15.7). Without numba (or with int64 rows), :func:`reachable_rows_numpy` finds them a block at a time."""
    if NUMBA is not None and np.dtype(dtype) == np.int32 and contactable.shape[0] < 2**31:
        count = _count_reachable(contactable, optin, bits)
        out = np.empty(count + 1, np.int32)  # one spare row: the last row is written whether kept or not
        _fill_reachable(contactable, optin, bits, out)
        return out[:count]
    return reachable_rows_numpy(contactable, optin, bits, dtype)


@compiled
def _count_reachable(contactable, optin, bits):  # type: ignore[no-untyped-def]  # pragma: no cover
    count = 0
    for i in range(contactable.shape[0]):
        count += contactable[i] & ((optin[i] & bits) != 0)
    return count


@compiled
def _fill_reachable(contactable, optin, bits, out):  # type: ignore[no-untyped-def]  # pragma: no cover
    k = 0
    for i in range(contactable.shape[0]):  # branch-free: every row is written, a reachable one is kept
        out[k] = i
        k += contactable[i] & ((optin[i] & bits) != 0)


def reachable_rows_numpy(contactable: np.ndarray, optin: np.ndarray, bits: np.uint8, dtype: type) -> np.ndarray:
    """:func:`reachable_rows` with numpy alone (the path without numba, and its test's reference)."""
    pieces: list[np.ndarray] = []
    for lo in range(0, contactable.shape[0], REACHABLE_BLOCK):
        rows = slice(lo, lo + REACHABLE_BLOCK)
        piece: np.ndarray = np.flatnonzero(reachable_mask(contactable[rows], optin[rows], bits)).astype(dtype)
        np.add(piece, piece.dtype.type(lo), out=piece)  # in place, in the narrow type
        pieces.append(piece)
    return np.concatenate(pieces) if pieces else np.empty(0, dtype)


def reachable_rows_and_segments(
    contactable: np.ndarray, optin: np.ndarray, bits: np.uint8, dtype: type, segment: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`reachable_rows`, each row's ``segment`` (one value per row of the population, 0 .. size - 1) and
    how many rows each segment has (int64 [size]): a shard's wave planned by a rule (engine/shard_planning.py).

    Compiled, the rows are counted as :func:`reachable_rows` counts them, then written with their segments and
    counted in one pass, where the rows and then a gather of their segments took two (docs/model.md §15.12).
    Without numba (or with int64 rows), :func:`reachable_rows_and_segments_numpy`."""
    if NUMBA is not None and np.dtype(dtype) == np.int32 and contactable.shape[0] < 2**31:
        count = _count_reachable(contactable, optin, bits)
        who = np.empty(count + 1, np.int32)  # one spare row: the last row is written whether kept or not
        taken = np.empty(count + 1, segment.dtype)
        per_segment = np.zeros(size, np.int64)
        _fill_reachable_segments(contactable, optin, bits, segment, who, taken, per_segment)
        return who[:count], taken[:count], per_segment
    return reachable_rows_and_segments_numpy(contactable, optin, bits, dtype, segment, size)


@compiled
def _fill_reachable_segments(contactable, optin, bits, segment, out, taken, per_segment):  # type: ignore[no-untyped-def]  # pragma: no cover
    k = 0
    for i in range(contactable.shape[0]):  # branch-free, as _fill_reachable; a row's segment is counted if kept
        s = segment[i]
        reach = np.int64(contactable[i] & ((optin[i] & bits) != 0))
        out[k] = i
        taken[k] = s
        per_segment[s] += reach
        k += reach


def reachable_rows_and_segments_numpy(
    contactable: np.ndarray, optin: np.ndarray, bits: np.uint8, dtype: type, segment: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`reachable_rows_and_segments` with numpy alone: the rows, a gather and a count."""
    who = reachable_rows_numpy(contactable, optin, bits, dtype)
    taken = segment[who]
    return who, taken, np.bincount(taken, minlength=size).astype(np.int64, copy=False)


@dataclass
class PolicyWorld:
    """What a policy is given once, when an arm starts."""

    customers: CustomerView
    catalogue: Catalogue
    channel_names: tuple[str, ...]
    default_channel: int
    waves_planned: int
    horizon_s: float
    rng: np.random.Generator
    budget_total: float | None
    # Only for policies that declare reads_latent_taste (the oracle): the true click weight of affinity.
    affinity_click_beta: float | None = None


@dataclass
class WaveContext:
    time_s: float
    wave_index: int
    budget_left: float | None  # currency, None when the scenario has no budget


@dataclass
class Plan:
    """Who gets what: parallel arrays, one row per contact. The engine enforces every rule on them."""

    customer: np.ndarray  # int32 or int64 customer indices, each at most once per wave
    creative: np.ndarray  # int32 index into the catalogue
    channel: np.ndarray  # int8 channel index, or ARM_CHANNELS: the engine picks from the arm's order
    audience: np.ndarray | None = None  # int64 ad-set id for paid media (default: the creative)

    @classmethod
    def empty(cls) -> Plan:
        return cls(customer=np.empty(0, np.int64), creative=np.empty(0, np.int32), channel=np.empty(0, np.int8))

    def __len__(self) -> int:
        return int(self.customer.shape[0])


def one_channel(n: int, channel: int) -> np.ndarray:
    """A plan's channel column when all ``n`` rows go on ``channel``: a read-only int8 view of the one value,
    which takes no memory per row (an int8 array of the plan's length did, at the wave's peak)."""
    return np.broadcast_to(np.int8(channel), (n,))


@dataclass
class Feedback:
    """Outcomes that became known in one time bucket: parallel arrays per kind of event.

        ``kind`` names: ``delivered``, ``open`` (recorded opens), ``click``, ``unsubscribe``, ``reply``,
        ``purchase`` (purchases of our brand by treated, i.e. non-holdout, customers, with the creative of the
    last click when the purchase is attributed to it, else -1).
    """

    time_s: float
    events: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def get(self, kind: str) -> dict[str, np.ndarray]:
        return self.events.get(kind, _EMPTY_EVENTS)


_EMPTY_EVENTS: dict[str, np.ndarray] = {
    "customer": np.empty(0, np.int64),
    "creative": np.empty(0, np.int32),
    "channel": np.empty(0, np.int8),
    "time_s": np.empty(0, np.float64),
}


FEEDBACK_KINDS = frozenset({"delivered", "open", "click", "unsubscribe", "reply", "purchase"})


@runtime_checkable
class TargetingPolicy(Protocol):
    """Decides each wave who gets which creative on which channel, and learns from delayed feedback."""

    def plan(self, wave: WaveContext) -> Plan: ...

    def observe(self, feedback: Feedback) -> None: ...


# The optional columns of a CustomerView (docs/model.md §6.1): ``observables`` (the encoding ``e_i``, with the CRM
# scores when the population has them), ``history`` (``sends``, ``opens``, ``clicks``) and ``declared_taste``
# (``declared_row``, ``declared_taste``). A sharded run gathers only those a policy names (§16.5); the codes,
# the holdout and the opt-ins are always there.
VIEW_COLUMNS = frozenset({"observables", "history", "declared_taste"})


def declared_view_columns(factory: Any, params: Any) -> frozenset[str] | None:
    """The columns a policy class names (``view_columns``: a classmethod of the params or a set); None when it
    names none, which means every column."""
    declared = getattr(factory, "view_columns", None)
    if callable(declared):
        declared = declared(params)
    return None if declared is None else frozenset(declared)


class PolicyBase:
    """Convenience base for built-in policies: stores the world and ignores feedback by default."""

    Params: ClassVar[type[PolicyParams]] = PolicyParams
    reads_latent_taste: ClassVar[bool] = False
    # The feedback kinds the policy learns from. Declaring fewer saves the engine from building event
    # arrays nobody reads (a "delivered" event per send is the largest). None means every kind.
    feedback_kinds: ClassVar[frozenset[str] | None] = None

    @classmethod
    def view_columns(cls, params: PolicyParams) -> frozenset[str] | None:
        """The optional columns of :data:`VIEW_COLUMNS` the policy reads with ``params``; None: all of them.
        A sharded run gathers only these to its coordinator; one process has them all, but counts each
        customer's recorded opens only for a policy that names ``history`` (or returns None)."""
        return None

    def __init__(self, params: PolicyParams, world: PolicyWorld) -> None:
        self.params = params
        self.world = world
        self.rng = world.rng

    def plan(self, wave: WaveContext) -> Plan:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self, feedback: Feedback) -> None:
        return None


# --------------------------------------------------------------------------------------------------
# Planning on shards (docs/model.md §16.2): an optional second way to plan, for policies whose plan is a
# per-customer rule over merged statistics. A sharded run then never gathers the per-customer view.
# --------------------------------------------------------------------------------------------------


@dataclass
class ShardRule:
    """One wave's plan as a rule that each shard applies to its own customers, in customer order.

    The plan it describes is: every reachable customer on ``channel`` (not held out, opted in), in ascending
    order; then, with ``keep``, only the rows of segments marked True, plus, with ``keep_probability``, the
    rows whose uniform (one per reachable row, from the policy's stream) is below their segment's
    probability; then each row gets its segment's ``choice``, except that with ``test_share`` the rows whose
    uniform (one per kept row) is below it, and with ``draw_creatives`` every row, get a creative drawn
    uniformly from ``0 .. creatives - 1`` (``rng.integers(0, creatives, dtype=int32)``, one per such row in
    order). At most one of ``keep_probability`` and ``test_share`` is set (one uniform step per wave).
    Those draws are exactly the ones ``plan`` would make from the policy's stream, in the same order.
    """

    channel: int
    choice: np.ndarray  # int32 creative of each segment
    keep: np.ndarray | None = None  # bool per segment: contacted whole; None: every reachable customer
    keep_probability: np.ndarray | None = None  # float64 per segment (needs ``keep``)
    test_share: float | None = None
    draw_creatives: bool = False
    creatives: int = 0

    def __post_init__(self) -> None:
        if self.keep_probability is not None and (self.keep is None or self.test_share is not None):
            raise ValueError("a shard rule draws one uniform step per wave: keep_probability needs keep, no test_share")

    @property
    def draws_integers(self) -> bool:
        return self.test_share is not None or self.draw_creatives


@runtime_checkable
class ShardPlanning(Protocol):
    """What a policy implements, beside ``plan`` and ``observe``, to plan on the shards of a sharded run.

    * ``channel``: the channel it sends on (fixed for the arm), or ``ARM_CHANNELS`` for the arm's channel order.
      On a paid channel the engine takes each row's ad set to be ``segment * catalogue.count + creative``
      (the creative alone with one segment): ``plan`` must name the same ``audience``.
    * ``shard_segments()``: once per arm, the segment of each observable profile as (sorted profile codes
      ``region * 65536 + age_band * 256 + income_band``, int32 segment of each), or None for one segment.
    * ``shard_rule(wave, reachable)``: at each wave, given the number of reachable customers per segment
      (summed over the shards), the wave's :class:`ShardRule`, or None to contact nobody. It must make the
      same decisions as ``plan`` (the engine makes the rule's draws from the policy's stream for it).
    * ``observe_cells(time_s, cells)``: at each feedback bucket, for the kinds in ``feedback_kinds``
      ("delivered", "click"), the events counted per cell ``segment * cell_creatives + creative`` (creatives
      from ``cell_creatives`` on are not counted) as (unique sorted int64 cells, int64 counts). The sharded
      engine runs the buckets between two waves in one call per shard and makes these calls, bucket by bucket
      in order, just before the next wave's ``shard_rule`` (or at the arm's end): the policy must not read what
      it learns anywhere else, nor change ``cell_creatives`` in ``observe_cells``.
    """

    channel: int
    cell_creatives: int

    def shard_segments(self) -> tuple[np.ndarray, np.ndarray] | None: ...

    def shard_rule(self, wave: WaveContext, reachable: np.ndarray) -> ShardRule | None: ...

    def observe_cells(self, time_s: float, cells: dict[str, tuple[np.ndarray, np.ndarray]]) -> None: ...
