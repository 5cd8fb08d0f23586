"""The creative catalogue: K creatives, each a unit direction in taste space (DESIGN §1.2)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from masssim.config.schema import CreativesConfig

# Rows normalised at a time: float64 temporaries of this many rows, not of millions.
_NORMALISE_ROWS = 1 << 16


def _unit_directions(directions: np.ndarray, width: int) -> np.ndarray:
    """``directions`` (rows) divided by their norms in float64, stored as float32: a generated creative's
    unit direction. Refuses rows of another width, and rows that are not finite or are zero."""
    rows = np.atleast_2d(np.asarray(directions, np.float64))
    if rows.shape[1] != width:
        raise ValueError("a generated creative must have one weight per taste dimension")
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))[:, None]  # no full-size temporary
    if not np.all(np.isfinite(rows)) or np.any(norms == 0):
        raise ValueError("a generated creative needs a finite, non-zero direction")
    units = np.empty(rows.shape, np.float32)
    for lo in range(0, rows.shape[0], _NORMALISE_ROWS):
        units[lo : lo + _NORMALISE_ROWS] = rows[lo : lo + _NORMALISE_ROWS] / norms[lo : lo + _NORMALISE_ROWS]
    return units


class _CreativeStore:
    """The creatives of one arm, shared by the engine and the policy's view of them."""

    def __init__(self, directions: np.ndarray, quality: np.ndarray | None) -> None:
        self.directions = np.ascontiguousarray(directions, dtype=np.float32)
        k = self.directions.shape[0]
        self.quality = np.zeros(k, np.float32) if quality is None else np.asarray(quality, np.float32)


class Catalogue:
    """The creatives a policy can send: unit directions in taste space, and a production cost each.

    A policy may ``generate`` bespoke creatives aimed at a direction (an estimated taste); they join the
    catalogue with the next ids and pay the production cost when first sent. Each creative also has a
    quality (a click log-odds shift for everyone) that only the engine, and a policy that reads latent
    truth (the oracle), can see; generated creatives have average quality, 0.
    """

    def __init__(
        self,
        directions: np.ndarray,
        production_cost: float,
        quality: np.ndarray | None = None,
        *,
        _store: _CreativeStore | None = None,
        _reveal_quality: bool = True,
    ) -> None:
        self._store = _store if _store is not None else _CreativeStore(directions, quality)
        self.production_cost = production_cost
        self._reveal_quality = _reveal_quality and (_store is not None or quality is not None)

    @property
    def directions(self) -> np.ndarray:
        return self._store.directions

    @property
    def count(self) -> int:
        return int(self._store.directions.shape[0])

    @property
    def quality(self) -> np.ndarray | None:
        """Each creative's true quality; None in a policy's view unless it reads latent truth."""
        return self._store.quality if self._reveal_quality else None

    def engine_quality(self) -> np.ndarray:
        return self._store.quality

    def generate(self, directions: np.ndarray) -> np.ndarray:
        """Add creatives aimed at ``directions`` (rows, normalised here); returns their ids."""
        return self.generate_blocks([directions])

    def generate_blocks(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """Add creatives aimed at the rows of each block in turn, as :meth:`generate` would with the blocks
        stacked; returns their ids. A policy generating millions (one per persona at 1:1) builds each block
        only when it is asked for, so one block of float64 directions exists at a time (a generator)."""
        width = self._store.directions.shape[1]
        return self._append([_unit_directions(block, width) for block in blocks])

    def add(self, directions: np.ndarray) -> np.ndarray:
        """Add creatives whose unit directions another catalogue's :meth:`generate` already made (float32
        rows, kept bit for bit; average quality, 0, as generated): a sharded run's shards copy the
        creatives the coordinator's policy generated (docs/model.md §16.2). Returns their ids."""
        rows = np.asarray(directions, np.float32)
        if rows.ndim != 2 or rows.shape[1] != self._store.directions.shape[1]:
            raise ValueError("added creatives must have one weight per taste dimension")
        return self._append([rows])

    def _append(self, units: list[np.ndarray]) -> np.ndarray:
        """Append float32 unit directions (blocks of rows, checked) with average quality, 0, in one copy of the
        table; returns their ids."""
        first = self.count
        store = self._store
        store.directions = np.concatenate([store.directions, *units])
        store.quality = np.concatenate([store.quality, np.zeros(self.count - first, np.float32)])
        return np.arange(first, self.count, dtype=np.int32)

    def copy(self) -> Catalogue:
        """An independent catalogue (one per arm: what one arm generates, another does not get)."""
        store = _CreativeStore(self._store.directions.copy(), self._store.quality.copy())
        return Catalogue(store.directions, self.production_cost, _store=store, _reveal_quality=True)

    def view(self, *, reveal_quality: bool) -> Catalogue:
        """The same creatives (generation included), with quality hidden unless ``reveal_quality``."""
        return Catalogue(self.directions, self.production_cost, _store=self._store, _reveal_quality=reveal_quality)


def make_catalogue(cfg: CreativesConfig, taste_dims: int, rng: np.random.Generator) -> Catalogue:
    """Directions uniform on the unit sphere (normalised Gaussian draws), so no topic is favoured, and a
    quality per creative ~ N(0, quality_sd^2): some creatives are simply better for everyone, which is what
    a broadcast test-and-learn can find; fit to each customer's taste is what targeting can add."""
    raw = rng.standard_normal((cfg.count, taste_dims))
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    quality = (cfg.quality_sd * rng.standard_normal(cfg.count)).astype(np.float32)
    return Catalogue(directions=(raw / norms).astype(np.float32), production_cost=cfg.production_cost, quality=quality)
