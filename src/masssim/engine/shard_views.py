"""The policy's view on the coordinator of a sharded run: only the columns the policy reads (docs/model.md §16.5).

A policy that plans on the coordinator gets a :class:`~masssim.policies.base.CustomerView` with the values one
process would give it, gathered from the shards:

* always, once per replication: every customer's codes and holdout flag (4 bytes per customer), and before
  each wave the opt-ins (1 byte);
* ``history`` (the policy's ``view_columns`` names it): the send, open and click counters (6 bytes), before
  each wave;
* ``observables``: the encoding ``e_i`` rebuilt from the codes by the population's own method, with the CRM
  scores (float16, 2 bytes per score) gathered once per replication when the population has them;
* ``declared_taste``: the starting declarations (each shard draws who declared and their noise from its
  chunks' streams, as one process does, and adds its customers' taste), and with ``[inbound]`` the taste
  captured in conversations (engine/sharded_inbound.py: the desk asks the shards for the taste of the new
  declarers and draws the noise from the one stream one process uses);
* the latent taste (float16 as the population stores it, ``2·d`` bytes) only for a policy with
  ``reads_latent_taste`` (the ``oracle``).

A column the policy does not name is an :class:`AbsentColumn`: a policy that reads it stops the run with one
line naming the arm and the column, not a traceback from inside numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np

from masssim.config.schema import Scenario
from masssim.engine.absent_columns import AbsentColumn
from masssim.engine.chunks import ChunkLayout, chunk_generators
from masssim.engine.sim import _DECLARED_AT_START
from masssim.model.population import Population
from masssim.model.streams import Component, chunk_sequence, component_sequence
from masssim.policies.base import VIEW_COLUMNS, declared_view_columns
from masssim.policies.registry import params_model, resolve_targeting

# The CustomerView attributes of each optional column.
COLUMN_ATTRIBUTES = {
    "observables": ("observables",),
    "history": ("sends", "opens", "clicks"),
    "declared_taste": ("declared_row", "declared_taste"),
}


class ShardCalls(Protocol):
    """The calls to a replication's shards (:class:`masssim.engine.sharded.ShardGroup`)."""

    ranges: list[range]

    def call(self, method: str, args: dict[int, tuple[Any, ...]]) -> list[Any]: ...


def _everyone(group: ShardCalls, *args: Any) -> dict[int, tuple[Any, ...]]:
    return dict.fromkeys(range(len(group.ranges)), args)


@dataclass(frozen=True)
class ViewNeeds:
    """What of the view one arm's policy reads."""

    columns: frozenset[str]  # of VIEW_COLUMNS
    latent_taste: bool  # reads_latent_taste (the oracle): the latent taste, creative quality, the click beta


def view_needs(scenario: Scenario, arm_index: int) -> ViewNeeds:
    factory = resolve_targeting(scenario.arms[arm_index].policy)
    params = params_model(factory).model_validate(scenario.arms[arm_index].params)
    named = declared_view_columns(factory, params)
    columns = VIEW_COLUMNS if named is None else named & VIEW_COLUMNS
    return ViewNeeds(columns, bool(getattr(factory, "reads_latent_taste", False)))


def unknown_view_columns(scenario: Scenario) -> str | None:
    """One line on the first arm whose policy names a view column that does not exist, or None."""
    for index, arm in enumerate(scenario.arms):
        factory = resolve_targeting(arm.policy)
        named = declared_view_columns(factory, params_model(factory).model_validate(arm.params))
        unknown = sorted((named or frozenset()) - VIEW_COLUMNS)
        if unknown:
            return (
                f"arms[{index}].policy: policy {arm.policy!r} (arm {arm.name!r}) names view columns "
                f"{', '.join(map(repr, unknown))} that do not exist; allowed: {', '.join(sorted(VIEW_COLUMNS))}"
            )
    return None


@dataclass
class GatheredColumns:
    """What the coordinator gathered once per replication for the arms that read it (None: no arm does)."""

    crm_scores: np.ndarray | None = None  # float16 [N, m]
    latent_taste: np.ndarray | None = None  # float16 [N, d], as stored
    declared: bool = False  # the starting declarations were gathered (the two below, None if nobody declared)
    declared_row: np.ndarray | None = None  # int32 [N]: row in declared_taste, -1 if not declared
    declared_taste: np.ndarray | None = None  # float32 [M, d]

    def nbytes(self) -> int:
        arrays = (self.crm_scores, self.latent_taste, self.declared_row, self.declared_taste)
        return sum(a.nbytes for a in arrays if a is not None)


