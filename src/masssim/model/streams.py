"""The tree of random streams: run -> replication -> component.

All randomness flows from one root :class:`numpy.random.SeedSequence` per run (DESIGN §2). A component's
stream is addressed by a fixed key, not by the order in which components happen to ask, so the same seed
gives the same draws whatever the number of workers or arms.

Streams shared by the arms of one replication (population, holdout assignment, purchase occasions) are
what makes comparisons between arms paired (common random numbers). Each arm also gets streams of its own
(its policy and its customers' responses), keyed by the arm's position.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Component(IntEnum):
    """Fixed addresses of the streams of one replication. Never renumber: it would change every result."""

    POPULATION = 0
    HOLDOUT = 1
    OCCASIONS = 2
    CREATIVES = 3
    RESPONSES = 4  # per arm
    POLICY = 5  # per arm
    INBOUND = 6
    DECLARED = 7
    # 12, not 8: left clear of components other branches may be adding at the same time.
    HOLDOUT_BOOTSTRAP = 12  # per arm: resamples of the holdout interval (masssim.estimation.holdout)


def root_sequence(seed: int | None) -> np.random.SeedSequence:
    """The run's root; with no seed, fresh OS entropy (recorded in the manifest so it can be replayed)."""
    return np.random.SeedSequence(seed)


def replication_sequence(root: np.random.SeedSequence, replication: int) -> np.random.SeedSequence:
    """Replication r's sequence: the r-th child of the root, computed directly (no spawn counter state)."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, replication))


def component_sequence(
    replication: np.random.SeedSequence, component: Component, arm: int | None = None
) -> np.random.SeedSequence:
    key = (*replication.spawn_key, 1_000 + int(component))
    if arm is not None:
        key = (*key, arm)
    return np.random.SeedSequence(replication.entropy, spawn_key=key)


RUN_LEVEL_KEY = 1_000_000_000  # above any replication index: run-level streams shared by all replications


def run_level_sequence(replication: np.random.SeedSequence, purpose: int) -> np.random.SeedSequence:
    """A stream of the whole run (the same for every replication), reached from any replication's sequence:
    used for what is fitted once per run, such as the classifier's training corpus."""
    return np.random.SeedSequence(replication.entropy, spawn_key=(*replication.spawn_key[:-1], RUN_LEVEL_KEY + purpose))


def generator(sequence: np.random.SeedSequence) -> np.random.Generator:
    """A PCG64 generator on ``sequence``: the only way code in masssim obtains randomness."""
    return np.random.Generator(np.random.PCG64(sequence))


def chunk_sequence(sequence: np.random.SeedSequence, chunk: int) -> np.random.SeedSequence:
    """Sub-stream for chunk ``chunk`` of a chunked computation (population generation)."""
    return np.random.SeedSequence(sequence.entropy, spawn_key=(*sequence.spawn_key, chunk))
