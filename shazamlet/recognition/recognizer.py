"""From audio to an answer against one library: query -> nominate -> verify -> decide.

The one recognition path of the CLI, the listening loop, the window and the trainer's evaluation, so
every number the evaluation reports is a number of the product.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from shazamlet.audio.decode import AudioError, decode_source, open_source, source_duration
from shazamlet.recognition.config import RecognitionConfig
from shazamlet.recognition.decide import (Answer, Trace, candidates, genre_from_model, margin_scores,
                                          merge_genre_votes, peak_checked_margins, peaks_above_chance,
                                          vote_for_genre)
from shazamlet.presence import Nominee
from shazamlet.recognition.nominate import join_presence_nominees, nominate, search_by_presence
from shazamlet.recognition.query import Fingerprinter, QueryEncoder
from shazamlet.recognition.verify import RANKING, verify
from shazamlet.recognition.view import LibraryView


def file_window_starts(duration_s: float, window_s: float, max_windows: int) -> list[float]:
    """Where `Recognizer.identify_file`'s windows start (seconds): the first at 0, the last ending at the
    file's end, evenly between; one window when the file fits in it."""
    if duration_s <= window_s or max_windows <= 1:
        return [0.0]
    n = min(max_windows, math.ceil(duration_s / window_s))
    step = (duration_s - window_s) / (n - 1)
    return [i * step for i in range(n)]