def gather_columns(scenario: Scenario, group: ShardCalls, needs: Sequence[ViewNeeds]) -> GatheredColumns:
    """The per-customer columns of the replication that some arm reads, concatenated in shard (= customer)
    order: so each is one process's array."""
    gathered = GatheredColumns()
    pop = scenario.population
    if pop.crm_scores > 0 and any("observables" in n.columns for n in needs):
        gathered.crm_scores = np.concatenate(group.call("crm_scores", _everyone(group)))
    if any(n.latent_taste for n in needs):
        gathered.latent_taste = np.concatenate(group.call("latent_taste", _everyone(group)))
    if any("declared_taste" in n.columns for n in needs):
        gathered.declared = True
        if pop.declared_taste_share > 0:
            parts = group.call("starting_declarations", _everyone(group))
            who = np.concatenate([p[0] for p in parts])
            row = np.full(pop.customers, -1, np.int32)
            row[who] = np.arange(who.shape[0], dtype=np.int32)
            gathered.declared_row, gathered.declared_taste = row, np.concatenate([p[1] for p in parts])
    return gathered


def starting_declarations(
    scenario: Scenario,
    replication_seq: np.random.SeedSequence,
    layout: ChunkLayout,
    chunks: range,
    rows: range,
    taste: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """On a shard: its customers who declared their taste before the run (whole-population ids, ascending) and
    their declared taste ``theta + N(0, sigma_decl^2)``, drawn from each chunk's stream exactly as
    :func:`masssim.engine.sim._initial_declarations` does (``taste``: the shard's rows of latent taste)."""
    cfg = scenario.population
    parent = chunk_sequence(component_sequence(replication_seq, Component.DECLARED), _DECLARED_AT_START)
    d = taste.shape[1]
    whos: list[np.ndarray] = [np.empty(0, np.int64)]
    noises: list[np.ndarray] = [np.empty((0, d), np.float32)]
    for lo, hi, rng in chunk_generators(parent, layout, chunks):
        who = lo + np.flatnonzero(rng.random(hi - lo) < cfg.declared_taste_share)
        whos.append(who)
        noises.append(rng.standard_normal((who.shape[0], d)).astype(np.float32))
    who = np.concatenate(whos)
    noise = np.concatenate(noises)
    return who, taste[who - rows.start] + np.float32(cfg.declared_taste_noise_sd) * noise


class ShardTaste:
    """The latent taste of given customers, asked of the shards that hold them (for the desk's declarations:
    ``taste[customers]`` with ``customers`` ascending, as ``np.unique`` gives them)."""

    def __init__(self, group: ShardCalls, dims: int) -> None:
        self.group = group
        self.shape = (sum(len(r) for r in group.ranges), dims)

    def __getitem__(self, customers: np.ndarray) -> np.ndarray:
        args: dict[int, tuple[Any, ...]] = {}
        for s, r in enumerate(self.group.ranges):
            mine = customers[(customers >= r.start) & (customers < r.stop)]
            if mine.shape[0]:
                args[s] = (mine,)
        parts = self.group.call("declarers_taste", args)
        return np.concatenate(parts) if parts else np.empty((0, self.shape[1]), np.float32)


@dataclass
class CodedObservables:
    """The observables' encoding rebuilt on the coordinator from the gathered codes and CRM scores, by the
    population's own method (so ``observables(idx)`` is one process's float32 encoding)."""

    region: np.ndarray
    age_band: np.ndarray
    income_band: np.ndarray
    region_share: np.ndarray
    age_band_share: np.ndarray
    income_band_share: np.ndarray
    crm_scores: np.ndarray  # float16 [N, m]; [N, 0] (no memory) without CRM scores

    def __call__(self, idx: Any = None) -> np.ndarray:
        return Population.observables(cast(Population, self), idx)


AbsentColumn.__hash__ = None  # type: ignore[assignment]


def absent_columns(scenario: Scenario, arm_index: int, needs: ViewNeeds) -> dict[str, AbsentColumn]:
    """The view attributes the arm's policy does not read, each standing for its missing column."""
    arm = scenario.arms[arm_index]
    return {
        attribute: AbsentColumn(arm_index, arm.policy, arm.name, attribute, column)
        for column, attributes in COLUMN_ATTRIBUTES.items()
        if column not in needs.columns
        for attribute in attributes
    }
