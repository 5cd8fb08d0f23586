"""The arm's per-customer state (engine/state.py): the last click's creative is stored in the narrowest type
that holds the catalogue's ids, and widened when a policy's generated creatives outgrow it."""

from __future__ import annotations

import numpy as np

import masssim
from masssim.engine.sim import ArmSimulation, build_world
from masssim.engine.state import CustomerState, creative_id_dtype
from masssim.model.streams import replication_sequence, root_sequence


def test_creative_ids_take_int16_while_they_fit() -> None:
    assert creative_id_dtype(1) == np.int16
    assert creative_id_dtype(32_768) == np.int16  # ids 0 .. 32,767
    assert creative_id_dtype(32_769) == np.int32


def test_hold_creatives_widens_once_and_keeps_every_value() -> None:
    state = CustomerState(5, np.ones(5, np.uint8), 86_400.0, 86_400.0, creatives=30)
    assert state.last_click_creative.dtype == np.int16
    state.last_click_creative[[1, 3]] = [7, 29]
    state.hold_creatives(32_768)
    assert state.last_click_creative.dtype == np.int16
    state.hold_creatives(40_000)
    assert state.last_click_creative.dtype == np.int32
    np.testing.assert_array_equal(state.last_click_creative, [-1, 7, -1, 29, -1])
    state.hold_creatives(30)  # never narrowed again
    assert state.last_click_creative.dtype == np.int32


def test_clicks_on_generated_creatives_past_int16_are_recorded_as_they_are() -> None:
    # 32,760 creatives, then 24 bespoke ones generated after the test phase: ids 32,760 .. 32,783, some above
    # int16's range. A click on one of them must be stored as its id, not wrapped to a negative number.
    scenario = masssim.scenario_from_dict(
        {
            "name": "wide",
            "seed": 2,
            "horizon_days": 12,
            "population": {"customers": 20_000, "persona_signal": 0.9, "crm_scores": 4},
            "creatives": {"count": 32_760},
            "arms": [{"name": "p", "policy": "segments", "segments": 24, "bespoke": True}],
        }
    )
    sim = ArmSimulation(scenario, build_world(scenario, replication_sequence(root_sequence(4), 0)), 0)
    assert sim.state.last_click_creative.dtype == np.int16
    sim.run()
    assert sim.catalogue.count > 32_768  # the bespoke creatives were generated
    last = sim.state.last_click_creative
    assert last.min() >= -1 and last.max() < sim.catalogue.count  # a wrapped id would be below -1
    assert last.max() > 32_767, "no click on a generated creative above int16's range: the test proves nothing"
    assert last.dtype == np.int32
