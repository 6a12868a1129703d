"""A music library: catalog + per-song fingerprints + nearest-neighbour index (ANNOY, or int8 IVF
lists for large libraries), in one folder.

Adding songs: workers decode and tile (`importer.py`), the main process embeds in batches, each song is committed
as soon as its fingerprints are safely on disk, and the index is rebuilt at the end into new files
that replace the old ones by rename. Killed at any point, the library keeps answering with its
previous index; the next `add` picks up where the last one stopped.

Damage is met with one line each, never a traceback: a catalog SQLite cannot read raises LibraryDamaged
(what to do included); a damaged fingerprint file is set aside (`EmbeddingStore.set_aside`) and its song
left out of the index until `add` re-embeds it. Warnings go to the `shazamlet.library` logger: without a
configured handler, Python prints them to stderr as they are, one line each.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import platformdirs

from shazamlet.config import IndexConfig, LandmarkConfig
from shazamlet.landmarks import SongLandmarks
from shazamlet.library.between import between_fingerprints, encode_between
from shazamlet.library.catalog import Catalog, CatalogDamaged, Song
from shazamlet.library.errors import DiskFull, LibraryDamaged, LibraryError, LibraryReadOnly, ModelMismatch
from shazamlet.library.extras import SongExtras
from shazamlet.library.index import IndexCorrupt, IndexRecord, LibraryIndex, build_index, index_bytes
from shazamlet.library.importer import (AddProgress, AddReport, ProgressFn, StoreFn, collect_audio_files,
                                        decode_files)
from shazamlet.library.prepare import FailedSong, PreparedSong, prepare_song
from shazamlet.library.store import EmbeddingStore, FingerprintsDamaged
from shazamlet.library.writing import (SPACE_MARGIN_BYTES, check_space, disk_errors, free_bytes, remove_stale_temps,
                                       write_lock)
from shazamlet.model.embedder import TileEmbedder


log = logging.getLogger(__name__)


def _write(what: str) -> Callable:
    """A Library method that writes: it runs inside `Library._writing(what)`."""
    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def run(self: "Library", *args, **kwargs):
            with self._writing(what):
                return method(self, *args, **kwargs)
        return run
    return wrap


def default_library_dir() -> Path:
    return Path(platformdirs.user_data_dir("shazamlet", appauthor=False)) / "library"


class Library:
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
        self._write_depth = 0
        self._genres: dict[int, str | None] | None = None  # read on every query: cached until a write
        self._genre_labels: frozenset[str] | None = None  # the same, as the set of labels in use
        # what the songs keep beside the index, read back for re-scoring through small caches
        self.extras = SongExtras(self.catalog, self.store, self.landmark_config, self._lock)
        if self.catalog.count() == 0 and (orphans := len(self.store.names())):
            # fingerprints without a catalog: it was deleted or emptied (removing songs deletes their files)
            log.warning(f"warning: {self.catalog.path} lists no songs though {orphans} songs' fingerprints are in "
                        f"{self.store.folder} (was the catalog deleted?): run `shazamlet library add` on your music "
                        "again to list its songs")
        recorded = self.catalog.get_meta("model_sha256")
        if self.read_only:  # nothing is recorded: a library made by an older version is read as it is
            if check_model and recorded is not None and recorded not in (self.embedder.model_hash,
                                                                         self.embedder.model.sha256):
                raise ModelMismatch(self.mismatch_message())
        elif recorded is not None and recorded == self.embedder.model.sha256 != self.embedder.model_hash:
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

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Run a write: refused in one line when read-only; holds the write lock (another process's write
        is waited for), removes a killed writer's temp files, and meets a full disk in one line (DiskFull).
        A write within a write (an `add`'s index rebuild) joins it."""
        self.check_writable(what)
        with self._write_mutex:
            if self._write_depth:
                self._write_depth += 1
                try:
                    yield
                finally:
                    self._write_depth -= 1
                return
            with write_lock(self.folder), disk_errors(self.folder, what):
                remove_stale_temps(self.folder)
                self._write_depth = 1
                try:
                    yield
                finally:
                    self._write_depth = 0

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

    def _has_fingerprints(self, song: Song, full: bool = False, warn: bool = True) -> bool:
        """Whether the song's fingerprint file is there and reads (its zip directory, or every array with
        `full`); a damaged one is set aside (with a warning line), and `add` re-embeds the song."""
        if not self.store.exists(song.emb_file):
            return False
        try:
            self.store.check(song.emb_file, full)
        except FingerprintsDamaged as exc:
            self._set_aside(song, exc, "it is re-embedded by `shazamlet library add` of its file" if warn else None)
            return False
        return True

    def damaged_songs(self) -> list[Song]:
        """Read every song's fingerprint file in full (`library info --verify`, which names them): the
        songs whose file is damaged, each set aside, so that `add` re-embeds them."""
        return [s for s in self.catalog.songs()
                if self.store.exists(s.emb_file) and not self._has_fingerprints(s, full=True, warn=False)]

    # -- writing ----------------------------------------------------------------------------
    @_write("add songs")
    def add(self, paths: Iterable[str | Path], genre_from: str = "folder", genre: str | None = None,
            root: str | Path | None = None, progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None,
            workers: int | None = None) -> AddReport:
        """Add files and folders (recursive). Unchanged files are skipped, changed files re-embedded.

        Genre: `genre` if given; else from the folder (see `genre_from_folder`, relative to `root` or
        to each folder given) or, with genre_from="tag", from the file's tag with the folder as fallback.
        """
        started = time.perf_counter()
        files, errors = collect_audio_files(paths)
        if root is not None:
            files = [(f, Path(root).expanduser().absolute()) for f, _ in files]
        report = AddReport(errors=errors)
        todo = []
        for f, root in files:
            old = self.catalog.song_by_path(str(f.resolve()))  # a song is known by its real path
            st = f.stat()
            if old and old.file_size == st.st_size and old.file_mtime == st.st_mtime and self._has_fingerprints(old):
                report.unchanged.append(str(f))
            else:
                todo.append((f, root, genre))
        self._embed_files(todo, genre_from, report, progress, cancel, workers, self._store_song)
        indexable = any(self.store.exists(s.emb_file) for s in self.unindexed_songs())
        if report.added or report.updated or indexable or self.index_record() is None:
            if self.catalog.count():
                self.rebuild_index(progress)
        report.elapsed_s = time.perf_counter() - started
        return report

    def _embed_files(self, todo: list[tuple[Path, Path, str | None]], genre_from: str, report: AddReport,
                     progress: ProgressFn | None, cancel: Callable[[], bool] | None, workers: int | None,
                     store: StoreFn, failed_note: str = "") -> None:
        """`importer.decode_files` with this library's front end, hop and what it keeps beside the
        fingerprints (in-between tiles, peaks)."""
        feats = self.embedder.model.meta.features
        hop = self.cfg.library_hop_frames
        between = self.keeps_between_tiles
        peaks = self.landmark_config.to_dict() if self.keeps_peaks else None

        def prepare(f: Path, root: Path, genre: str | None) -> PreparedSong | FailedSong:
            song = prepare_song(str(f), feats, hop, genre_from, str(root), genre, between, peaks)
            if isinstance(song, PreparedSong):  # found under its root (for the genre), kept by its real path
                song.path = str(Path(song.path).resolve())
            return song

        decode_files(todo, prepare, report, progress, cancel, workers, store, failed_note)

    def _store_song(self, prep: PreparedSong, report: AddReport) -> None:
        old = self.catalog.song_by_path(prep.path)
        if old and old.content_hash == prep.content_hash and self.store.exists(old.emb_file):
            self.catalog.upsert_song(Song(**{**old.__dict__, "file_mtime": prep.file_mtime}))
            report.unchanged.append(prep.path)
            return
        twin = self.catalog.song_by_hash(prep.content_hash)
        if twin and twin.path != prep.path and Path(twin.path).exists():
            report.duplicates.append(f"{prep.path}: same audio as {twin.path} (skipped)")
            return
        emb_file = self._write_fingerprints(prep, f"{prep.content_hash}.npz")
        self.catalog.upsert_song(self._song_row(prep, emb_file))
        (report.updated if old else report.added).append(prep.path)
        report.audio_seconds += prep.duration_s

    def _write_fingerprints(self, prep: PreparedSong, name: str) -> str:
        """Embed a prepared song and store its fingerprints (and what this version keeps beside them)."""
        fps = self.embedder.embed(prep.tiles)
        codes = None
        if prep.between_tiles is not None:
            codes = encode_between(self.embedder.project(prep.between_tiles))
        return self.store.write(name, fps, prep.start_frames, codes, prep.between_starts, prep.peaks)

    @staticmethod
    def _song_row(prep: PreparedSong, emb_file: str, old: Song | None = None) -> Song:
        """The catalog row of a prepared song; with `old`, its row's id and date added are kept."""
        t = prep.tags
        return Song(old.id if old else 0, prep.path, t.title, t.artist, t.album, t.genre, prep.duration_s,
                    prep.content_hash, prep.file_size, prep.file_mtime, old.added if old else time.time(),
                    len(prep.start_frames), emb_file)

    @_write("remove songs")
    def remove(self, paths: Iterable[str | Path]) -> list[Song]:
        """Remove songs by file path or by folder (everything under it); rebuilds the index."""
        targets = [str(Path(p).expanduser().resolve()) for p in paths]
        gone = [s for s in self.catalog.songs()
                if any(s.path == t or s.path.startswith(t.rstrip("/") + "/") for t in targets)]
        if gone:
            self.catalog.delete_songs([s.id for s in gone])
            self.rebuild_index()
            still_used = {s.emb_file for s in self.catalog.songs()}
            for s in gone:
                if s.emb_file not in still_used:
                    self.store.delete(s.emb_file)
        return gone

    @_write("re-embed its songs")
    def reindex(self, progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None) -> AddReport:
        """Re-embed every song with the current model (after a model change, or to add what this
        version keeps beside the fingerprints).

        Stopped at any point, the library answers as before. With the model it was built with, each
        song's new file replaces its old one by rename, one song at a time. With another model, the new
        files get names of their own, and the catalog switches to them and to the model in one
        transaction at the end. Songs whose file is gone or cannot be decoded are kept (only `remove`
        removes songs), with their fingerprints when the model is the same, else without: pending,
        until `library add` finds their file again. Each gets a line in the report's errors."""
        started = time.perf_counter()
        same_model = self.model_matches()
        songs = self.catalog.songs()
        kept = (" (kept with its fingerprints; `shazamlet library remove` removes it)" if same_model else
                " (kept, not searchable until `shazamlet library add` of its file re-embeds it; "
                "`shazamlet library remove` removes it)")
        report = AddReport(errors=[f"{s.path}: file is gone{kept}" for s in songs if not Path(s.path).is_file()])
        by_path = {s.path: s for s in songs}
        suffix = "" if same_model else "." + self.embedder.model_hash[:12]
        new_rows: dict[int, Song] = {}

        def store(prep: PreparedSong, rep: AddReport) -> None:
            old = by_path[prep.path]
            emb_file = self._write_fingerprints(prep, f"{prep.content_hash}{suffix}.npz")
            new_rows[old.id] = row = self._song_row(prep, emb_file, old)
            if same_model:  # this song is done: its new file answers from now on
                self._replace_song_files([old], [row])
            rep.added.append(prep.path)
            rep.audio_seconds += prep.duration_s

        # each song keeps the genre it was given
        todo = [(Path(s.path), Path(s.path).parent, s.genre) for s in songs if Path(s.path).is_file()]
        self._embed_files(todo, "folder", report, progress, cancel, None, store, kept)
        if report.cancelled:
            return report
        if same_model:
            self._record_model()
        else:
            # the songs not re-embedded point at files that do not exist: pending, never old-model prints
            rows = [new_rows.get(s.id) or replace(s, emb_file=f"{s.content_hash}{suffix}.npz") for s in songs]
            self._replace_song_files(songs, rows, {**self._model_meta(), "index": ""})
        if self.catalog.count():
            self.rebuild_index(progress)
        report.elapsed_s = time.perf_counter() - started
        return report

    def _replace_song_files(self, old: list[Song], new: list[Song], meta: dict[str, str] | None = None) -> None:
        """Make `new` the songs' rows (and `meta` the library's, with them) in one transaction, then
        delete the fingerprint files no row uses any more. With `meta["index"] = ""` the current index
        is dropped too (it holds another model's fingerprints): the next search rebuilds it."""
        with self._lock:
            self.catalog.update_songs_and_meta(new, meta or {})
            self.extras.clear()
            self._genres = self._genre_labels = None
            if meta is not None:
                self.extras.config_recorded()
                if self._index and meta.get("index") == "":
                    self._index.unload()
                    self._index = None
        unused = {s.emb_file for s in old} - {s.emb_file for s in new}
        if unused:  # (a reindex with the same model rewrites files under their own names: mostly none)
            for name in unused - {s.emb_file for s in self.catalog.songs()}:
                self.store.delete(name)

    @_write("rebuild its index")
    def rebuild_index(self, progress: ProgressFn | None = None) -> IndexRecord:
        """Build a new index generation from the stored fingerprints and make it current. A song whose
        fingerprint file is damaged is left out (pending) with one warning line, its file set aside."""
        songs = [s for s in self.catalog.songs() if self.store.exists(s.emb_file)]
        generation = self._next_generation()
        done = [0]

        def chunks():
            for s in songs:
                try:
                    fps, starts = self.store.read(s.emb_file)
                except FingerprintsDamaged as exc:
                    self._set_aside(s, exc, "left out of the index until `shazamlet library add` of its file "
                                            "re-embeds it")
                    continue
                yield s.id, fps, starts

        def tick(_n: int) -> None:
            done[0] += 1
            if progress:
                progress(AddProgress("index", done[0], len(songs)))

        n_items = sum(s.n_tiles for s in songs)
        kind = self.cfg.index_kind(n_items)
        check_space(self.folder, index_bytes(kind, n_items, self.embedder.dim, self.cfg.n_trees), "build the index")
        record = build_index(self.folder, generation, self.embedder.dim, chunks(), self.cfg.n_trees, tick, kind)
        with self._lock:
            self._genres = self._genre_labels = None
            self.extras.clear()
            self.catalog.set_json("index", record.__dict__)
            if self._index:
                self._index.unload()
            self._index = LibraryIndex(self.folder, record, verify="none")
        for f in self.folder.glob("index-*"):
            if f.name not in {name for name, *_ in record.files()}:
                f.unlink(missing_ok=True)
        return record

    def _next_generation(self) -> int:
        """One past the current generation and every generation with files on disk: a reindex to another
        model drops the record, and a generation's file names are never reused (another process may
        still have the old files mapped)."""
        record = self.index_record()
        on_disk = [int(m.group(1)) for f in self.folder.glob("index-*") if (m := re.match(r"index-(\d+)\.", f.name))]
        return max([record.generation if record else 0, *on_disk]) + 1

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
