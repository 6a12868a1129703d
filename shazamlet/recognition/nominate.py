"""Stage 2, nominate: which songs, at which alignment, are candidates for a query.

The paper lets the k nearest library tiles vote by majority (a test keeps it as the baseline).
Here a neighbour supports a song *at an alignment* (library offset minus query offset): tiles of a
query that agree on the same song and place add up, scattered look-alikes do not (`vote_for_song`).
Under a microphone many query tiles have the right song outside their k nearest, so the leading songs
are re-scored as a whole sequence against their own tiles at the aligned place (`rescore_aligned`,
Chang et al. 2021's sequence search). While the answer is unsure, the songs whose spectral peaks stand
out most in the query join them (`search_by_presence`, `join_presence_nominees`): through voices a
clip's fingerprints sometimes land far from the right song while its peaks still stand out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from shazamlet.library.catalog import Song
from shazamlet.library.index import Neighbours
from shazamlet.presence import Nominee, presence_search
from shazamlet.recognition.config import NominateConfig
from shazamlet.recognition.query import Query
from shazamlet.recognition.view import LibraryView


@dataclass
class SongVote:
    song_id: int
    similarity: float  # mean over query tiles of the best cosine at the winning alignment, 0..1
    offset_frames: float  # where the query starts in the song
    support: int  # how many query tiles voted at that alignment


@dataclass
class Nominees:
    """The candidates of a query, best first, with what later stages read of them."""

    neighbours: Neighbours
    votes: list[SongVote]
    songs: dict[int, Song]  # every candidate's metadata (also those dropped from `votes` later)
    fingerprint_sims: dict[int, float]  # each candidate's fingerprint similarity, before any peak evidence

    def add(self, votes: list[SongVote], library: LibraryView) -> list[SongVote]:
        """Learn the songs of `votes` not seen yet; returns those still in the library."""
        self.songs.update({v.song_id: library.song(v.song_id) for v in votes if v.song_id not in self.songs})
        votes = [v for v in votes if self.songs[v.song_id] is not None]  # not removed since the index was built
        for v in votes:
            self.fingerprint_sims.setdefault(v.song_id, v.similarity)
        return votes


def nominate(query: Query, library: LibraryView, cfg: NominateConfig) -> Nominees | None:
    """The songs the query's neighbours vote for, re-scored over the whole query; None for an empty library."""
    nb = library.neighbours(query.fingerprints, query.starts)
    if nb is None:
        return None
    votes = vote_for_song(nb, cfg.align_bin_frames)
    if cfg.rescore_top:
        votes = rescore_aligned(votes, query.fingerprints, nb.query_starts, library.song_tiles,
                                cfg.rescore_tolerance_frames, cfg.rescore_top)
    nominees = Nominees(nb, [], {}, {})
    nominees.votes = nominees.add(votes, library)
    return nominees


def search_by_presence(query: Query, nominees: Nominees, library: LibraryView, cfg: NominateConfig,
                       slack_frames: float) -> list[Nominee]:
    """The songs whose peaks stand out most in the query (`presence.presence_search`): in a large library,
    among the songs nearest the query's fingerprints."""
    genres = library.genres()  # every song of the library, cached
    if len(genres) <= cfg.presence_search_songs:
        searched = list(genres)
    else:  # the songs nearest the query's fingerprints, nearest first
        wide = library.neighbours(query.fingerprints, nominees.neighbours.query_starts, k=cfg.presence_search_songs)
        ids = wide.song_ids.T.ravel()  # each tile's nearest, then each tile's second, ...
        searched = list(dict.fromkeys(ids[ids >= 0].tolist()))[: cfg.presence_search_songs]
    peaks = [(song_id, library.song_peaks(song_id)) for song_id in searched]
    return presence_search(query.presence_map, [(i, p) for i, p in peaks if p is not None and len(p)],
                           cfg.presence_search_top, slack_frames)


