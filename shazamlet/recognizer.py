"""From audio to an answer: tiles -> fingerprints -> neighbours -> votes, against one library.

The one recognition path used by the CLI, the listening loop, the window and the trainer's
evaluation, so every number the evaluation reports is a number of the product.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from shazamlet.audio.decode import AudioError, decode_source, open_source, source_duration
from shazamlet.config import MatchConfig
from shazamlet.features import answerable
from shazamlet.landmarks import Landmarks, aligned_evidence, landmarks, shared_peaks, song_wide_evidence
from shazamlet.library.library import Library
from shazamlet.matcher import (RANKING, GenreVote, PeakEvidence, SongVote, blend_evidence, blended_similarity, calibrate,
                               genre_from_model, margin_scores, merge_genre_votes, rescore_aligned, vote_for_genre,
                               vote_for_song)
from shazamlet.model.embedder import TileEmbedder
from shazamlet.presence import PresenceMap, presence, presence_map, presence_search

# A query may be a little shorter than one tile (3.02 s): "3 s" clips are padded by up to this much.
MAX_PAD_SECONDS = 0.12
# A file is heard in windows as long as the listener's longest (`listen.ListenPolicy.max_window_s`; 10-s
# clips through a room are identified 100% in the evaluation), at most this many (~1-2 s on a laptop).
FILE_WINDOW_SECONDS = 10.0
FILE_MAX_WINDOWS = 6
# Of the leading candidates, two that share this share of their peaks at their places are one recording
# kept twice (another encode or gain: ~0.9; different music: a few percent); neither is the other's rival.
COPY_CHECKED = 3
COPY_SHARED_PEAKS = 0.5
# A candidate without a rival must owe its lead to its peaks beyond the share of the fingerprints' doubt
# that unrelated music's peaks close by chance: against libraries of one song, 112 clips of other songs
# (clean and through a room) reached up to 0.35 of it, the song's own 32 clips 0.40-0.82.
LONE_CHANCE = 0.25


def file_window_starts(duration_s: float, window_s: float = FILE_WINDOW_SECONDS,
                       max_windows: int = FILE_MAX_WINDOWS) -> list[float]:
    """Where `Recognizer.identify_file`'s windows start (seconds): the first at 0, the last ending at the
    file's end, evenly between; one window when the file fits in it."""
    if duration_s <= window_s or max_windows <= 1:
        return [0.0]
    n = min(max_windows, math.ceil(duration_s / window_s))
    step = (duration_s - window_s) / (n - 1)
    return [i * step for i in range(n)]


@dataclass
class Candidate:
    song_id: int
    path: str
    title: str
    artist: str
    genre: str | None
    score: float  # calibrated confidence, 0..1, 0.5 = the acceptance threshold
    raw_score: float  # the decision score (matcher.margin_scores) that the threshold applies to
    similarity: float  # mean over query tiles of the best cosine at the song's alignment (blended with its peaks' evidence when checked)
    offset_s: float  # where the query starts in the song
    support: int  # query tiles agreeing on this song and alignment
    landmarks: int | None = None  # landmarks shared with the query at one offset; None: not checked
    presence: float | None = None  # how loud the song's peaks are in the query (shazamlet.presence); None: not checked


@dataclass
class Answer:
    song: Candidate | None
    candidates: list[Candidate]
    genre: GenreVote | None
    raw_score: float
    n_tiles: int
    elapsed_ms: float
    silent: bool = False
    fingerprints: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)
    # where the matched query tiles start in the query (frames); silent and half-silent tiles are not among them
    tile_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    # whether the landmark check ranked the candidates (the library keeps peaks for all of them), and
    # what the fingerprints alone would have answered: the evaluation calibrates a threshold for each
    landmarks: bool = False
    fingerprint_song_id: int | None = None
    fingerprint_raw_score: float = 0.0
    # the two genre votes `genre` was made from (the library's neighbours, the model's head), each None
    # when it did not vote: the evaluation records them to judge how they are best combined
    library_genre: GenreVote | None = None
    model_genre: GenreVote | None = None


