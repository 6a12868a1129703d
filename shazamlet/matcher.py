"""Votes: from the nearest library tiles of each query tile to a song, an offset, a genre.

Pure numpy, no I/O: the matcher sees neighbours and returns results, it knows nothing of files,
models or output (Olaf habit).

The paper lets the k nearest tiles vote by majority. We keep that (`majority_song`, used by the
evaluation as the paper's baseline) and go further: a neighbour only supports a song *at an
alignment* (library offset minus query offset). Tiles of a 10-s query that agree on the same song
and the same alignment add up; scattered look-alikes do not. The score of a song is the mean, over
query tiles, of the best cosine similarity found at the winning alignment, so it lives in [0, 1] and
a single calibrated threshold (stored in the model file) separates "in your library" from "not".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Neighbours:
    """k nearest library tiles of each of q query tiles."""

    song_ids: np.ndarray  # (q, k) int, -1 where fewer than k were found
    start_frames: np.ndarray  # (q, k) int: where each library tile starts in its song
    sims: np.ndarray  # (q, k) float: cosine similarity to the query tile
    query_starts: np.ndarray  # (q,) int: where each query tile starts in the query

    @property
    def n_queries(self) -> int:
        return len(self.query_starts)


@dataclass
class SongVote:
    song_id: int
    raw_score: float  # mean best similarity at the winning alignment, 0..1
    offset_frames: float  # where the query starts in the song
    support: int  # how many query tiles voted at that alignment


@dataclass
class GenreVote:
    label: str
    score: float  # the winning label's share of the votes
    votes: dict[str, float] = field(default_factory=dict)


def calibrate(raw: float, threshold: float) -> float:
    """Map a raw score to a 0..1 confidence where the acceptance threshold sits at 0.5."""
    raw = float(np.clip(raw, 0.0, 1.0))
    threshold = float(np.clip(threshold, 1e-6, 1 - 1e-6))
    if raw < threshold:
        return 0.5 * raw / threshold
    return 0.5 + 0.5 * (raw - threshold) / (1.0 - threshold)


def vote_for_song(nb: Neighbours, tolerance_frames: float, sharpness: float = 0.02) -> list[SongVote]:
    """Songs ranked by time-consistent support, best first."""
    n_q = max(nb.n_queries, 1)
    deltas = nb.start_frames - nb.query_starts[:, None]
    sims = np.clip(nb.sims, 0.0, 1.0)
    points: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for q in range(nb.song_ids.shape[0]):
        for j in range(nb.song_ids.shape[1]):
            sid = int(nb.song_ids[q, j])
            if sid >= 0:
                points[sid].append((q, float(deltas[q, j]), float(sims[q, j])))
    votes = []
    for sid, pts in points.items():
        arr = np.array(pts)  # (p, 3): query index, delta, sim
        best = None
        for centre in np.unique(arr[:, 1]):
            near = arr[np.abs(arr[:, 1] - centre) <= tolerance_frames]
            per_q: dict[int, float] = {}
            for q, _, s in near:
                per_q[int(q)] = max(per_q.get(int(q), 0.0), s)
            total = sum(per_q.values())
            if best is None or total > best[0]:
                best = (total, near, len(per_q))
        total, near, support = best
        votes.append(SongVote(sid, total / n_q, _refine_offset(near, sharpness), support))
    votes.sort(key=lambda v: v.raw_score, reverse=True)
    return votes


def _refine_offset(near: np.ndarray, sharpness: float) -> float:
    """Offset from the neighbours at the winning alignment: per query tile, a similarity-weighted
    mean of the library positions it matched (neighbouring library tiles bracket the true start),
    then the median over query tiles."""
    estimates = []
    for q in np.unique(near[:, 0]):
        rows = near[near[:, 0] == q]
        w = np.exp((rows[:, 2] - rows[:, 2].max()) / sharpness)
        estimates.append(float(np.sum(w * rows[:, 1]) / np.sum(w)))
    return float(np.median(estimates))


def vote_for_genre(nb: Neighbours, genre_of_song: dict[int, str | None]) -> GenreVote | None:
    """Similarity-weighted vote of the neighbours' genres; None if no neighbour has one."""
    totals: dict[str, float] = defaultdict(float)
    sims = np.clip(nb.sims, 0.0, 1.0)
    for sid, s in zip(nb.song_ids.ravel(), sims.ravel()):
        label = genre_of_song.get(int(sid))
        if label:
            totals[label] += float(s) + 1e-6
    if not totals:
        return None
    norm = sum(totals.values())
    shares = {k: v / norm for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    label = next(iter(shares))
    return GenreVote(label, shares[label], shares)


def majority_song(nb: Neighbours) -> int | None:
    """The paper's rule: the most frequent song among all neighbours, alignment ignored."""
    ids = nb.song_ids[nb.song_ids >= 0]
    if ids.size == 0:
        return None
    values, counts = np.unique(ids, return_counts=True)
    return int(values[np.argmax(counts)])
