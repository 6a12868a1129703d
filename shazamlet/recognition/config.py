"""What decides an answer, one frozen config per stage of recognition, each value with its reason.

A change here changes answers: measure it with the trainer's evaluation (both draws) and record the
decision in docs/decisions.md. The acceptance threshold itself is not here: it is calibrated on the
evaluation and stored in the model file.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class QueryConfig:
    """What is computed once per query, and how a file is heard."""

    # a "3 s" clip may be a little shorter than one tile (3.02 s): padded by up to this much
    max_pad_seconds: float = 0.12
    # a tile with this many frames this far under its peak is half silence, and matches any song that starts alike
    max_quiet_frames: int = 10
    quiet_below_db: float = 50.0
    # a file is heard in windows as long as the listener's longest, at most this many, spread to its end
    file_window_s: float = 10.0
    file_max_windows: int = 6
    # later windows share the first one's false-accept budget: each must be this sure (docs/decisions.md)
    later_window_confidence: float = 0.65


@dataclass(frozen=True)
class NominateConfig:
    """Which songs, at which alignment, are candidates."""

    # neighbours within one library hop of the winning alignment support it (both tiles around a query tile)
    align_bin_frames: int = 22
    # the vote's leaders, re-scored over the whole query against their tiles within one library hop of the
    # aligned place, then checked by their peaks: as many as an answer shows. Each more is one more chance for
    # a wrong song's peaks to look right by chance: 5 named more clips than 20 (docs/decisions.md)
    rescore_top: int = 5
    rescore_tolerance_frames: int = 22
    # while unsure, the songs whose peaks stand out most in the query join the candidates: the voices' and
    # rooms' misses the fingerprints leave (docs/decisions.md); 0 turns the search off
    presence_search_top: int = 3
    # a larger library searches only the songs nearest the query's fingerprints, so an answer's cost is bounded
    presence_search_songs: int = 256


@dataclass(frozen=True)
class VerifyConfig:
    """How candidates' spectral peaks are weighed against their fingerprints (`verify.blended_similarity`):
    weights and scales in the middle of a plateau of equal accuracy (docs/decisions.md)."""

    landmark_weight: float = 0.5
    landmark_scale: float = 6.0
    presence_weight: float = 0.7
    # the best of ~100 offsets of a wrong song's peaks reaches 2-3 standard deviations by chance
    presence_floor: float = 3.0
    presence_scale: float = 4.0
    # landmarks are looked for within this many seconds of where the fingerprints placed the query (~1 hop)
    landmark_slack_s: float = 1.2
    # with this much evidence the landmarks' 23-ms placement replaces the fingerprints' (~0.3 s)
    landmark_offset_evidence: float = 4.0
    # the leading candidates with less evidence at their alignment are searched song-wide (a looping song
    # is often aligned to another repeat); chance over a whole song reaches ~3.5 more, taken off
    landmark_search_top: int = 3
    landmark_search_penalty: float = 3.5
    # music played fast or slow (turntable, tape, DJ pitch) is checked at these speeds too; () turns it off
    speeds: tuple[float, ...] = (0.92, 0.95, 0.97, 1.03, 1.05, 1.08)
    # ... for the leading candidates by fingerprints whose 1x peaks are at chance (a clear 1x match is never rescaled)
    speed_search_top: int = 3
    # what the best of the speeds gains over 1x by chance alone, taken off its evidence (docs/decisions.md)
    speed_landmark_penalty: float = 1.0
    speed_presence_penalty: float = 1.0
    # an answer whose fingerprints alone lead their best rival by this margin (and pass the model's
    # fingerprint threshold) is not checked: the same answers, half the CPU of clean clips; 0 checks every answer
    sure_margin: float = 0.3


@dataclass(frozen=True)
class DecideConfig:
    """From ranked candidates to the answer."""

    max_candidates: int = 5  # shown and returned in the JSON
    # of the leading candidates, two sharing this share of their peaks at their places are one recording
    # kept twice (another encode: ~0.9; different music: a few percent) and no rival of each other
    copy_checked: int = 3
    copy_shared_peaks: float = 0.5
    # a candidate without a rival must owe its lead to its peaks beyond this share of the fingerprints' doubt
    # (in a one-song library every clip has that song first: docs/decisions.md)
    lone_chance: float = 0.25
    # an answer is accepted only when its peaks say more than chance: landmarks this many standard deviations
    # above chance at one offset, or its peaks this loud in the query (docs/decisions.md, the chance gate)
    accept_landmarks: float = 4.0
    accept_presence: float = 3.5
    # the genre vote of the paper's k = 10 nearest tiles (30 pull a known song's genre to its look-alikes')
    genre_k: int = 10


@dataclass(frozen=True)
class RecognitionConfig:
    query: QueryConfig = field(default_factory=QueryConfig)
    nominate: NominateConfig = field(default_factory=NominateConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    decide: DecideConfig = field(default_factory=DecideConfig)
