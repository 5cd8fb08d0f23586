"""What one arm of one replication yields: the record the experiment and reporting layers read."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from masssim.model.market import MarketCounts


@dataclass
class ArmOutcome:
    metrics: dict[str, float]
    series: np.ndarray  # [days, len(metrics.TIMESERIES)]
    # With inbound: per responder pool (by name), its utilisation, agent_hours, conversations,
    # false_alarm_conversations and cost (the pools are the scenario's, so they are not registry metrics).
    pools: dict[str, dict[str, float]] = field(default_factory=dict)
    # Every brand's buying in the world without marketing (masssim.model.market): the same for every arm of a
    # replication, so only the first arm tallies it; None for the others.
    market: MarketCounts | None = None
    # Customers by number of purchases of our brand, (treated, holdout): the pooled holdout interval of a
    # run's summary resamples them (masssim.estimation.holdout). A few dozen integers.
    purchase_histograms: tuple[np.ndarray, np.ndarray] | None = None
    # Every brand's buying under this arm's marketing (masssim.model.market.ARM_WORLD); None in outcomes
    # that predate it.
    arm_market: MarketCounts | None = None
