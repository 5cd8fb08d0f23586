"""Bespoke creatives at 1:1 are estimated and generated a block of personas at a time
(``SegmentsPolicy._generate_bespoke``, docs/model.md §15.0): the creatives must be the same to the bit
whatever the block, with and without declared taste, and ``Catalogue.generate_blocks`` must add exactly what
``generate`` adds for the rows stacked."""

from __future__ import annotations

import numpy as np
import pytest

import masssim
from masssim.engine.sim import ArmSimulation, build_world
from masssim.model.creatives import Catalogue
from masssim.model.streams import replication_sequence, root_sequence
from masssim.policies import targeting


def run_bespoke(segments: int, declared_share: float) -> tuple[ArmSimulation, dict]:
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
    return sim, sim.run().metrics


# k above N is taken as N: every customer is a persona, and each one tested gets a creative. With 300 personas
# of about ten customers, a persona's declared taste is a mean over several members, summed in their order.
@pytest.mark.parametrize(("segments", "declared_share", "block"), [(10**8, 0.0, 97), (10**8, 0.3, 97), (300, 0.3, 7)])
def test_bespoke_creatives_do_not_depend_on_the_block_of_personas(
    monkeypatch: pytest.MonkeyPatch, segments: int, declared_share: float, block: int
) -> None:
    whole, whole_metrics = run_bespoke(segments, declared_share)  # one block of 2^16 personas
    assert whole.catalogue.count > 12 + 100, "too few creatives generated: the comparison proves little"
    monkeypatch.setattr(targeting, "_BESPOKE_BLOCK", block)  # many blocks, the last one short
    blocks, block_metrics = run_bespoke(segments, declared_share)
    np.testing.assert_array_equal(blocks.catalogue.directions, whole.catalogue.directions)
    np.testing.assert_array_equal(blocks.policy.choice, whole.policy.choice)
    assert block_metrics == whole_metrics


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
