"""Votes: from the nearest library tiles of each query tile to a song, an offset, a genre.

Pure numpy, no I/O: the matcher sees neighbours and returns results, it knows nothing of files,
models or output (Olaf habit).

The paper lets the k nearest tiles vote by majority. We keep that (`majority_song`, used by the
evaluation as the paper's baseline) and go further: a neighbour only supports a song *at an
alignment* (library offset minus query offset). Tiles of a 10-s query that agree on the same song
and the same alignment add up; scattered look-alikes do not. The score of a song is the mean, over
query tiles, of the best cosine similarity found at the winning alignment, so it lives in [0, 1] and
the decision score (`margin_scores`) compares it with the runner-up's, so that one calibrated
threshold (stored in the model file) separates "in your library" from "not" in quiet and in noise.

The nearest-neighbour search only nominates candidates. Under a microphone many query tiles have
the right song outside their k nearest tiles, and such a tile would add nothing. So the leading
candidates are re-scored as a whole sequence (Chang et al. 2021's "sequence search"): every query tile
is compared with the candidate's own library tiles at the aligned position (`rescore_aligned`).
Where the library keeps spectral peaks, the re-scored candidates are also checked for landmarks
shared with the query at that place (`shazamlet.landmarks`) and for their own peaks being loud in the
query there (`shazamlet.presence`), and ranked by all three (`blend_evidence`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from shazamlet.config import MatchConfig


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

    def nearest(self, k: int) -> "Neighbours":
        """Only each query tile's k nearest (the index returns them nearest first)."""
        return Neighbours(self.song_ids[:, :k], self.start_frames[:, :k], self.sims[:, :k], self.query_starts)


@dataclass
class SongVote:
    song_id: int
    similarity: float  # mean over query tiles of the best cosine at the winning alignment, 0..1
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
    votes.sort(key=lambda v: v.similarity, reverse=True)
    return votes


# (song_id, first_frame, last_frame) -> (fingerprints (n, d), start frames (n,)) of that song's
# library tiles starting within [first_frame, last_frame]
TileLookup = Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]


def rescore_aligned(votes: list[SongVote], fingerprints: np.ndarray, query_starts: np.ndarray,
                    lookup: TileLookup, tolerance_frames: float, top: int) -> list[SongVote]:
    """The `top` candidates re-scored over the whole query, best first.

    For each candidate every query tile is placed in the song at the vote's offset and compared with
    the library tiles starting within `tolerance_frames` of that place; the score is the mean over
    ALL query tiles of the best cosine (0 where the song has no tile there). A query tile that missed
    the right song in the k-NN still counts, and a look-alike that won a few votes by chance is judged
    on the other tiles too. Candidates beyond `top` are dropped: their votes were weaker.
    """
    qs = np.asarray(query_starts, np.float64)
    out = []
    for v in votes[:top]:
        where = qs + v.offset_frames
        lib_fps, lib_starts = lookup(v.song_id, int(np.floor(where.min() - tolerance_frames)),
                                     int(np.ceil(where.max() + tolerance_frames)))
        if len(lib_starts) == 0:
            out.append(SongVote(v.song_id, 0.0, v.offset_frames, 0))
            continue
        sims = fingerprints.astype(np.float32) @ np.asarray(lib_fps, np.float32).T  # (q, n)
        near = np.abs(np.asarray(lib_starts)[None, :] - where[:, None]) <= tolerance_frames
        best = np.where(near, np.clip(sims, 0.0, 1.0), 0.0).max(axis=1)
        out.append(SongVote(v.song_id, float(best.mean()), v.offset_frames, int(near.any(axis=1).sum())))
    out.sort(key=lambda v: v.similarity, reverse=True)
    return out


# How candidates with peaks are ranked, as a name: a model file's `landmark_threshold` is calibrated on
# these scores, and the trainer's export records this beside it (stop 16's linear blend of landmarks was 1).
RANKING = "noisy-or landmarks+presence/2"


@dataclass
class PeakEvidence:
    """What a candidate's spectral peaks say at its alignment, each in standard deviations above chance."""

    landmarks: float  # landmarks shared with the query at one offset (`landmarks.Evidence.excess`)
    presence: float = 0.0  # the song's peaks loud in the query at one offset (`presence.Presence.score`)


def blend_evidence(votes: list[SongVote], evidence: list[PeakEvidence], offsets: list[float | None],
                   cfg: MatchConfig) -> list[SongVote]:
    """The candidates re-ranked by fingerprint similarity blended with their peaks' evidence, best first.

    Each kind of evidence saturates (`e / (e + scale)`) and weighs less than 1, so a candidate's score
    stays in [0, 1] and peaks alone never make a certainty. `offsets[i]`, where not None, replaces the
    vote's offset (the landmarks place the query to a frame where their evidence is strong).
    """
    out = [SongVote(v.song_id, blended_similarity(v.similarity, e, cfg),
                    v.offset_frames if off is None else off, v.support) for v, e, off in zip(votes, evidence, offsets)]
    out.sort(key=lambda v: v.similarity, reverse=True)
    return out


