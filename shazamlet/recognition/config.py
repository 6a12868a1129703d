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
    # a tile with more than this many frames this far under its peak is half silence: it matches the
    # start of any song that begins the same way (a stream's first window named a wrong song at 3.1 s)
    max_quiet_frames: int = 10
    quiet_below_db: float = 50.0
    # a file is heard in windows of the listener's longest (10-s clips through a room: 100% named), at
    # most this many, spread to its end (~1-2 s on a laptop)
    file_window_s: float = 10.0
    file_max_windows: int = 6
    # the windows after the first share its false-accept budget (Bonferroni-like): each must name its song with
    # at least this confidence (the first: 0.5, the threshold), where clips of songs outside the library are
    # accepted ~5x less often (28 -> 5 of 954, both draws); files of such songs named 14 -> 5 of 80
    later_window_confidence: float = 0.65


@dataclass(frozen=True)
class NominateConfig:
    """Which songs, at which alignment, are candidates."""

    # neighbours within one library hop of the winning alignment support it (both tiles around a query tile)
    align_bin_frames: int = 22
    # the leading songs of the vote are re-scored over the whole query against their tiles within one
    # library hop of the aligned place; 20 with 30 neighbours nominating (IndexConfig.k) keep the right
    # song among them for 96 / 87% of mic3 / babble3 clips
    rescore_top: int = 20
    rescore_tolerance_frames: int = 22
    # while unsure, the songs whose peaks stand out most in the query join the candidates (evaluation seed 0:
    # mic3 91 -> 96%, babble3 76 -> 81%, unknown rejection unchanged); 0 turns the search off
    presence_search_top: int = 3
    # a larger library searches only the songs nearest the query's fingerprints, so an answer's cost is bounded
    presence_search_songs: int = 256


@dataclass(frozen=True)
class VerifyConfig:
    """How candidates' spectral peaks are weighed against their fingerprints (`verify.blended_similarity`).

    Replaying the evaluation's queries on two draws, landmark and presence weights 0.3-0.9, floor 3 and
    presence scale 2-4 gave babble3 73-76% and mic3 90-92% pooled: a plateau, these sit in it."""

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
    # music played fast or slow (turntable, tape, DJ pitch) is checked at these speeds too: replayed speed3
    # clips named 8.8 -> 21.2% (research/replay.py); () turns it off
    speeds: tuple[float, ...] = (0.92, 0.95, 0.97, 1.03, 1.05, 1.08)
    # ... for the leading candidates by fingerprints, as many as are searched song-wide
    speed_search_top: int = 3
    # ... only where their 1x peaks are at chance (under decide's accept bars): a clear 1x match is never rescaled
    # the best of 6 speeds beats 1x by chance: wrong candidates' landmarks by +0.8-0.9 at the 90-99th percentile
    speed_landmark_penalty: float = 1.0
    # ... and presence by +0.5: twice that is taken off (0.5 raised unknown clips' scores, research/speed_chance.py)
    speed_presence_penalty: float = 1.0
    # an answer whose fingerprints alone lead their best rival by this margin (and pass the model's
    # fingerprint threshold) is not checked: replayed, 66% of clean and 40% of room clips skip the
    # check with the same songs named and rejected (0.2 accepted an unknown song); 0 checks every answer
    sure_margin: float = 0.3


@dataclass(frozen=True)
class DecideConfig:
    """From ranked candidates to the answer."""

    max_candidates: int = 5  # shown and returned in the JSON
    # of the leading candidates, two sharing this share of their peaks at their places are one recording
    # kept twice (another encode: ~0.9; different music: a few percent) and no rival of each other
    copy_checked: int = 3
    copy_shared_peaks: float = 0.5
    # a candidate without a rival must owe its lead to its peaks beyond this share of the fingerprints'
    # doubt: against one-song libraries, 112 clips of other songs reached up to 0.35, its own 0.40-0.82
    lone_chance: float = 0.25
    # an answer is accepted only when its peaks say more than chance: landmarks this many standard deviations
    # above chance at one offset, or its peaks this loud in the query (chance reached 2.6-5.7 and 2.1-3.9 in
    # the unknown clips that were accepted): the evaluation's unknown clips accepted 10 -> 3 of 480, known clips
    # accepted and right mic3 -1.7, babble3 -2.1, clean3 and mic10 0 points, top-1 within 1 (both draws)
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