class Recognizer:
    def __init__(self, library: Library, embedder: TileEmbedder, threshold: float | None = None,
                 match_cfg: MatchConfig = MatchConfig(), landmark_threshold: float | None = None) -> None:
        """`threshold` applies to answers ranked by the fingerprints alone, `landmark_threshold` to those the
        peak checks ranked; both default to the model file's calibration. The peak checks' score is never
        below the fingerprints' own (`matcher.blended_similarity`), so a file calibrated for another
        ranking than this version's (`matcher.RANKING`, written by the trainer's export), or before the
        peak checks existed, gets the higher of its thresholds for them: cautious rather than credulous."""
        self.library = library
        self.embedder = embedder
        self.cfg = match_cfg
        meta = embedder.model.meta
        self.threshold = meta.threshold if threshold is None else threshold
        if landmark_threshold is None:
            if threshold is not None or meta.landmark_threshold is None:
                landmark_threshold = self.threshold
            elif meta.extra.get("ranking") == RANKING:
                landmark_threshold = meta.landmark_threshold
            else:
                landmark_threshold = max(meta.threshold, meta.landmark_threshold)
        self.landmark_threshold = landmark_threshold
        self.features = embedder.features
        self.min_seconds = self.features.tile_seconds - MAX_PAD_SECONDS

    def identify_file(self, path: str | Path) -> Answer:
        """Identify an audio file of any length; AudioError (one line) if it cannot be read or is too short.

        A user asking "what is this file?" means what it starts with or, when that is not one of their
        songs (an intro, a voice, silence), the first song in it. So the file is heard as the listener
        hears the microphone: a window of `FILE_WINDOW_SECONDS` from the start, then, until one names a
        song, windows spread evenly to its end (`file_window_starts`). Each is decoded alone: a 25-minute
        file decoded whole took 3.4 GB and 25 s, and its five songs out-voted each other into "not in
        your library". The answer is the first window's that names a song, else the first window with
        sound (its genre), else silence; `elapsed_ms` adds up the windows heard. A later window that
        cannot be decoded (a damaged stretch) is skipped.
        """
        name = str(path)
        source = open_source(path)
        rate = self.features.sample_rate
        first: Answer | None = None
        elapsed_ms = 0.0
        for i, start in enumerate(file_window_starts(source_duration(source, name))):
            try:
                wave = decode_source(source, name, rate, max_seconds=FILE_WINDOW_SECONDS, start_seconds=start)
            except AudioError:
                if i == 0:
                    raise
                continue
            seconds = len(wave) / rate
            if seconds < self.min_seconds:
                if i == 0:
                    raise AudioError(f"{name}: too short ({seconds:.1f} s; at least 3 s of audio is needed)")
                continue
            answer = self.identify_wave(wave)
            elapsed_ms += answer.elapsed_ms
            if answer.song is not None:
                return replace(answer, elapsed_ms=elapsed_ms)
            if first is None or (first.silent and not answer.silent):
                first = answer
        assert first is not None  # the first window either answered or raised
        return replace(first, elapsed_ms=elapsed_ms)

    def identify_wave(self, wave: np.ndarray) -> Answer:
        """Identify a mono waveform at the front end's sample rate (at least ~3 s long)."""
        started = time.perf_counter()
        need = self.features.tile_samples
        if len(wave) < need:
            wave = np.pad(wave, (0, need - len(wave)))
        tiles = self.embedder.frontend.tiles(wave, self.library.cfg.query_hop_frames)
        # without a tile that is sound throughout there is nothing to identify yet
        keep = answerable(tiles.tiles, tiles.audible, self.features.top_db, self.cfg)
        if not keep.any():
            return Answer(None, [], None, 0.0, 0, _ms(started), silent=True)
        starts = tiles.start_frames[keep]
        fps, probs = self.embedder.encode(tiles.tiles[torch.as_tensor(keep)])
        model_genre = genre_from_model(probs, self.embedder.genres, self.library.genre_labels() or None)
        nb = self.library.neighbours(fps, starts)
        if nb is None:  # empty library
            return Answer(None, [], model_genre, 0.0, len(fps), _ms(started), fingerprints=fps,
                          tile_starts=starts, model_genre=model_genre)
        votes = vote_for_song(nb, self.cfg.align_bin_frames)
        if self.cfg.rescore_top:
            votes = rescore_aligned(votes, fps, nb.query_starts, self.library.song_tiles,
                                    self.cfg.rescore_tolerance_frames, self.cfg.rescore_top)
        songs = {v.song_id: self.library.song(v.song_id) for v in votes}
        votes = [v for v in votes if songs[v.song_id] is not None]  # not removed since the index was built
        fingerprint_top = (votes[0].song_id, margin_scores(votes)[0]) if votes else (None, 0.0)
        checked = self.cfg.landmark_weight > 0 or self.cfg.presence_weight > 0
        lc = self.library.landmark_config
        query = landmarks(wave, lc) if checked else None  # made once: the unsure path checks twice
        heard = presence_map(wave, lc) if checked and self.cfg.presence_weight > 0 else None
        fingerprint_sims = {v.song_id: v.similarity for v in votes}  # before their peaks' evidence is blended in
        peak_check = self._peak_check(query, heard, votes, fps, nb.query_starts) if checked else None
        margins = self._margins(peak_check[0], fingerprint_sims, len(wave)) if peak_check is not None else None
        if (peak_check is not None and heard is not None and self.cfg.presence_search_top and self.library.keeps_peaks
                and margins[0] < self.landmark_threshold):
            # not sure yet: the songs whose peaks stand out in the query are checked too. An answer already
            # accepted is never changed by them (replayed on the evaluation's queries: no accepted answer
            # changed, known or unknown), and the search is the costliest step of an answer
            nominated = self._nominate_by_presence(heard, votes, fps, nb.query_starts)
            songs.update({v.song_id: self.library.song(v.song_id) for v in nominated if v.song_id not in songs})
            nominated = [v for v in nominated if songs[v.song_id] is not None]
            fingerprint_sims.update({v.song_id: v.similarity for v in nominated if v.song_id not in fingerprint_sims})
            if (rechecked := self._peak_check(query, heard, nominated, fps, nb.query_starts)) is not None:
                peak_check, margins = rechecked, self._margins(rechecked[0], fingerprint_sims, len(wave))
        if peak_check is not None:
            votes, counts, present = peak_check
        else:
            margins = margin_scores(votes)
        threshold = self.threshold if peak_check is None else self.landmark_threshold
        frame_s = self.features.frame_seconds
        candidates = []
        for vote, margin in zip(votes, margins):
            song = songs[vote.song_id]
            candidates.append(Candidate(song.id, song.path, song.title, song.artist, song.genre,
                                        calibrate(margin, threshold), margin, vote.similarity,
                                        max(0.0, vote.offset_frames * frame_s), vote.support,
                                        None if peak_check is None else counts[vote.song_id],
                                        None if peak_check is None else present[vote.song_id]))
            if len(candidates) == self.cfg.max_candidates:
                break
        raw = candidates[0].raw_score if candidates else 0.0
        best = candidates[0] if candidates and raw >= threshold else None
        # a library song's genre is the one its neighbours carry (the user's own labels); for anything
        # else the neighbours' vote and the model's classifier (when the model has one, over the genres
        # the library uses; over its own labels only when the library has none) are averaged
        library_genre = vote_for_genre(nb.nearest(self.library.cfg.genre_k), self.library.genres())
        genre = (library_genre or model_genre) if best is not None else merge_genre_votes(library_genre, model_genre)
        return Answer(best, candidates, genre, raw, len(fps), _ms(started), fingerprints=fps,
                      tile_starts=starts, landmarks=peak_check is not None,
                      fingerprint_song_id=fingerprint_top[0], fingerprint_raw_score=fingerprint_top[1],
                      library_genre=library_genre, model_genre=model_genre)

    def _margins(self, votes: list[SongVote], fingerprint_sims: dict[int, float], samples: int) -> list[float]:
        """`matcher.margin_scores` of peak-checked candidates, knowing which of the leading ones are one
        recording kept twice (`landmarks.shared_peaks`: a track on an album and on a compilation).

        A candidate left without a rival (a library of one song, or its other candidates all copies of
        it) is measured against its own fingerprint score: only what its peaks add (landmarks shared
        with the clip, its peaks loud in it) can then accept it. Its place elsewhere in the song is no
        rival: a song that repeats itself matches there too, and is still the right song."""
        lc = self.library.landmark_config
        per_frame = self.features.frame_seconds / lc.frame_seconds
        lead = votes[:COPY_CHECKED]
        packed = [self.library.song_peaks(v.song_id) for v in lead]
        copies = {frozenset((i, j)) for i in range(len(lead)) for j in range(i + 1, len(lead))
                  if packed[i] is not None and packed[j] is not None
                  and shared_peaks(packed[i], int(round(lead[i].offset_frames * per_frame)), packed[j],
                                   int(round(lead[j].offset_frames * per_frame)), samples // lc.hop) >= COPY_SHARED_PEAKS}

        def alone(i: int) -> float:  # the fingerprints' own score, and what chance adds to it
            f = fingerprint_sims.get(votes[i].song_id, votes[i].similarity)
            return f + (1.0 - f) * LONE_CHANCE

        return margin_scores(votes, copies, alone)

    def _nominate_by_presence(self, heard: PresenceMap, votes: list[SongVote], fps: np.ndarray,
                              query_starts: np.ndarray) -> list[SongVote]:
        """The fingerprints' candidates with the songs whose peaks stand out most in the query
        (`presence.presence_search`) among them, each placed where its peaks do and re-scored there;
        the fingerprints' weakest candidates make room, so as many are checked as before.

        Through voices or a room a 3-s clip's fingerprint sometimes lands far from the right song (in the
        evaluation's babble3 clips, 13% had it nowhere among 20 candidates), while its peaks still
        stand out in the clip."""
        cfg = self.cfg
        genres = self.library.genres()  # every song of the library, cached
        if len(genres) <= cfg.presence_search_songs:
            searched = list(genres)
        else:  # the songs nearest the query's fingerprints, nearest first
            wide = self.library.neighbours(fps, query_starts, k=cfg.presence_search_songs)
            ids = wide.song_ids.T.ravel()  # each tile's nearest, then each tile's second, ...
            ids = ids[ids >= 0]
            searched = list(dict.fromkeys(ids.tolist()))[: cfg.presence_search_songs]
        peaks = [(song_id, self.library.song_peaks(song_id)) for song_id in searched]
        lc = self.library.landmark_config
        per_frame = self.features.frame_seconds / lc.frame_seconds
        found = presence_search(heard, [(i, p) for i, p in peaks if p is not None and len(p)],
                                cfg.presence_search_top, cfg.landmark_slack_s / lc.frame_seconds)
        have = {v.song_id for v in votes}
        added = [rescore_aligned([SongVote(n.song_id, 0.0, n.offset / per_frame, 0)], fps, query_starts,
                                 self.library.song_tiles, cfg.rescore_tolerance_frames, 1)[0]
                 for n in found if n.song_id not in have]
        added = [v for v in added if v.support > 0]  # a song with no tiles there (not indexed yet)
        # a nominee the fingerprints already hold keeps its place (and their alignment; the song-wide
        # landmark search may still move it), however weak their vote for it
        named = {n.song_id for n in found}
        held = [v for v in votes if v.song_id in named]
        rest = [v for v in votes if v.song_id not in named]
        keep = max(0, (cfg.rescore_top or cfg.max_candidates) - len(added) - len(held))
        return sorted(held + rest[:keep] + added, key=lambda v: v.similarity, reverse=True)

    def _peak_check(self, query: Landmarks, heard: PresenceMap | None, votes: list[SongVote], fps: np.ndarray,
                    query_starts: np.ndarray) -> tuple[list[SongVote], dict[int, int], dict[int, float | None]] | None:
        """The candidates ranked by fingerprints and their peaks' evidence (`matcher.blend_evidence`), with
        the landmarks each shares with the query and how loud its peaks are in it (`presence`); None when
        a candidate has no stored peaks (a song added by an earlier version): candidates are only
        comparable when all of them were checked.

        A leading candidate with little landmark evidence at its alignment is also searched song-wide
        (`landmarks.song_wide_evidence`): the fingerprints often align a query to another repeat of a
        looping song, where nothing lines up. If the landmarks find a better place, the fingerprints and
        the presence are compared there too, and the candidate keeps whichever place scores higher."""
        votes = votes[: self.cfg.rescore_top or self.cfg.max_candidates]
        if not votes:
            return None
        peaks = [self.library.song_peaks(v.song_id) for v in votes]
        if any(p is None for p in peaks):
            return None
        lc, cfg = self.library.landmark_config, self.cfg
        per_frame = self.features.frame_seconds / lc.frame_seconds  # landmark frames per front-end frame
        slack = cfg.landmark_slack_s / lc.frame_seconds

        def present(vote: SongVote, song_peaks: np.ndarray) -> float:
            return 0.0 if heard is None else presence(heard, song_peaks, vote.offset_frames * per_frame, slack).score

        found = [aligned_evidence(query, p, v.offset_frames * per_frame, slack, lc) for v, p in zip(votes, peaks)]
        evidence = [PeakEvidence(e.excess, present(v, p)) for v, e, p in zip(votes, found, peaks)]
        counts = {v.song_id: e.count for v, e in zip(votes, found)}
        offsets = [e.offset / per_frame if e.excess >= cfg.landmark_offset_evidence else None for e in found]
        votes = list(votes)
        for i in range(min(cfg.landmark_search_top, len(votes))):  # the leading ones by fingerprints
            if evidence[i].landmarks >= cfg.landmark_offset_evidence:
                continue
            song = self.library.song_landmarks(votes[i].song_id)
            if song is None:  # its peaks fell out of the cache and its file went bad since
                continue
            wide = song_wide_evidence(query, song)
            wide_excess = wide.excess - cfg.landmark_search_penalty
            if wide_excess <= evidence[i].landmarks:
                continue
            moved = rescore_aligned([SongVote(votes[i].song_id, 0.0, wide.offset / per_frame, 0)], fps, query_starts,
                                    self.library.song_tiles, cfg.rescore_tolerance_frames, 1)[0]
            there = PeakEvidence(wide_excess, present(moved, peaks[i]))
            if blended_similarity(moved.similarity, there, cfg) > blended_similarity(votes[i].similarity, evidence[i], cfg):
                votes[i], evidence[i], offsets[i] = moved, there, moved.offset_frames
                counts[moved.song_id] = wide.count
        present_by_song = {v.song_id: None if heard is None else e.presence for v, e in zip(votes, evidence)}
        return blend_evidence(votes, evidence, offsets, cfg), counts, present_by_song


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