def join_presence_nominees(query: Query, nominees: Nominees, found: list[Nominee], library: LibraryView,
                           cfg: NominateConfig, keep: int) -> list[SongVote]:
    """The candidates with the presence search's nominees among them, each placed where its peaks stand
    out and re-scored there; the fingerprints' weakest candidates make room, so that `keep` are checked
    as before. A nominee the fingerprints already hold keeps its place (and their alignment), however
    weak their vote for it."""
    per_frame = query.landmark_frames_per_frame
    votes, query_starts = nominees.votes, nominees.neighbours.query_starts
    have = {v.song_id for v in votes}
    added = [rescore_aligned([SongVote(n.song_id, 0.0, n.offset / per_frame, 0)], query.fingerprints, query_starts,
                             library.song_tiles, cfg.rescore_tolerance_frames, 1)[0]
             for n in found if n.song_id not in have]
    added = [v for v in added if v.support > 0]  # a song with no tiles there (not indexed yet)
    named = {n.song_id for n in found}
    held = [v for v in votes if v.song_id in named]
    rest = [v for v in votes if v.song_id not in named]
    room = max(0, keep - len(added) - len(held))
    return nominees.add(sorted(held + rest[:room] + added, key=lambda v: v.similarity, reverse=True), library)


def vote_for_song(nb: Neighbours, tolerance_frames: float, sharpness: float = 0.02,
                  block: int = 1024) -> list[SongVote]:
    """Songs ranked by time-consistent support, best first: each song's alignment is the one where the
    query tiles' best similarities within `tolerance_frames` add up most.

    Every neighbour's offset is tried as a song's alignment at once, `block` of them at a time (a
    neighbour against every other: ~420 x 420 for a 10-s window), not song by song in Python (x2.4 the
    CPU of a live answer's vote)."""
    n_q = max(nb.n_queries, 1)
    ids = np.asarray(nb.song_ids)
    keep = ids >= 0
    deltas = (nb.start_frames - nb.query_starts[:, None])[keep].astype(np.float64)  # by query tile, then rank
    sims = np.nan_to_num(np.clip(nb.sims, 0.0, 1.0)[keep].astype(np.float64))  # a NaN supports nothing
    tile = np.broadcast_to(np.arange(ids.shape[0])[:, None], ids.shape)[keep]
    ids = ids[keep]
    if not len(ids):
        return []
    tiles_from = np.flatnonzero(np.r_[True, tile[1:] != tile[:-1]])
    near = np.zeros((len(ids), len(ids)), bool)  # [centre, neighbour]: same song, within the tolerance
    totals = np.zeros(len(ids))
    for a in range(0, len(ids), block):
        rows = slice(a, a + block)
        near[rows] = (ids[rows, None] == ids[None, :]) & (np.abs(deltas[rows, None] - deltas[None, :]) <= tolerance_frames)
        best_per_tile = np.maximum.reduceat(np.where(near[rows], sims[None, :], 0.0), tiles_from, axis=1)
        totals[rows] = np.cumsum(best_per_tile, axis=1)[:, -1]  # added in tile order (the same float sums)
    # each song's alignment: the highest total, the lowest offset among equals
    order = np.lexsort((deltas, -totals, ids))
    best = order[np.r_[True, ids[order][1:] != ids[order][:-1]]]  # by song id
    _, seen = np.unique(ids, return_index=True)
    votes = []
    for c in best[np.argsort(seen, kind="stable")]:  # the songs in the order the neighbours name them (ties keep it)
        rows = near[c]
        if rows.sum() == 1:  # a lone neighbour: its own offset, as `_refine_offset` would make it
            votes.append(SongVote(int(ids[c]), float(totals[c]) / n_q, float(deltas[c]), 1))
            continue
        points = np.stack([tile[rows].astype(np.float64), deltas[rows], sims[rows]], axis=1)
        votes.append(SongVote(int(ids[c]), float(totals[c]) / n_q, _refine_offset(points, sharpness),
                              len(np.unique(tile[rows]))))
    votes.sort(key=lambda v: v.similarity, reverse=True)
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
