"""What is added to a run's trained encoder before it ships: the tile fingerprint `tune-tiles` trained.

A run's checkpoint is one encoder; the model file is that encoder plus a fingerprint of the band-centred
tile itself (`trainer.tune_tiles`: a linear projection, optionally with a small convolutional residual)
that takes a share of the cosine. `evaluate` must measure exactly what `export` writes, and `export`
takes its threshold from the evaluation of the same encoder, so both take one `Variant`; its `suffix`
names the evaluation's folder.
"""

from __future__ import annotations

from dataclasses import dataclass

from shazamlet.config import FeatureConfig
from shazamlet.model.resnet import check_tile_weight

TILE_VALUES = FeatureConfig.n_mels * FeatureConfig.tile_frames  # a tile fingerprint has at most one dimension per value

TILE_WEIGHT = 0.85  # the tile fingerprint's share of the cosine in the shipped model (trainer/recipes/default.toml)


@dataclass(frozen=True)
class Variant:
    tile_dim: int = 0  # dimensions of the tile fingerprint appended (the run's tiles<D>.pt); 0: the encoder alone
    tile_weight: float = TILE_WEIGHT  # ... its share of the cosine
    tile_residual: int = 0  # ... channels of its convolutional residual (tiles<D>r<C>.pt); 0: linear only

    def __post_init__(self) -> None:
        check_tile_dim(self.tile_dim, zero_ok=True)
        if self.tile_residual < 0:
            raise ValueError(f"a tile residual has a positive number of channels (got {self.tile_residual})")
        if self.tile_residual and not self.tile_dim:
            raise ValueError("a tile residual belongs to a tile fingerprint (--tile-dim D: the run's tiles<D>r<C>.pt)")
        if self.tile_dim:  # told now, not after minutes of loading
            check_tile_weight(self.tile_weight)

    @property
    def suffix(self) -> str:
        """'' for the run's encoder as trained; e.g. '-tile128w0.85-tuned', '-tile128w0.85-tuned-r8'."""
        if not self.tile_dim:
            return ""
        residual = f"-r{self.tile_residual}" if self.tile_residual else ""
        return f"-tile{self.tile_dim}w{self.tile_weight:g}-tuned{residual}"


def check_tile_dim(tile_dim: int, zero_ok: bool = False) -> int:
    """ValueError unless a tile fingerprint of `tile_dim` dimensions can be fitted (0: none, where allowed)."""
    if not (0 if zero_ok else 1) <= tile_dim <= TILE_VALUES:
        raise ValueError(f"a tile fingerprint has 1 to {TILE_VALUES} dimensions (a tile's values; got {tile_dim})")
    return tile_dim