def blended_similarity(similarity: float, evidence: PeakEvidence, cfg: MatchConfig) -> float:
    """One candidate's ranking score from its fingerprint similarity and peak evidence (see above).

    Each kind of evidence closes a share of the doubt the fingerprints leave, `1 - similarity`, as
    independent evidence does (a noisy OR): `1 - (1 - s)(1 - wl g(e))(1 - wp g(p))`. Evidence that says
    nothing (a drone or a loop, where every offset looks alike) leaves the fingerprints' score as it is,
    rather than diluting it, and a clean match scores near 1. Presence counts only above
    `presence_floor`: the best of ~100 offsets of a wrong song reaches ~2-3 standard deviations by
    chance; the landmarks' chance level is already taken off in their excess."""
    e = max(0.0, evidence.landmarks)
    p = max(0.0, evidence.presence - cfg.presence_floor)
    doubt = 1.0 - float(np.clip(similarity, 0.0, 1.0))
    doubt *= 1.0 - cfg.landmark_weight * e / (e + cfg.landmark_scale)
    doubt *= 1.0 - cfg.presence_weight * p / (p + cfg.presence_scale)
    return float(1.0 - doubt)


def margin_scores(votes: list[SongVote], copies: set[frozenset[int]] = frozenset(),
                  alone: Callable[[int], float] | None = None) -> list[float]:
    """The decision score of each candidate: how far its similarity stands above the best OTHER
    candidate's, relative to the headroom left, `(s - s_other) / (1 - s_other)`.

    A microphone lowers every similarity of a query together (the right song's and the look-alikes'),
    so a fixed threshold on the similarity itself rejects nearly every noisy query or accepts
    unknown clean ones. Measured against the runner-up, the right song of a noisy 10-s query
    still stands out, and an unknown song, whose best candidates are all alike, does not.

    `copies` holds pairs of candidate positions that are one recording (`landmarks.shared_peaks`):
    a copy is no rival. A candidate without any rival (a library of one song, or every other
    candidate a copy of it) is measured against `alone(i)`: with no rival at all, any clip scored its
    similarity, and a library of one song named that song for every clip of other music.
    """
    sims = np.array([v.similarity for v in votes], np.float64)
    out = []
    for i, s in enumerate(sims):
        rivals = [sims[j] for j in range(len(sims)) if j != i and frozenset((i, j)) not in copies]
        other = float(max(rivals)) if rivals else (alone(i) if alone is not None else 0.0)
        out.append(float((s - other) / max(1.0 - other, 1e-6)))
    return out


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
    return _ranked_vote({k: v / norm for k, v in totals.items()})


def _ranked_vote(shares: dict[str, float]) -> GenreVote:
    """A vote from label shares: labels ranked by share, the first one winning."""
    ranked = dict(sorted(shares.items(), key=lambda kv: -kv[1]))
    label = next(iter(ranked))
    return GenreVote(label, ranked[label], ranked)


MIN_MODEL_SHARE = 1e-3


def genre_from_model(probs: np.ndarray | None, labels: list[str], known: set[str] | None = None) -> GenreVote | None:
    """The model's own genre classifier, averaged over the query tiles; None without one.

    With `known` (the library's genres), only the classifier's labels that the library also uses
    vote (compared case-insensitively, named as the library names them): a user's library speaks its
    own genre vocabulary, and a training style it does not use would be noise in it. The dropped
    labels' probability is not handed to the others, so a model that hears a style the library lacks
    stays unsure rather than certain of the nearest label the library has. None when the two share
    no label, or when the labels they share hold almost none of the probability (the model hears none
    of them; a style head gives ~0 to a style it had no training songs of).
    """
    if probs is None or len(probs) == 0 or not labels:
        return None
    mean = np.asarray(probs, np.float64).mean(axis=0)
    shares = {label: float(p) for label, p in zip(labels, mean)}
    if known is not None:
        spelled = {g.casefold(): g for g in sorted(known)}
        shares = {spelled[k.casefold()]: v for k, v in shares.items() if k.casefold() in spelled}
        if sum(shares.values()) < MIN_MODEL_SHARE:  # none of them (e.g. styles the model had no songs of)
            return None
    return _ranked_vote(shares)


def merge_genre_votes(*votes: GenreVote | None) -> GenreVote | None:
    """The mean of several votes' shares (a label a vote lacks counts 0 there); None if none voted.

    For a query that is not accepted as a library song: the neighbours still point at the right
    genre when the song is in the library but too degraded to accept (evaluation, mic10: 76% of such
    queries against 45% for the classifier), and the classifier knows styles the library may lack.
    """
    present = [v for v in votes if v is not None and v.votes]
    if not present:
        return None
    totals: dict[str, float] = defaultdict(float)
    for v in present:
        for label, share in v.votes.items():
            totals[label] += share / len(present)
    return _ranked_vote(totals)


def majority_song(nb: Neighbours) -> int | None:
    """The paper's rule: the most frequent song among all neighbours, alignment ignored."""
    ids = nb.song_ids[nb.song_ids >= 0]
    if ids.size == 0:
        return None
    values, counts = np.unique(ids, return_counts=True)
    return int(values[np.argmax(counts)])
