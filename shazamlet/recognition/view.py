"""The one read-only view of a library that the recognition stages use.

`shazamlet.library.Library` satisfies it; the stages never write, and never see the catalog, the
store or the index files. A stage asking for more of the library widens this, on purpose.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from shazamlet.config import IndexConfig, LandmarkConfig
from shazamlet.landmarks import SongLandmarks
from shazamlet.library.catalog import Song
from shazamlet.library.index import Neighbours


class LibraryView(Protocol):
    cfg: IndexConfig

    def neighbours(self, fingerprints: np.ndarray, query_starts: np.ndarray, k: int | None = None) -> Neighbours | None:
        """The k nearest library tiles of each query tile; None for an empty library."""

    def song(self, song_id: int) -> Song | None:
        """A song's metadata; None when it was removed since the index was built."""

    def song_tiles(self, song_id: int, first_frame: int, last_frame: int) -> tuple[np.ndarray, np.ndarray]:
        """A song's fingerprints (and their start frames) starting within [first_frame, last_frame]."""

    def song_peaks(self, song_id: int) -> np.ndarray | None:
        """A song's packed spectral peaks; None for a song added without them."""

    def song_landmarks(self, song_id: int) -> SongLandmarks | None:
        """All of a song's landmarks sorted by hash (for a song-wide search); None without peaks."""

    def genres(self) -> dict[int, str | None]:
        """Every song's genre, by song id."""

    def genre_labels(self) -> frozenset[str]:
        """The genres the library's songs carry."""

    @property
    def keeps_peaks(self) -> bool:
        """Whether songs keep spectral peaks (the verify stage needs them)."""

    @property
    def landmark_config(self) -> LandmarkConfig:
        """How the library's peaks are found: a query's must be found the same way."""
