"""What a library keeps per song beside its index, read back for re-scoring: the in-between tiles
(`shazamlet.library.between`), the spectral peaks (from the index's peak pack, or the song's own file
for a song not in it) and, derived from them, the song's landmarks sorted for a song-wide search
(`shazamlet.landmarks`).

Each is read from the song's fingerprint file through a small LRU cache: the listener re-scores the
same few candidates answer after answer. A damaged file reads as None, so an answer is ranked without
what the file would have added (the index still holds the song's fingerprints); `older_songs` tells
which files lack what this version keeps, so that `library reindex` can be suggested.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

from shazamlet.config import LandmarkConfig
from shazamlet.landmarks import SongLandmarks
from shazamlet.library.catalog import Catalog, Song
from shazamlet.library.peakpack import PeakPack
from shazamlet.library.store import EmbeddingStore, FingerprintsDamaged

BETWEEN_CACHE_SONGS = 256  # ~30 KB each for a 4-min song
PEAKS_CACHE_SONGS = 320  # ~200 KB each (int64): songs not in the index's peak pack (an index built before it)
LANDMARKS_CACHE_SONGS = 32  # ~1 MB each
# what reading a fingerprint file may raise: damaged (the store names it), or unreadable right now
DAMAGED = (OSError, FingerprintsDamaged)


class SongExtras:
    def __init__(self, catalog: Catalog, store: EmbeddingStore, landmark_config: LandmarkConfig,
                 lock: threading.RLock, peak_pack: Callable[[], PeakPack | None]) -> None:
        """`peak_pack`: the current index generation's peaks, where songs' peaks are read first."""
        self.catalog = catalog
        self.peak_pack = peak_pack
        self.store = store
        self.landmark_config = landmark_config
        self._lock = lock  # the library's: a reindex swaps files while the listener reads them
        self._between: OrderedDict[int, tuple[np.ndarray, np.ndarray] | None] = OrderedDict()
        self._peaks: OrderedDict[int, np.ndarray | None] = OrderedDict()
        self._landmarks: OrderedDict[int, SongLandmarks | None] = OrderedDict()
        self._peaks_usable: bool | None = None  # whether the stored peaks were found as this version finds them

    def between_tiles(self, song_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The song's in-between tiles (int8 codes, start frames); None without."""
        return self._cached(self._between, song_id, self.store.read_between, BETWEEN_CACHE_SONGS)

    def peaks(self, song_id: int) -> np.ndarray | None:
        """The song's packed spectral peaks; None for a song added without them, or peaks found another
        way than this version finds them."""
        if not self.peaks_found_as_now():
            return None
        pack = self.peak_pack()
        packed = pack.peaks(song_id) if pack is not None else None
        if packed is not None:
            return packed
        return self._cached(self._peaks, song_id, self.store.read_peaks, PEAKS_CACHE_SONGS)

    def landmarks(self, song_id: int) -> SongLandmarks | None:
        """All of the song's landmarks sorted by hash, made from its (cached) peaks; None without peaks."""
        def make(_file: str) -> SongLandmarks | None:
            found = self.peaks(song_id)
            return None if found is None else SongLandmarks.of(found, self.landmark_config)

        return self._cached(self._landmarks, song_id, make, LANDMARKS_CACHE_SONGS)

    def peaks_found_as_now(self) -> bool:
        if self._peaks_usable is None:
            self._peaks_usable = self.catalog.get_json("landmarks") == self.landmark_config.to_dict()
        return self._peaks_usable

    def config_recorded(self) -> None:
        """The library's peak config was (re)written: ask the catalog again."""
        self._peaks_usable = None

    def clear(self) -> None:
        with self._lock:
            self._between.clear()
            self._peaks.clear()
            self._landmarks.clear()

    def older_songs(self, between: bool, peaks: bool,
                    on_damaged: Callable[[Song, FingerprintsDamaged], None] | None = None) -> list[Song]:
        """Songs whose fingerprint file lacks what this version keeps (in-between tiles with `between`,
        peaks with `peaks`). Reads every file's directory (~0.2 ms each): a damaged one is handed to
        `on_damaged` (the library sets it aside) and is not counted as older."""
        wanted = {name for name, on in (("between", between), ("peak_steps", peaks)) if on}
        if not wanted:
            return []
        if peaks and not self.peaks_found_as_now():
            return [s for s in self.catalog.songs() if self.store.exists(s.emb_file)]
        older = []
        for s in self.catalog.songs():
            if self.store.exists(s.emb_file):
                try:
                    complete = wanted <= self.store.members(s.emb_file)
                except FingerprintsDamaged as exc:
                    if on_damaged:
                        on_damaged(s, exc)
                    continue
                except OSError:
                    complete = False  # unreadable now: reindexing writes it anew
                if not complete:
                    older.append(s)
        return older

    def _cached(self, cache: OrderedDict, song_id: int, read: Callable[[str], object], size: int):
        """`read(fingerprint file)` of a song through `cache` (LRU, `size` songs); None for a song that
        is gone or whose file is damaged."""
        with self._lock:
            if song_id in cache:
                cache.move_to_end(song_id)
                return cache[song_id]
            found = None
            song = self.catalog.song(song_id)
            if song is not None and self.store.exists(song.emb_file):
                try:
                    found = read(song.emb_file)
                except DAMAGED:
                    found = None
            cache[song_id] = found
            if len(cache) > size:
                cache.popitem(last=False)
            return found
