"""Stage 3, verify: what the candidates' spectral peaks say, weighed with their fingerprints.

Where the library keeps peaks, each candidate is checked at its alignment for landmarks (pairs of
peaks) shared with the query (`shazamlet.landmarks`, as classic fingerprinters do) and for its own
peaks being loud in the query (`shazamlet.presence`, which survives people talking over the music),
and the candidates are re-ranked by all three (`blend_evidence`). A leading candidate with little
landmark evidence where the fingerprints placed it is searched song-wide: they often align a query to
another repeat of a looping song. A leading candidate whose peaks are at chance at 1x is also checked as if
the query had been played a few percent fast or slow (`shazamlet.recognition.speed`), its evidence reduced
by what chance gains from the speeds tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from shazamlet.landmarks import Evidence, aligned_evidence, song_wide_evidence
from shazamlet.presence import presence
from shazamlet.recognition.config import VerifyConfig
from shazamlet.recognition.nominate import SongVote, TileLookup, rescore_aligned
from shazamlet.recognition.query import Query
from shazamlet.recognition.speed import speed_evidence
from shazamlet.recognition.view import LibraryView

# How candidates with peaks are ranked, as a name: a model file's `landmark_threshold` is calibrated on
# these scores, and the trainer's export records this beside it.
RANKING = "noisy-or landmarks+presence/2"


@dataclass
class PeakEvidence:
    """What a candidate's spectral peaks say at its alignment, each in standard deviations above chance."""

    landmarks: float  # landmarks shared with the query at one offset (`landmarks.Evidence.excess`)
    presence: float = 0.0  # the song's peaks loud in the query at one offset (`presence.Presence.score`)


@dataclass
class Verified:
    """The candidates ranked by fingerprints and peaks, best first, and what their peaks showed."""

    votes: list[SongVote]
    landmarks: dict[int, int]  # landmarks each shares with the query at one offset
    presence: dict[int, float | None]  # how loud each one's peaks are in the query; None: not looked at
    evidence: dict[int, PeakEvidence] = field(default_factory=dict)  # each one's peaks above chance, as ranked


def verify(query: Query, votes: list[SongVote], library: LibraryView, cfg: VerifyConfig, tolerance_frames: float,
           use_presence: bool, above_chance: Callable[[PeakEvidence], bool]) -> Verified | None:
    """`votes` (the nominate stage's, already cut to those worth checking) ranked with their peaks'
    evidence; None when a candidate has no stored peaks (a song added by an earlier version):
    candidates are only comparable when all of them were checked. Other speeds are tried only for
    leading candidates whose 1x peaks are not `above_chance` (the decide stage's bar): a clear 1x
    match is never rescaled."""
    if not votes:
        return None
    peaks = [library.song_peaks(v.song_id) for v in votes]
    if any(p is None for p in peaks):
        return None
    lc = library.landmark_config
    per_frame = query.landmark_frames_per_frame
    slack = cfg.landmark_slack_s / lc.frame_seconds
    heard = query.presence_map if use_presence else None

    def present(vote: SongVote, song_peaks: np.ndarray) -> float:
        at = vote.offset_frames * per_frame
        return 0.0 if heard is None else query.once(
            ("presence", vote.song_id, at, slack), lambda: presence(heard, song_peaks, at, slack).score)

    def shared(vote: SongVote, song_peaks: np.ndarray):
        at = vote.offset_frames * per_frame
        return query.once(("landmarks", vote.song_id, at, slack),
                          lambda: aligned_evidence(query.landmarks, song_peaks, at, slack, lc))

    found = [shared(v, p) for v, p in zip(votes, peaks)]
    evidence = [PeakEvidence(e.excess, present(v, p)) for v, e, p in zip(votes, found, peaks)]
    counts = {v.song_id: e.count for v, e in zip(votes, found)}
    offsets = [e.offset / per_frame if e.excess >= cfg.landmark_offset_evidence else None for e in found]
    votes = list(votes)
    for i in range(min(cfg.speed_search_top, len(votes))):  # leading ones at chance at 1x: another speed?
        if above_chance(evidence[i]):
            continue
        fast = _at_best_speed(query, votes[i], peaks[i], slack, cfg, heard is not None)
        if fast is not None and (blended_similarity(votes[i].similarity, fast[0], cfg)
                                 > blended_similarity(votes[i].similarity, evidence[i], cfg)):
            evidence[i], counts[votes[i].song_id] = fast[0], fast[1]
            offsets[i] = fast[2] / per_frame if fast[0].landmarks >= cfg.landmark_offset_evidence else None
    for i in range(min(cfg.landmark_search_top, len(votes))):  # the leading ones by fingerprints
        if evidence[i].landmarks >= cfg.landmark_offset_evidence:
            continue
        wide = query.once(("song-wide", votes[i].song_id), lambda: _song_wide(query, library, votes[i].song_id))
        if wide is None:  # its peaks fell out of the cache and its file went bad since
            continue
        wide_excess = wide.excess - cfg.landmark_search_penalty
        if wide_excess <= evidence[i].landmarks:
            continue
        moved = _moved(votes[i].song_id, wide.offset / per_frame, query, library.song_tiles, tolerance_frames)
        there = PeakEvidence(wide_excess, present(moved, peaks[i]))
        if blended_similarity(moved.similarity, there, cfg) > blended_similarity(votes[i].similarity, evidence[i], cfg):
            votes[i], evidence[i], offsets[i] = moved, there, moved.offset_frames
            counts[moved.song_id] = wide.count
    present_by_song = {v.song_id: None if heard is None else e.presence for v, e in zip(votes, evidence)}
    return Verified(blend_evidence(votes, evidence, offsets, cfg), counts, present_by_song,
                    {v.song_id: e for v, e in zip(votes, evidence)})


