"""The creative catalogue: K creatives, each a unit direction in taste space (DESIGN §1.2)."""

from __future__ import annotations

import numpy as np

from masssim.policies.base import Catalogue
from masssim.scenario import CreativesConfig


def make_catalogue(cfg: CreativesConfig, taste_dims: int, rng: np.random.Generator) -> Catalogue:
    """Directions uniform on the unit sphere (normalised Gaussian draws), so no topic is favoured, and a
    quality per creative ~ N(0, quality_sd^2): some creatives are simply better for everyone, which is what
    a broadcast test-and-learn can find; fit to each customer's taste is what targeting can add."""
    raw = rng.standard_normal((cfg.count, taste_dims))
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    quality = (cfg.quality_sd * rng.standard_normal(cfg.count)).astype(np.float32)
    return Catalogue(directions=(raw / norms).astype(np.float32), production_cost=cfg.production_cost, quality=quality)
