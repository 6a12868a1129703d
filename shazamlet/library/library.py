"""A music library in one folder: catalog + per-song fingerprints + nearest-neighbour index (ANNOY,
or int8 IVF lists for large libraries), and what the recognition stages read of it.

Damage is met with one line each, never a traceback: a catalog SQLite cannot read raises LibraryDamaged
(what to do included); a damaged fingerprint file is set aside (`EmbeddingStore.set_aside`) and its song
left out of the index until `add` re-embeds it. A library this process may not write opens read-only.
Warnings go to the `shazamlet.library` logger (the CLI prints them one escaped line each).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np

from shazamlet.config import IndexConfig, LandmarkConfig, data_dir
from shazamlet.landmarks import SongLandmarks
from shazamlet.library.between import between_fingerprints
from shazamlet.library.catalog import Catalog, CatalogDamaged, Song
from shazamlet.library.edits import LibraryEdits
from shazamlet.library.errors import LibraryDamaged, LibraryError, LibraryReadOnly, ModelMismatch
from shazamlet.library.extras import SongExtras
from shazamlet.library.index import IndexCorrupt, IndexRecord, LibraryIndex
from shazamlet.library.peakpack import PeakPack
from shazamlet.library.store import EmbeddingStore, FingerprintsDamaged
from shazamlet.library.writing import SPACE_MARGIN_BYTES, free_bytes
from shazamlet.model.embedder import TileEmbedder


log = logging.getLogger(__name__)


def default_library_dir() -> Path:
    return data_dir() / "library"


class Library(LibraryEdits):
    """One library folder: its catalog, fingerprint store and index, read by the recognition stages
    (`shazamlet.recognition.view.LibraryView`); adding, reindexing and removing songs are `LibraryEdits`."""

    def __init__(self, folder: Path, embedder: TileEmbedder, index_cfg: IndexConfig, check_model: bool,
                 read_only: bool = False, absent: bool = False, why_read_only: str = "") -> None:
        """`absent`: there is no library at `folder`; this one is empty, read-only, and makes nothing on disk."""
        self.folder = folder
        self.embedder = embedder
        self.cfg = index_cfg
        self.read_only = read_only or absent
        self.why_read_only = why_read_only or ("there is no library there" if absent else
                                               "a read-only disk, or a folder you may not write")
        self.catalog = Catalog(Path(":memory:"), False) if absent else Catalog(folder / "catalog.sqlite", read_only)
        self.store = EmbeddingStore(folder / "fingerprints", create=not self.read_only, read_only=self.read_only)
        self._index: LibraryIndex | None = None
        # Searches may run on another thread (the window's listener) while songs are added: the swap
        # to a new index generation unloads the old one, so swap and searches take this lock in turn.
        # Building a generation happens outside it; only the swap is serialised.
        self._lock = threading.RLock()
        self._write_mutex = threading.RLock()  # writes in this process: one at a time, nested ones join
        self._writing_now = False
        self._genres: dict[int, str | None] | None = None  # read on every query: cached until a write
        self._genre_labels: frozenset[str] | None = None  # the same, as the set of labels in use
        # what the songs keep beside the index, read back for re-scoring through small caches
        self.extras = SongExtras(self.catalog, self.store, self.landmark_config, self._lock, self._peak_pack)
        if self.catalog.count() == 0 and (orphans := len(self.store.names())):
            # fingerprints without a catalog: it was deleted or emptied (removing songs deletes their files)
            log.warning(f"warning: {self.catalog.path} lists no songs though {orphans} songs' fingerprints are in "
                        f"{self.store.folder} (was the catalog deleted?): run `shazamlet library add` on your music "
                        "again to list its songs")
        recorded = self.catalog.get_meta("model_sha256")
        if self.read_only:  # nothing is recorded: a library made by an older version is read as it is
            if (check_model and recorded is not None and recorded != self.embedder.model_hash
                    and recorded != self.embedder.model.sha256):
                raise ModelMismatch(self.mismatch_message())
        elif recorded is not None and recorded != self.embedder.model_hash and recorded == self.embedder.model.sha256:
            # an earlier version recorded the file's own sha256: this very file, so its fingerprints
            self.catalog.set_meta("model_sha256", self.embedder.model_hash)
        if recorded is None:
            self._record_model()
        elif check_model and not self.model_matches():
            raise ModelMismatch(self.mismatch_message())
        elif self.catalog.get_json("landmarks") is None:
            # made by a version before landmarks: none of its files holds peaks, so songs added from now
            # on can keep them under this version's way of finding them
            self._record_landmark_config()

    @classmethod
    def open(cls, folder: str | Path | None, embedder: TileEmbedder, create: bool = True,
             check_model: bool = True, index_cfg: IndexConfig = IndexConfig(), missing_ok: bool = False) -> "Library":
        """The library in `folder` (default: the user's), made there when `create`. Without `create`,
        a folder with no library is LibraryError, or with `missing_ok` an empty library that writes
        nothing (`identify` before any `add`: every clip is not in it, and its genre is still told)."""
        f = Path(folder).expanduser() if folder else default_library_dir()
        catalog = f / "catalog.sqlite"
        if not catalog.exists():
            lost = len(list((f / "fingerprints").glob("*.npz")))
            if not create and missing_ok and not lost:
                return cls(f, embedder, index_cfg, check_model, absent=True)
            if not create:
                raise LibraryError(f"no library at {f} (add music with `shazamlet library add FOLDER`)" if not lost else
                                   f"{f / 'catalog.sqlite'} is missing though {lost} songs' fingerprints are in {f}: "
                                   "run `shazamlet library add` on your music again to list its songs")
            f.mkdir(parents=True, exist_ok=True)
        # what this process may not write is read only: reading commands work, writing ones say so first
        read_only = not (os.access(f, os.W_OK) and (not catalog.exists() or os.access(catalog, os.W_OK))
                         and (not (f / "fingerprints").exists() or os.access(f / "fingerprints", os.W_OK)))
        try:
            try:
                return cls(f, embedder, index_cfg, check_model, read_only)
            except sqlite3.OperationalError:
                if read_only or free_bytes(f) > SPACE_MARGIN_BYTES:
                    raise
                # a full disk: SQLite cannot make its WAL files, but reading needs none
                return cls(f, embedder, index_cfg, check_model, read_only=True, why_read_only="its disk is full")
        except sqlite3.OperationalError as exc:
            raise LibraryError(f"cannot open the library's catalog {catalog}: {exc}") from None
        except CatalogDamaged as exc:
            raise LibraryDamaged(f"the library's catalog {f / 'catalog.sqlite'} is damaged ({exc}): move the folder "
                                 f"{f} away (nothing else reads it) and run `shazamlet library add` on your music "
                                 "again to build a new library") from None

    def close(self) -> None:
        with self._lock:
            if self._index:
                self._index.unload()
                self._index = None
            self.catalog.close()

    def check_writable(self, what: str) -> None:
        """Raise LibraryReadOnly (one line: what could not be done, and why) unless this library may be written."""
        if self.read_only:
            raise LibraryReadOnly(f"the library {self.folder} cannot be written ({self.why_read_only}): cannot "
                                  f"{what}; identify, listen, list and info still work")

    # -- model ------------------------------------------------------------------------------
    def _record_model(self) -> None:
        self.catalog.set_many(self._model_meta())
        self.extras.config_recorded()

    def _model_meta(self) -> dict[str, str]:
        """What the catalog records about the model its fingerprints come from, and how peaks are found."""
        meta = self.embedder.model.meta
        # what makes the model's fingerprints, not its file: a file recalibrated since still fits the library
        return {"model_sha256": self.embedder.model_hash, "model_name": meta.name,
                "features": json.dumps(meta.features, sort_keys=True),
                "library_hop_frames": str(self.cfg.library_hop_frames),
                "landmarks": json.dumps(self.landmark_config.to_dict(), sort_keys=True)}

    def _record_landmark_config(self) -> None:
        """How this library's peaks are found, so that peaks found another way are never compared."""
        self.catalog.set_json("landmarks", self.landmark_config.to_dict())
        self.extras.config_recorded()

    def model_matches(self) -> bool:
        return self.catalog.get_meta("model_sha256") == self.embedder.model_hash

    def mismatch_message(self) -> str:
        name, digest = self.catalog.get_meta("model_name"), self.catalog.get_meta("model_sha256") or ""
        return (f"this library was built with another model ({name}, {digest[:12]}); the current model is "
                f"{self.embedder.model.meta.name} ({self.embedder.model.short_hash}): run "
                f"`shazamlet library reindex` to re-embed its {self.catalog.count()} songs")

    # -- reading ----------------------------------------------------------------------------
    def songs(self) -> list[Song]:
        return self.catalog.songs()

    def song(self, song_id: int) -> Song | None:
        return self.catalog.song(song_id)

    def genres(self) -> dict[int, str | None]:
        found = self._genres  # read once: another thread may reset it (to None) meanwhile
        if found is None:
            found = self._genres = self.catalog.genre_of_song()
        return found

    def genre_labels(self) -> frozenset[str]:
        """The genres the library's songs carry (empty when none has one)."""
        if self._genre_labels is None:
            self._genre_labels = frozenset(g for g in self.genres().values() if g)
        return self._genre_labels

    def index_record(self) -> IndexRecord | None:
        try:
            raw = self.catalog.get_json("index")
            return IndexRecord(**raw) if raw else None
        except (TypeError, ValueError):  # edited by hand: as if there were none, and the next search rebuilds it
            return None

    def index(self) -> LibraryIndex | None:
        """The current index, loaded once; rebuilt from the stored fingerprints if it is damaged."""
        with self._lock:
            if self._index is None:
                record = self.index_record()
                if record is None:
                    if self.catalog.count() == 0:
                        return None
                    self.rebuild_index()
                else:
                    try:
                        self._index = LibraryIndex(self.folder, record)
                    except IndexCorrupt:
                        self.rebuild_index()
            return self._index

    def _peak_pack(self) -> PeakPack | None:
        index = self.index()
        return index.peaks if index else None

    def unindexed_songs(self) -> list[Song]:
        """Songs that are "pending": not covered by the current index (stored by an `add` interrupted
        before the index was rebuilt), or without a fingerprint file (set aside as damaged, lost, or not
        re-embedded by a reindex to another model). `library add` of their files completes them all."""
        record = self.index_record()
        covered = set(record.song_ids) if record else set()
        return [s for s in self.catalog.songs() if s.id not in covered or not self.store.exists(s.emb_file)]

    # -- damaged fingerprint files ------------------------------------------------------------
    def _set_aside(self, song: Song, exc: FingerprintsDamaged, then: str | None) -> None:
        """Set a damaged fingerprint file aside, so that the song counts as one without fingerprints
        everywhere, and say so in one line (`then`: what happens to the song now; None: the caller says it)."""
        self.store.set_aside(song.emb_file)
        self.extras.clear()
        if then:
            log.warning(f"warning: {song.path}: its fingerprint file is damaged ({exc}); {then}")

    # -- searching --------------------------------------------------------------------------
    @property
    def keeps_between_tiles(self) -> bool:
        """Whether songs added now keep their in-between tiles (the model must have a tile projection)."""
        return self.cfg.between_tiles and self.embedder.tile_layout is not None

    def song_tiles(self, song_id: int, first_frame: int, last_frame: int) -> tuple[np.ndarray, np.ndarray]:
        """One song's fingerprints starting within [first_frame, last_frame], in start order: the
        indexed ones (see LibraryIndex) and, where the song has them, its in-between tiles."""
        with self._lock:
            index = self.index()
            if index is None:
                return np.zeros((0, self.embedder.dim), np.float32), np.zeros(0, np.int64)
            between = self.extras.between_tiles(song_id) if self.embedder.tile_layout is not None else None
            if between is None:
                return index.song_tiles(song_id, first_frame, last_frame)
            gap = self.cfg.library_hop_frames
            fps, starts = index.song_tiles(song_id, first_frame - gap, last_frame + gap)  # the neighbours too
        codes, mid_starts = between
        lo, hi = np.searchsorted(mid_starts, first_frame, "left"), np.searchsorted(mid_starts, last_frame, "right")
        mid_fps, mid_starts = between_fingerprints(fps, starts, codes[lo:hi], mid_starts[lo:hi],
                                                   self.embedder.tile_layout, gap)
        inside = (starts >= first_frame) & (starts <= last_frame)
        all_starts = np.concatenate([starts[inside], mid_starts])
        order = np.argsort(all_starts, kind="stable")
        return np.concatenate([fps[inside], mid_fps])[order], all_starts[order]

    @property
    def keeps_peaks(self) -> bool:
        """Whether songs added now keep their spectral peaks for the landmark check."""
        return self.cfg.landmarks

    @property
    def landmark_config(self) -> LandmarkConfig:
        """How this library's peaks are (or would be) found: at the model's sample rate."""
        return LandmarkConfig(sample_rate=self.embedder.features.sample_rate)

    def songs_from_older_version(self) -> list[Song]:
        """Songs whose fingerprint file lacks what this version keeps (in-between tiles, spectral
        peaks): they were added by an earlier version, and `reindex` adds it. A damaged file met on the
        way is set aside (one warning line): its song is then pending, not older."""
        def damaged(song: Song, exc: FingerprintsDamaged) -> None:
            self._set_aside(song, exc, "it is re-embedded by `shazamlet library add` of its file")

        return self.extras.older_songs(self.keeps_between_tiles, self.keeps_peaks, damaged)

    def song_peaks(self, song_id: int) -> np.ndarray | None:
        """The song's packed spectral peaks (`shazamlet.landmarks`); None for a song added without them."""
        return self.extras.peaks(song_id)

    def song_landmarks(self, song_id: int) -> SongLandmarks | None:
        """All of the song's landmarks sorted by hash, for a song-wide search; None without peaks."""
        return self.extras.landmarks(song_id)

    def clear_caches(self) -> None:
        """Forget the extras read from fingerprint files (benchmarks time the first answer with this)."""
        self.extras.clear()

    def neighbours(self, fingerprints: np.ndarray, query_starts: np.ndarray, k: int | None = None):
        with self._lock:
            index = self.index()
            if index is None:
                return None
            return index.query(fingerprints, query_starts, k or self.cfg.k, self.cfg.search_k, self.cfg.nprobe)
