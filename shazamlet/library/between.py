"""In-between tiles: finer alignment for re-scoring, without a bigger index.

The index holds one tile per library hop (1.02 s), so a query starts up to half a hop (0.51 s) away
from the nearest library tile. The tile projection, the fine time-frequency part of the fingerprint,
is what suffers most from that: single 3-s tiles of the shipped model through the evaluation's mic3
chain were found 84.2% of the time with library tiles every 1.02 s, 86.3% with the tiles halfway
between them added as this module makes them, 86.7% with those in full and 87.1% with a tile at every
frame (babble3: 60.4 / 62.9 / 64.2 / 64.2%; trainer/README.md).

So each song also keeps the tile projection of the tiles halfway between its indexed tiles, as int8
(`tile_dim` bytes each, like the IVF index's codes), in its fingerprint file. They are not indexed:
the search nominates songs from the indexed tiles, so the index and its memory do not grow, and the
re-scoring (`recognition.nominate.rescore_aligned`) compares the query with them as well. Their model part is the
normalised mean of the indexed tiles on either side: a ResNet pass for them would cost about six
times what the projection does, and the ResNet's pooled fingerprint changes slowly along a song.
"""

from __future__ import annotations

import numpy as np

from shazamlet.library.ivf import quantise, unit_rows


def encode_between(projections: np.ndarray) -> np.ndarray:
    """Unit tile projections `(n, tile_dim)` -> the int8 codes a fingerprint file keeps."""
    return quantise(projections)


def between_fingerprints(fps: np.ndarray, starts: np.ndarray, codes: np.ndarray, between_starts: np.ndarray,
                         layout: tuple[int, float], max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Full fingerprints of in-between tiles, and their start frames.

    `fps`, `starts`: the song's indexed tiles around them (start order); `codes`: the in-between
    tiles' int8 tile projections; `layout`: `TileEmbedder.tile_layout`. The model part is the mean
    of the nearest indexed tile before and after (each used only within `max_gap` frames, so a
    silent stretch left out of the index lends nothing); a tile with neither is dropped.
    """
    split, weight = layout
    n = len(starts)
    if n == 0 or len(between_starts) == 0:
        return np.zeros((0, split + codes.shape[1]), np.float32), np.zeros(0, np.int64)
    starts = np.asarray(starts, np.int64)
    b = np.asarray(between_starts, np.int64)
    model = np.asarray(fps[:, :split], np.float32)
    after = np.searchsorted(starts, b, "right")  # first indexed tile starting after each in-between tile
    before = after - 1
    has_before = (before >= 0) & (b - starts[np.clip(before, 0, n - 1)] <= max_gap)
    has_after = (after < n) & (starts[np.clip(after, 0, n - 1)] - b <= max_gap)
    mixed = (np.where(has_before[:, None], model[np.clip(before, 0, n - 1)], 0.0)
             + np.where(has_after[:, None], model[np.clip(after, 0, n - 1)], 0.0))
    keep = has_before | has_after
    mixed = unit_rows(mixed[keep]) * np.sqrt(1.0 - weight)
    tile = unit_rows(codes[keep]) * np.sqrt(weight)
    return np.concatenate([mixed, tile], axis=1).astype(np.float32), b[keep]
