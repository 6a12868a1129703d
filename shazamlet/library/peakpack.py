"""Every indexed song's spectral peaks in one memory-mapped file, written with each index generation.

The presence search reads the peaks of up to `NominateConfig.presence_search_songs` songs per query.
Read from each song's fingerprint file (a zip, deflated) that cost ~1.1 ms a song: 120 ms of a query
through voices in a 1 000-song library, and in a one-shot `shazamlet identify` every song of a small
one. Here a song's peaks are a slice of one array, read from the page cache: the work is done once,
when the index is built from the fingerprint files (which stay the durable source).

The file (`index-<gen>.peaks.u32`) holds the songs' packed peaks (`frame << BIN_BITS | bin`) one song
after another as little-endian uint32s (a raw array, written as the songs come), which holds a song
up to 27 hours (a longer one is left out, and read from its own file). Which songs, and where each
one's peaks begin, are in the index record (`peak_songs`, `peak_bounds`), checked against the file
before it is used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from shazamlet.config import LandmarkConfig

PACK_LIMIT = 1 << 32  # a packed peak must fit a uint32: frames under 2**22 (27 h at 23-ms frames)


class PeakPackCorrupt(Exception):
    """The record's song spans do not fit the file."""


def pack_bytes(seconds: float, cfg: LandmarkConfig) -> int:
    """About the most a pack of `seconds` of music takes (real music keeps the picker near its cap)."""
    return int(4 * cfg.peaks_per_second * seconds)


def packable(peaks: np.ndarray | None) -> bool:
    """Whether a song's packed peaks go into the pack (a song with none, or over 27 h, does not)."""
    return peaks is not None and len(peaks) > 0 and int(peaks[-1]) < PACK_LIMIT and int(peaks[0]) >= 0


class PeakPackWriter:
    """Appends songs' packed peaks (sorted, as `landmarks.peaks` gives them) to a pack file as they come,
    so that a library's peaks are never held in memory at once."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "wb")
        self.song_ids: list[int] = []
        self.bounds = [0]  # song i's peaks are rows bounds[i]:bounds[i + 1]

    def add(self, song_id: int, peaks: np.ndarray | None) -> None:
        if packable(peaks):
            self.file.write(np.asarray(peaks).astype("<u4").tobytes())
            self.song_ids.append(int(song_id))
            self.bounds.append(self.bounds[-1] + len(peaks))

    def close(self) -> None:
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()


class PeakPack:
    """A pack file, memory-mapped; `peaks(song_id)` is the song's packed peaks as int64, or None for a
    song that is not in it."""

    def __init__(self, path: Path, song_ids: list[int], bounds: list[int]) -> None:
        b = np.asarray(bounds, np.int64)
        if (len(b) != len(song_ids) + 1 or len(b) < 2 or b[0] != 0 or np.any(np.diff(b) < 0)
                or b[-1] * 4 != path.stat().st_size):
            raise PeakPackCorrupt(f"the index record's song spans do not fit {path.name}")
        self.peaks_u32 = np.memmap(path, dtype="<u4", mode="r")
        self._spans = {int(s): (int(b[i]), int(b[i + 1])) for i, s in enumerate(song_ids)}

    def peaks(self, song_id: int) -> np.ndarray | None:
        span = self._spans.get(song_id)
        if span is None:
            return None
        return self.peaks_u32[span[0]:span[1]].astype(np.int64)
