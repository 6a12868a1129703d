"""Speed hypotheses for the peak checks: music played a few percent fast or slow (a turntable, tape or DJ's
pitch control at the wrong speed) moves every frequency by the speed factor and shrinks every time distance
by it, so the landmark hashes and the presence map's bins no longer line up with the song's, and its
evidence falls to chance.

The query's peaks and presence map are mapped back to the song's time and frequency axes for each of a
few speeds (frame times x speed, bins / speed) and matched against the song's stored peaks as they are:
the library is never touched, and each hypothesis costs one pairing of the query's few hundred peaks
(shared by every candidate) and one evidence count per candidate. The best hypothesis has had several
chances at chance, so its evidence is reduced by what chance gains from them (`VerifyConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shazamlet.config import LandmarkConfig
from shazamlet.landmarks import BIN_BITS, Landmarks, SongLandmarks, evidence, pair, peaks_between, unpack
from shazamlet.presence import PresenceMap, presence


def rescale_peaks(packed: np.ndarray, speed: float) -> np.ndarray:
    """A query's packed peaks, heard at `speed`, placed on the song's axes: frames x speed, bins / speed."""
    t, f = unpack(packed)
    t = np.round(t * speed).astype(np.int64)
    f = np.round(f / speed).astype(np.int64)
    inside = f < (1 << BIN_BITS)
    return np.sort((t[inside] << BIN_BITS) | f[inside])


def rescale_map(heard: PresenceMap, speed: float) -> PresenceMap:
    """A query's presence map, heard at `speed`, read on the song's axes (nearest cell): song frame j is
    query frame j / speed, song bin b is query bin b x speed; bins heard outside the band read 0 (average)."""
    n, width = heard.z.shape
    if n == 0:
        return heard
    rows = np.clip(np.round(np.arange(int(round(n * speed))) / speed).astype(np.int64), 0, n - 1)
    src = np.round((heard.first_bin + np.arange(width)) * speed).astype(np.int64) - heard.first_bin
    inside = (src >= 0) & (src < width)
    z = heard.z[rows][:, np.clip(src, 0, width - 1)] * inside[None, :].astype(np.float32)
    return PresenceMap(np.ascontiguousarray(z, np.float32), heard.first_bin)


@dataclass
class Heard:
    """The query's landmarks (and presence map, when presence is used) at one speed, on the song's axes."""

    speed: float
    landmarks: Landmarks
    presence_map: PresenceMap | None


def heard_at(peaks: np.ndarray, heard: PresenceMap | None, speed: float, cfg: LandmarkConfig) -> Heard:
    return Heard(speed, pair(rescale_peaks(peaks, speed), cfg).by_hash(), None if heard is None else rescale_map(heard, speed))


@dataclass
class SpeedEvidence:
    """One candidate's peaks under one speed hypothesis, as found (no correction for the hypotheses tried)."""

    speed: float
    landmarks: float  # `landmarks.Evidence.excess`
    count: int
    offset: int  # landmark frames, song minus (rescaled) query: where the query starts in the song
    presence: float


def speed_evidence(hypotheses: list[Heard], song_peaks: np.ndarray, offset: float, slack: float,
                   cfg: LandmarkConfig) -> list[SpeedEvidence]:
    """Each hypothesis' landmark and presence evidence within `slack` frames of `offset` (landmark frames,
    song minus query). The song's landmarks of the window are paired once for all hypotheses."""
    if not hypotheses:
        return []
    first, last = int(np.floor(offset - slack)), int(np.ceil(offset + slack))
    reach = max((int(h.landmarks.times.max()) for h in hypotheses if len(h.landmarks)), default=0)
    song = SongLandmarks.of(peaks_between(song_peaks, first, last + reach + cfg.max_dt), cfg)
    out = []
    for h in hypotheses:
        e = evidence(h.landmarks, song, first, last)
        p = 0.0 if h.presence_map is None else presence(h.presence_map, song_peaks, offset, slack).score
        out.append(SpeedEvidence(h.speed, e.excess, e.count, e.offset, p))
    return out
