"""How a run's trained encoder becomes a model file: the choices `evaluate` and `export` share.

A run's checkpoint is one encoder; what ships is that encoder plus changes made after training
(`trainer.reduce`, `trainer.tune_tiles`). An evaluation must measure exactly what the export then
writes, and its folder name says which variant it measured, so both take one `Variant`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shazamlet.model.resnet import check_tile_weight
from trainer.reduce import TILE_WEIGHT


@dataclass(frozen=True)
class Variant:
    fingerprint_dim: int | None = None  # the encoder's fingerprints reduced by a folded PCA (`reduce.fold_pca`)
    tile_dim: int = 0  # a linear fingerprint of the band-centred tile appended (`reduce.fit_tile_projection`)
    tile_weight: float = TILE_WEIGHT  # ... its share of the cosine
    tuned_tiles: bool = False  # ... the one `tune-tiles` trained (RUN/tiles<D>.pt), not a fresh closed-form fit
    tile_residual: int = 0  # ... with the convolutional residual `tune-tiles --residual C` trained (RUN/tiles<D>r<C>.pt)

    def __post_init__(self) -> None:
        if self.tuned_tiles and not self.tile_dim:
            raise ValueError("a tuned tile projection needs its dimension (--tile-dim: which of the run's tiles<D>.pt)")
        if self.tile_residual < 0:
            raise ValueError(f"a tile residual has a positive number of channels (got {self.tile_residual})")
        if self.tile_residual and not self.tuned_tiles:
            raise ValueError("a tile residual exists only trained (--tuned-tiles: the run's tiles<D>r<C>.pt)")
        if self.tile_dim:  # told now, not after minutes of fitting
            check_tile_weight(self.tile_weight)

    @property
    def suffix(self) -> str:
        """'' for the run's encoder as trained; e.g. '-64d', '-tile128w0.7', '-tile128w0.7-tuned', '-tile128w0.85-tuned-r16'."""
        name = f"-{self.fingerprint_dim}d" if self.fingerprint_dim else ""
        if self.tile_dim:
            name += f"-tile{self.tile_dim}w{self.tile_weight:g}" + ("-tuned" if self.tuned_tiles else "")
            name += f"-r{self.tile_residual}" if self.tile_residual else ""
        return name