class Recognizer:
    def __init__(self, library: LibraryView, embedder: Fingerprinter, threshold: float | None = None,
                 config: RecognitionConfig = RecognitionConfig(), landmark_threshold: float | None = None) -> None:
        """`embedder`: a `TileEmbedder` (or the listener's `WindowFingerprints`). `threshold` applies to
        answers ranked by the fingerprints alone, `landmark_threshold` to those the peak checks ranked;
        both default to the model file's calibration. A file calibrated for another ranking than this
        version's (`verify.RANKING`), or before the peak checks, gets the higher of its thresholds for
        them: cautious rather than credulous."""
        self.library = library
        self.embedder = embedder
        self.cfg = config
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
        self.min_seconds = self.features.tile_seconds - config.query.max_pad_seconds
        self.encode = QueryEncoder(embedder, library.cfg.query_hop_frames, library.landmark_config, config.query)

    def identify_wave(self, wave: np.ndarray, trace: Trace | None = None,
                      presence: list[Nominee] | None = None) -> Answer:
        """Identify a mono waveform at the front end's sample rate (at least ~3 s long). With `trace`,
        also what only the evaluation reads (filled in place). `presence`: the nominees of an earlier
        presence search of the same stream, placed on this wave, checked instead of searching again (the
        listener's window was searched a moment ago, and the search reads only its newest ~3 s)."""
        started = time.perf_counter()
        cfg, library = self.cfg, self.library
        trace = trace if trace is not None else Trace()
        query = self.encode(wave)
        if query.silent:
            return Answer(None, [], None, 0.0, 0, _ms(started), silent=True)
        fps, starts = query.fingerprints, query.starts
        trace.model_genre = genre_from_model(query.probs, self.embedder.genres, library.genre_labels() or None)
        nominees = nominate(query, library, cfg.nominate)
        if nominees is None:  # an empty library
            return Answer(None, [], trace.model_genre, 0.0, len(fps), _ms(started), fingerprints=fps, tile_starts=starts)
        votes = nominees.votes
        if votes:
            trace.fingerprint_song_id, trace.fingerprint_raw_score = votes[0].song_id, margin_scores(votes)[0]
        above_chance = partial(peaks_above_chance, cfg=cfg.decide)  # one bar for the gate and the speed checks
        # the peaks are checked only while unsure: a lead this clear over a rival is not changed by them
        # (a lone candidate has no rival to lead: the decide stage's lone-candidate rule needs its peaks)
        sure = (cfg.verify.sure_margin > 0 and len(votes) >= 2
                and trace.fingerprint_raw_score >= max(cfg.verify.sure_margin, self.threshold))
        if sure and library.keeps_peaks:  # ... unless the leader's own peaks say no more than chance
            # (unknown music has led a weak field of look-alikes by 0.37 on fingerprints alone)
            lead = verify(query, votes[:1], library, cfg.verify, cfg.nominate.rescore_tolerance_frames,
                          cfg.verify.presence_weight > 0, above_chance)
            sure = lead is None or above_chance(lead.evidence.get(votes[0].song_id))
        checked = (cfg.verify.landmark_weight > 0 or cfg.verify.presence_weight > 0) and not sure
        use_presence = cfg.verify.presence_weight > 0
        top = cfg.nominate.rescore_top or cfg.decide.max_candidates

        def verified_margins(votes):
            checked_votes = verify(query, votes[:top], library, cfg.verify, cfg.nominate.rescore_tolerance_frames,
                                   use_presence, above_chance)
            if checked_votes is None:
                return None, None
            return checked_votes, peak_checked_margins(checked_votes.votes, nominees.fingerprint_sims, query, library,
                                                       cfg.decide, checked_votes.evidence)

        verified, margins = verified_margins(votes) if checked else (None, None)
        if (verified is not None and use_presence and cfg.nominate.presence_search_top and library.keeps_peaks
                and margins[0] < self.landmark_threshold):
            # not sure yet: the songs whose peaks stand out in the query are checked too (an answer already
            # accepted is never changed by them, and the search is the costliest step of an answer)
            if presence is None:
                slack = cfg.verify.landmark_slack_s / library.landmark_config.frame_seconds
                presence = search_by_presence(query, nominees, library, cfg.nominate, slack)
                trace.presence_searched = True
            trace.presence_nominees = presence
            nominated = join_presence_nominees(query, nominees, presence, library, cfg.nominate, top)
            rechecked, remargins = verified_margins(nominated)
            if rechecked is not None:
                verified, margins = rechecked, remargins
        if verified is not None:
            votes = verified.votes
        else:
            margins = margin_scores(votes)
        threshold = self.threshold if verified is None else self.landmark_threshold
        found = candidates(votes, margins, nominees.songs, threshold, self.features.frame_seconds,
                           verified and verified.landmarks, verified and verified.presence, cfg.decide)
        raw = found[0].raw_score if found else 0.0
        best = found[0] if found and raw >= threshold else None
        # a library song's genre is the one its neighbours carry (the user's own labels); for anything else
        # the neighbours' vote and the model's classifier are averaged
        trace.library_genre = vote_for_genre(nominees.neighbours.nearest(cfg.decide.genre_k), library.genres())
        trace.landmarks = verified is not None
        genre = ((trace.library_genre or trace.model_genre) if best is not None
                 else merge_genre_votes(trace.library_genre, trace.model_genre))
        return Answer(best, found, genre, raw, len(fps), _ms(started), fingerprints=fps, tile_starts=starts)

    def identify_file(self, path: str | Path) -> Answer:
        """Identify an audio file of any length; AudioError (one line) if it cannot be read or is too short.

        A user asking "what is this file?" means what it starts with or, when that is not one of their
        songs (an intro, a voice, silence), the first song in it. So the file is heard as the listener
        hears the microphone: a window from the start, then, until one names a song, windows spread
        evenly to its end (`file_window_starts`), each decoded alone (a 25-minute file decoded whole
        took 3.4 GB). The answer is the first window's that names a song, else the first window with
        sound (its genre), else silence; `elapsed_ms` adds up the windows heard. A later window that
        cannot be decoded (a damaged stretch) is skipped. Each window heard is another chance of naming
        an unknown song, so a later window names one only with `QueryConfig.later_window_confidence`.
        """
        name = str(path)
        source = open_source(path)
        rate = self.features.sample_rate
        qc = self.cfg.query
        first: Answer | None = None
        elapsed_ms = 0.0
        for i, start in enumerate(file_window_starts(source_duration(source, name), qc.file_window_s,
                                                     qc.file_max_windows)):
            try:
                wave = decode_source(source, name, rate, max_seconds=qc.file_window_s, start_seconds=start)
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
            if i > 0 and answer.song is not None and answer.song.score < qc.later_window_confidence:
                answer = replace(answer, song=None)  # the file's windows share one false-accept budget
            if answer.song is not None:
                return replace(answer, elapsed_ms=elapsed_ms)
            if first is None or (first.silent and not answer.silent):
                first = answer
        assert first is not None  # the first window either answered or raised
        return replace(first, elapsed_ms=elapsed_ms)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
