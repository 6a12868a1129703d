"""The style head: a linear classifier on a tile's spectral envelope and rhythm, for songs not in the library.

Why not the genre classifier on the encoder's embedding: the encoder is trained to tell *recordings*
apart (and, with band-centred input, never sees the spectral envelope), so a classifier on its
embedding learns the collections it was trained on. Measured on the evaluation's split (tiles of the
songs of packages held out whole, clean and through the mel-domain room chain, each style weighted
alike): the shipped genre head 37%; a package-balanced logistic regression on these 257 numbers 54%
(electronic 34, metal 83, orchestral 40, tracker 59%); on the embedding 36-39%. Style labels follow
collections, so the fit weights every style alike and every collection of a style alike
(`trainer/style.py`); a style is then learnt from what its collections share, not from the largest one.

The features are cheap (no network): per band the mean, spread and mean absolute change over the
tile (envelope and texture), and the autocorrelation, over 1-32 frames, of the tile's loudness and of
its positive spectral flux (pulse and tempo; 46 ms frames reach 1.5 s), plus the loudness's spread.
"""

from __future__ import annotations

import torch
from torch import nn

MAX_LAG = 32


def _autocorrelation(x: torch.Tensor, max_lag: int) -> torch.Tensor:
    """`(B, T)` -> `(B, max_lag)`: mean lagged product of the centred series over its variance."""
    x = x - x.mean(dim=1, keepdim=True)
    var = x.pow(2).mean(dim=1, keepdim=True) + 1e-6
    lags = [(x[:, :-lag] * x[:, lag:]).mean(dim=1) for lag in range(1, max_lag + 1)]
    return torch.stack(lags, dim=1) / var


def style_features(tiles: torch.Tensor) -> torch.Tensor:
    """Tiles `(B, n_mels, frames)` (or `(B, 1, n_mels, frames)`) in [0, 1] -> `(B, 3 n_mels + 2 MAX_LAG + 1)`."""
    if tiles.dim() == 4:
        tiles = tiles[:, 0]
    tiles = tiles.float()
    band_mean = tiles.mean(dim=2)
    band_std = tiles.std(dim=2, unbiased=False)
    change = tiles.diff(dim=2)
    band_flux = change.abs().mean(dim=2)
    loudness = tiles.mean(dim=1)
    onsets = change.clamp(min=0).sum(dim=1)
    max_lag = _max_lag(tiles.shape[2])
    return torch.cat([band_mean, band_std, band_flux, _autocorrelation(loudness, max_lag),
                      _autocorrelation(onsets, max_lag), loudness.std(dim=1, unbiased=False, keepdim=True)], dim=1)


def _max_lag(frames: int) -> int:
    return min(MAX_LAG, frames - 2)


def n_style_features(n_mels: int, frames: int) -> int:
    """How many numbers `style_features` gives for tiles of `n_mels` x `frames`."""
    return 3 * n_mels + 2 * _max_lag(frames) + 1


class StyleHead(nn.Module):
    """Tiles -> style logits over the model's genres: `style_features` then one linear layer (the fit's
    standardisation is folded into it)."""

    def __init__(self, n_features: int, n_genres: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, n_genres)

    @property
    def n_genres(self) -> int:
        return self.linear.out_features

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.linear(style_features(tiles))
