"""Bespoke creatives at 1:1 are estimated and generated a block of personas at a time
(``SegmentsPolicy._generate_bespoke``, docs/model.md §15.15): the creatives must be, to the bit, those of every
persona's estimate computed in one array (the definition), with and without declared taste, and
``Catalogue.generate_blocks`` must add exactly what ``generate`` adds for the rows stacked."""

from __future__ import annotations

import numpy as np
import pytest

import masssim
from masssim.engine.sim import ArmSimulation, build_world
from masssim.model.creatives import Catalogue
from masssim.model.streams import replication_sequence, root_sequence
from masssim.policies import targeting


def run_bespoke(segments: int, declared_share: float) -> ArmSimulation:
    scenario = masssim.scenario_from_dict(
        {
            "name": "bespoke",
            "seed": 3,
            "horizon_days": 5,
            "population": {"customers": 3_000, "crm_scores": 2, "declared_taste_share": declared_share},
            "creatives": {"count": 12},
            "arms": [{"name": "p", "policy": "segments", "segments": segments, "bespoke": True, "test_waves": 2}],
        }
    )
    sim = ArmSimulation(scenario, build_world(scenario, replication_sequence(root_sequence(5), 0)), 0)
    sim.run()
    return sim


def whole_array_bespoke(policy: targeting.SegmentsPolicy, block: int) -> tuple[np.ndarray, np.ndarray]:
    """The definition: every persona's taste estimate in one float64 array, as the policy computed it until
    session 20 (its ridge product taken in slices of ``block`` rows, the slices the policy multiplies, so that
    the comparison does not depend on how a BLAS splits a product). Returns the unit directions of the
    creatives to generate (float32) and the personas that get them."""
    directions = policy.world.catalogue.directions[: policy.base_count].astype(np.float64)
    total_delivered, total_clicks = policy.cells.creative_totals()
    global_rate = (total_clicks + 1.0) / (total_delivered + 2.0)
    prior = policy.params.bespoke_prior_clicks
    segment, creative, delivered, clicks = policy.cells.cells()
    lift = np.log((clicks + prior) / (delivered + prior / global_rate[creative])) - np.log(global_rate[creative])
    n, d = policy.n_segments, directions.shape[1]
    estimate = np.empty((n, d))
    for j in range(d):
        estimate[:, j] = np.bincount(segment, weights=lift * directions[creative, j], minlength=n)
    inverse = np.linalg.inv(directions.T @ directions + policy.params.bespoke_ridge * np.eye(d))
    for lo in range(0, n, block):
        estimate[lo : lo + block] = estimate[lo : lo + block] @ inverse
    view = policy.world.customers
    if view.declared_row is not None and view.declared_taste is not None:
        declared = np.flatnonzero(view.declared_row >= 0)
        persona = policy.segment_of[declared]
        taste = view.declared_taste[view.declared_row[declared]]
        counts = np.bincount(persona, minlength=n)
        has = counts > 0
        for j in range(d):
            estimate[has, j] = np.bincount(persona, weights=taste[:, j], minlength=n)[has] / counts[has]
    usable = np.sqrt(np.einsum("ij,ij->i", estimate, estimate)) > 1e-9
    rows = estimate[usable]
    return (rows / np.sqrt(np.einsum("ij,ij->i", rows, rows))[:, None]).astype(np.float32), np.flatnonzero(usable)


# k above N is taken as N: every customer is a persona, and each one tested gets a creative. With 300 personas
# of about ten customers, a persona's declared taste is a mean over several members.
@pytest.mark.parametrize(
    ("segments", "declared_share", "block"),
    [(10**8, 0.0, 97), (10**8, 0.3, 97), (10**8, 0.3, 1 << 16), (300, 0.3, 7)],
)
def test_bespoke_creatives_made_by_blocks_are_those_of_the_whole_array(
    monkeypatch: pytest.MonkeyPatch, segments: int, declared_share: float, block: int
) -> None:
    monkeypatch.setattr(targeting, "_BESPOKE_BLOCK", block)
    generate = targeting.SegmentsPolicy._generate_bespoke
    seen: dict[str, np.ndarray] = {}

    def checked(policy: targeting.SegmentsPolicy) -> None:  # the definition, from the same cells, then the policy
        seen["units"], seen["personas"] = whole_array_bespoke(policy, block)
        first = policy.world.catalogue.count
        generate(policy)
        seen["generated"] = policy.world.catalogue.directions[first:].copy()
        seen["ids"] = np.arange(first, policy.world.catalogue.count)
        seen["choice"] = policy.choice.copy()

    monkeypatch.setattr(targeting.SegmentsPolicy, "_generate_bespoke", checked)
    run_bespoke(segments, declared_share)
    assert seen["units"].shape[0] > 100, "too few creatives generated: the comparison proves little"
    np.testing.assert_array_equal(seen["generated"], seen["units"])
    np.testing.assert_array_equal(seen["choice"][seen["personas"]], seen["ids"])


def test_generate_blocks_adds_what_generate_adds_for_the_rows_stacked() -> None:
    rng = np.random.default_rng(8)
    start = rng.standard_normal((5, 4)).astype(np.float32)
    rows = rng.standard_normal((40, 4)) * 3.0
    stacked = Catalogue(start.copy(), 1.0)
    blocked = Catalogue(start.copy(), 1.0)
    ids = stacked.generate(rows)
    block_ids = blocked.generate_blocks(iter([rows[:7], rows[7:7], rows[7:]]))
    np.testing.assert_array_equal(block_ids, ids)
    np.testing.assert_array_equal(blocked.directions, stacked.directions)
    np.testing.assert_allclose(np.linalg.norm(blocked.directions[5:], axis=1), 1.0, rtol=1e-6)
    assert blocked.engine_quality().shape == (45,) and not blocked.engine_quality()[5:].any()
    assert blocked.generate_blocks([]).shape == (0,) and blocked.count == 45
    with pytest.raises(ValueError, match="one weight per taste dimension"):
        blocked.generate_blocks([rows[:2], np.ones((1, 3))])
    with pytest.raises(ValueError, match="non-zero"):
        blocked.generate_blocks([np.zeros((1, 4))])
    assert blocked.count == 45  # a refused block adds nothing