def _song_wide(query: Query, library: LibraryView, song_id: int) -> Evidence | None:
    song = library.song_landmarks(song_id)
    return None if song is None else song_wide_evidence(query.landmarks, song)


def _at_best_speed(query: Query, vote: SongVote, song_peaks: np.ndarray, slack: float, cfg: VerifyConfig,
                   use_presence: bool) -> tuple[PeakEvidence, int, int] | None:
    """The candidate's peak evidence at the best of `cfg.speeds` (less what chance gains from trying them all),
    its landmark count and its offset (landmark frames); None without speeds to try."""
    at = vote.offset_frames * query.landmark_frames_per_frame
    found = query.once(("speeds", vote.song_id, at, slack, cfg.speeds, use_presence), lambda: speed_evidence(
        [query.at_speed(s, use_presence) for s in cfg.speeds], song_peaks, at, slack, query.landmark_cfg))
    scored = [(PeakEvidence(max(0.0, e.landmarks - cfg.speed_landmark_penalty),
                            max(0.0, e.presence - cfg.speed_presence_penalty)), e.count, e.offset) for e in found]
    return max(scored, key=lambda x: blended_similarity(vote.similarity, x[0], cfg), default=None)


def _moved(song_id: int, offset_frames: float, query: Query, lookup: TileLookup, tolerance_frames: float) -> SongVote:
    """A candidate placed at `offset_frames` and re-scored there by its fingerprints."""
    return rescore_aligned([SongVote(song_id, 0.0, offset_frames, 0)], query.fingerprints, query.starts, lookup,
                           tolerance_frames, 1)[0]


def blend_evidence(votes: list[SongVote], evidence: list[PeakEvidence], offsets: list[float | None],
                   cfg: VerifyConfig) -> list[SongVote]:
    """The candidates re-ranked by fingerprint similarity blended with their peaks' evidence, best first.

    Each kind of evidence saturates (`e / (e + scale)`) and weighs less than 1, so a candidate's score
    stays in [0, 1] and peaks alone never make a certainty. `offsets[i]`, where not None, replaces the
    vote's offset (the landmarks place the query to a frame where their evidence is strong).
    """
    out = [SongVote(v.song_id, blended_similarity(v.similarity, e, cfg),
                    v.offset_frames if off is None else off, v.support) for v, e, off in zip(votes, evidence, offsets)]
    out.sort(key=lambda v: v.similarity, reverse=True)
    return out


def blended_similarity(similarity: float, evidence: PeakEvidence, cfg: VerifyConfig) -> float:
    """One candidate's ranking score from its fingerprint similarity and peak evidence.

    Each kind of evidence closes a share of the doubt the fingerprints leave, `1 - similarity`, as
    independent evidence does (a noisy OR): `1 - (1 - s)(1 - wl g(e))(1 - wp g(p))`. Evidence that says
    nothing (a drone or a loop, where every offset looks alike) leaves the fingerprints' score as it is,
    rather than diluting it, and a clean match scores near 1. Presence counts only above
    `presence_floor`; the landmarks' chance level is already taken off in their excess."""
    e = max(0.0, evidence.landmarks)
    p = max(0.0, evidence.presence - cfg.presence_floor)
    doubt = 1.0 - float(np.clip(similarity, 0.0, 1.0))
    doubt *= 1.0 - cfg.landmark_weight * e / (e + cfg.landmark_scale)
    doubt *= 1.0 - cfg.presence_weight * p / (p + cfg.presence_scale)
    return float(1.0 - doubt)
