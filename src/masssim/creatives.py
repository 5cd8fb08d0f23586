"""The creative catalogue: K creatives, each a unit direction in taste space (DESIGN §1.2)."""

from __future__ import annotations

import numpy as np

from masssim.policies.base import Catalogue
from masssim.scenario import CreativesConfig


def make_catalogue(cfg: CreativesConfig, taste_dims: int, rng: np.random.Generator) -> Catalogue:
    """Directions uniform on the unit sphere (normalised Gaussian draws), so no topic is favoured."""
    raw = rng.standard_normal((cfg.count, taste_dims))
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return Catalogue(directions=(raw / norms).astype(np.float32), production_cost=cfg.production_cost)
