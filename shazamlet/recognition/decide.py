"""Stage 4, decide: from ranked candidates to the answer a user sees.

A candidate's decision score is how far it stands above its best rival (`margin_scores`): a
microphone lowers every similarity of a query together, so a fixed threshold on similarity itself
would reject nearly every noisy query or accept unknown clean ones; against the runner-up, the right
song still stands out and an unknown song, whose candidates are all alike, does not. One recording kept
twice is no rival of itself; a candidate without rivals must owe its lead to its peaks. The
threshold (calibrated on the trainer's evaluation, in the model file) says "in your library" or not,
and the genre comes from the library's labels, the model's classifier, or both.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from shazamlet.landmarks import shared_peaks
from shazamlet.library.index import Neighbours
from shazamlet.presence import Nominee
from shazamlet.recognition.config import DecideConfig
from shazamlet.recognition.nominate import SongVote
from shazamlet.recognition.query import Query
from shazamlet.recognition.verify import PeakEvidence
from shazamlet.recognition.view import LibraryView


@dataclass
class GenreVote:
    label: str
    score: float  # the winning label's share of the votes
    votes: dict[str, float] = field(default_factory=dict)


@dataclass
class Candidate:
    song_id: int
    path: str
    title: str
    artist: str
    genre: str | None
    score: float  # calibrated confidence, 0..1, 0.5 = the acceptance threshold
    raw_score: float  # the decision score (`margin_scores`) that the threshold applies to
    similarity: float  # fingerprint similarity at the song's alignment (blended with its peaks' evidence when checked)
    offset_s: float  # where the query starts in the song
    support: int  # query tiles agreeing on this song and alignment
    landmarks: int | None = None  # landmarks shared with the query at one offset; None: not checked
    presence: float | None = None  # how loud the song's peaks are in the query; None: not checked


@dataclass
class Answer:
    """What a user (the window, the CLI and its JSON) is told about a query."""

    song: Candidate | None  # None: not confidently one of the library's songs
    candidates: list[Candidate]
    genre: GenreVote | None
    raw_score: float
    n_tiles: int
    elapsed_ms: float
    silent: bool = False
    fingerprints: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)  # the window's map
    # where the matched query tiles start in the query (frames): the window marks them on the spectrogram
    tile_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)


@dataclass
class Trace:
    """What only the evaluation (and the listener, to space its searches) reads of an answer; filled in when
    `Recognizer.identify_wave` is given one."""

    landmarks: bool = False  # whether the peak checks ranked the candidates (a threshold is calibrated for each)
    fingerprint_song_id: int | None = None  # what the fingerprints alone would have answered
    fingerprint_raw_score: float = 0.0
    library_genre: GenreVote | None = None  # the two genre votes the answer's genre was made from
    model_genre: GenreVote | None = None
    presence_searched: bool = False  # whether the presence search ran (the listener spaces its searches) ...
    presence_nominees: list[Nominee] | None = None  # ... and what it found (offsets on this query)


def calibrate(raw: float, threshold: float) -> float:
    """Map a raw score to a 0..1 confidence where the acceptance threshold sits at 0.5."""
    raw = float(np.clip(raw, 0.0, 1.0))
    threshold = float(np.clip(threshold, 1e-6, 1 - 1e-6))
    if raw < threshold:
        return 0.5 * raw / threshold
    return 0.5 + 0.5 * (raw - threshold) / (1.0 - threshold)


def margin_scores(votes: list[SongVote], copies: set[frozenset[int]] = frozenset(),
                  alone: Callable[[int], float] | None = None) -> list[float]:
    """The decision score of each candidate: how far its similarity stands above the best OTHER
    candidate's, relative to the headroom left, `(s - s_other) / (1 - s_other)`.

    `copies` holds pairs of candidate positions that are one recording: a copy is no rival. A
    candidate without any rival is measured against `alone(i)`."""
    sims = np.array([v.similarity for v in votes], np.float64)
    out = []
    for i, s in enumerate(sims):
        rivals = [sims[j] for j in range(len(sims)) if j != i and frozenset((i, j)) not in copies]
        other = float(max(rivals)) if rivals else (alone(i) if alone is not None else 0.0)
        out.append(float((s - other) / max(1.0 - other, 1e-6)))
    return out


def peaks_above_chance(evidence: PeakEvidence | None, cfg: DecideConfig) -> bool:
    """Whether a candidate's peaks say more than chance at its alignment (`DecideConfig.accept_landmarks`,
    `accept_presence`). Unrelated music shares a few landmarks and loud peaks with any clip by chance, and its
    fingerprints can still lead a weak field: such an answer was named (10 s of an unknown song at 52%,
    7 landmarks, presence 2.8)."""
    return evidence is None or evidence.landmarks >= cfg.accept_landmarks or evidence.presence >= cfg.accept_presence


def peak_checked_margins(votes: list[SongVote], fingerprint_sims: dict[int, float], query: Query,
                         library: LibraryView, cfg: DecideConfig,
                         evidence: dict[int, PeakEvidence] | None = None) -> list[float]:
    """`margin_scores` of peak-checked candidates, knowing which of the leading ones are one recording
    kept twice (`landmarks.shared_peaks`: a track on an album and on a compilation).

    A candidate left without a rival (a library of one song, or its other candidates all copies of
    it) is measured against its own fingerprint score: only what its peaks add can then accept it. A
    candidate whose peaks are at chance (`peaks_above_chance`, from `evidence`) has no decision score
    above 0, so no threshold accepts it (and the evaluation's calibration sees it so)."""
    frames = len(query.wave) // library.landmark_config.hop
    lead = votes[: cfg.copy_checked]
    at = [int(round(v.offset_frames * query.landmark_frames_per_frame)) for v in lead]
    packed = [library.song_peaks(v.song_id) for v in lead]

    def copy(i: int, j: int) -> bool:
        if packed[i] is None or packed[j] is None:
            return False
        share = query.once(("shared peaks", lead[i].song_id, at[i], lead[j].song_id, at[j]),
                           lambda: shared_peaks(packed[i], at[i], packed[j], at[j], frames))
        return share >= cfg.copy_shared_peaks

    copies = {frozenset((i, j)) for i in range(len(lead)) for j in range(i + 1, len(lead)) if copy(i, j)}

    def alone(i: int) -> float:  # the fingerprints' own score, and what chance adds to it
        f = fingerprint_sims.get(votes[i].song_id, votes[i].similarity)
        return f + (1.0 - f) * cfg.lone_chance

    margins = margin_scores(votes, copies, alone)
    evidence = evidence or {}
    return [m if peaks_above_chance(evidence.get(v.song_id), cfg) else min(m, 0.0) for v, m in zip(votes, margins)]


def candidates(votes: list[SongVote], margins: list[float], songs: dict, threshold: float, frame_s: float,
               landmarks: dict[int, int] | None, presence: dict[int, float | None] | None,
               cfg: DecideConfig) -> list[Candidate]:
    """The leading candidates as a user sees them, with their calibrated confidence."""
    out = []
    for vote, margin in zip(votes[: cfg.max_candidates], margins):
        song = songs[vote.song_id]
        out.append(Candidate(song.id, song.path, song.title, song.artist, song.genre, calibrate(margin, threshold),
                             margin, vote.similarity, max(0.0, vote.offset_frames * frame_s), vote.support,
                             None if landmarks is None else landmarks[vote.song_id],
                             None if presence is None else presence[vote.song_id]))
    return out


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


MIN_MODEL_SHARE = 1e-3  # below this, the library's genres hold none of the model's probability


def genre_from_model(probs: np.ndarray | None, labels: list[str], known: set[str] | None = None) -> GenreVote | None:
    """The model's own genre classifier, averaged over the query tiles; None without one.

    With `known` (the library's genres), only the classifier's labels that the library also uses vote
    (case-insensitively, named as the library names them): a user's library speaks its own genre
    vocabulary. The dropped labels' probability is not handed to the others, so a model that hears a
    style the library lacks stays unsure. None when the labels they share hold almost none of it.
    """
    if probs is None or len(probs) == 0 or not labels:
        return None
    mean = np.asarray(probs, np.float64).mean(axis=0)
    shares = {label: float(p) for label, p in zip(labels, mean)}
    if known is not None:
        spelled = {g.casefold(): g for g in sorted(known)}
        shares = {spelled[k.casefold()]: v for k, v in shares.items() if k.casefold() in spelled}
        if sum(shares.values()) < MIN_MODEL_SHARE:
            return None
    return _ranked_vote(shares)


def merge_genre_votes(*votes: GenreVote | None) -> GenreVote | None:
    """The mean of several votes' shares (a label a vote lacks counts 0 there); None if none voted.

    For a query that is not accepted as a library song: the neighbours still point at the right genre
    when the song is in the library but too degraded to accept (evaluation, mic10: 76% of such queries
    against 45% for the classifier), and the classifier knows styles the library may lack.
    """
    present = [v for v in votes if v is not None and v.votes]
    if not present:
        return None
    totals: dict[str, float] = defaultdict(float)
    for v in present:
        for label, share in v.votes.items():
            totals[label] += share / len(present)
    return _ranked_vote(totals)
