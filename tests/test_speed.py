"""Speed hypotheses in the verify stage (shazamlet/recognition/speed.py): a clip played 5% slow or fast
(tempo and pitch together) shares only chance landmarks with its song at 1x; checked at the right speed it
is found again, at its own place in the song, and a clip played at 1x is checked exactly as before."""

from __future__ import annotations

import types
from dataclasses import replace

import numpy as np
import pytest
from synth import STYLES, add_noise, make_song

from shazamlet.config import LandmarkConfig
from shazamlet.landmarks import peaks
from shazamlet.recognition.config import DecideConfig, VerifyConfig
from shazamlet.recognition.decide import peaks_above_chance
from shazamlet.recognition.nominate import SongVote
from shazamlet.recognition.query import Query
from shazamlet.recognition.speed import heard_at, rescale_peaks, speed_evidence
from shazamlet.recognition.verify import PeakEvidence, blended_similarity, verify
from trainer.degrade_wave import at_speed

SR = 22_050
LC = LandmarkConfig()
START_S = 6.0  # where the clip starts in its song
SLACK = 1.2 / LC.frame_seconds
# the song-wide search at 1x would need the songs' fingerprints: not what is tested here
CFG = VerifyConfig(landmark_search_top=0)


def above_chance(evidence: PeakEvidence) -> bool:
    return peaks_above_chance(evidence, DecideConfig())


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    return [make_song(700 + i, STYLES[i % len(STYLES)], 16.0) for i in range(3)]


@pytest.fixture(scope="module")
def library(waves):
    packed = {i: peaks(w) for i, w in enumerate(waves)}
    return types.SimpleNamespace(landmark_config=LC, song_peaks=packed.get, song_landmarks=lambda i: None,
                                 song_tiles=None)


def clip(wave: np.ndarray, speed: float, seconds: float = 3.0) -> np.ndarray:
    """`seconds` of the song from START_S played at `speed`, with noise 10 dB under it (clean, the synthetic
    songs' bass keeps a few landmarks at 1x; through a room, their few landmarks leave the test to chance)."""
    start = int(START_S * SR)
    return add_noise(at_speed(wave[start : start + int(round(seconds * SR * speed)) + 1], speed)[: int(seconds * SR)],
                     10.0, seed=1)


def query(wave: np.ndarray) -> Query:
    return Query(wave, np.zeros((1, 4), np.float32), np.zeros(1, np.int64), None, LC, 1.0)


def checked(q: Query, library, cfg: VerifyConfig):
    """verify's answer for the clip's song (0) and another (1), both placed 10 frames from where it starts."""
    at = START_S / LC.frame_seconds + 10
    return verify(q, [SongVote(0, 0.6, at, 3), SongVote(1, 0.58, at, 3)], library, cfg, 22, True, above_chance)


def test_rescaled_peaks_land_on_the_songs_axes():
    packed = np.array([(100 << 10) | 200, (40 << 10) | 21], np.int64)
    assert list(rescale_peaks(packed, 1.05)) == [(42 << 10) | 20, (105 << 10) | 190]


@pytest.mark.parametrize("speed", [0.95, 1.05])
def test_a_clip_played_at_another_speed_is_found_at_that_speed_and_its_own_offset(waves, library, speed):
    q = query(clip(waves[0], speed))
    truth = START_S / LC.frame_seconds
    found = speed_evidence([heard_at(q.peaks, q.presence_map, s, LC) for s in CFG.speeds],
                           library.song_peaks(0), truth + 10, SLACK, LC)
    best = max(found, key=lambda e: blended_similarity(0.6, PeakEvidence(e.landmarks, e.presence), CFG))
    assert best.speed == speed and best.landmarks >= 10 and best.presence >= 6, found
    assert abs(best.offset - truth) <= 2, (best.offset, truth)

    at_1x = checked(q, library, replace(CFG, speeds=()))
    assert not above_chance(at_1x.evidence[0]), "at 1x its peaks are at chance"
    v = checked(q, library, CFG)
    assert v.votes[0].song_id == 0 and v.evidence[0].landmarks >= 6, v.evidence
    assert abs(v.votes[0].offset_frames - truth) <= 2, "placed where the clip starts in the song"
    assert not above_chance(v.evidence[1]), "the other song stays at chance"


def test_a_clip_played_at_1x_is_checked_as_before(waves, library):
    q = query(clip(waves[0], 1.0))
    before, after = checked(q, library, replace(CFG, speeds=())), checked(q, library, CFG)
    assert above_chance(before.evidence[0]), "strong at 1x: no speed is tried"
    assert before.evidence[0] == after.evidence[0] and before.landmarks[0] == after.landmarks[0]
    assert before.votes[0] == after.votes[0] and after.votes[0].song_id == 0
    assert not above_chance(after.evidence[1]), "the other song stays at chance"
