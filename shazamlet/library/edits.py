"""Changing a library: adding, reindexing and removing songs, and rebuilding its index.

Adding songs: decoder threads decode and tile (`importer.py`), the main thread embeds in batches, each
song is committed as soon as its fingerprints are safely on disk, and the index is rebuilt at the end
into new files that replace the old ones by rename. Killed at any point, the library keeps answering
with its previous index; the next `add` picks up where the last one stopped. Every change runs inside
`_writing` (`writing.py`): refused in one line when read-only, one writer at a time, a full disk in one line.

A mixin of `Library`, whose state (catalog, store, index, caches) and reading methods it uses.
"""

from __future__ import annotations

import functools
import re
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

from shazamlet.library.between import encode_between
from shazamlet.library.catalog import Song
from shazamlet.library.importer import AddProgress, AddReport, ProgressFn, StoreFn, collect_audio_files, decode_files
from shazamlet.library.index import IndexRecord, LibraryIndex, build_index, index_bytes
from shazamlet.library.peakpack import pack_bytes
from shazamlet.library.prepare import FailedSong, PreparedSong, prepare_song
from shazamlet.library.store import FingerprintsDamaged
from shazamlet.library.writing import check_space, disk_errors, remove_stale_temps, write_lock


def _write(what: str) -> Callable:
    """A method that writes: it runs inside `LibraryEdits._writing(what)`."""
    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def run(self: "LibraryEdits", *args, **kwargs):
            with self._writing(what):
                return method(self, *args, **kwargs)
        return run
    return wrap


class LibraryEdits:
    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Run a write: refused in one line when read-only; holds the write lock (another process's write
        is waited for), removes a killed writer's temp files, and meets a full disk in one line (DiskFull).
        A write within a write (an `add`'s index rebuild) joins it."""
        self.check_writable(what)
        with self._write_mutex:
            if self._writing_now:  # within a write of this thread (the mutex is re-entrant): it holds the rest
                yield
                return
            with write_lock(self.folder), disk_errors(self.folder, what):
                remove_stale_temps(self.folder)
                self._writing_now = True
                try:
                    yield
                finally:
                    self._writing_now = False

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
        with_peaks = self.extras.peaks_found_as_now()  # peaks found another way are never read

        def chunks():
            for s in songs:
                try:
                    fps, starts, peaks = self.store.read(s.emb_file, peaks=with_peaks)
                except FingerprintsDamaged as exc:
                    self._set_aside(s, exc, "left out of the index until `shazamlet library add` of its file "
                                            "re-embeds it")
                    continue
                yield s.id, fps, starts, peaks

        def tick(_n: int) -> None:
            done[0] += 1
            if progress:
                progress(AddProgress("index", done[0], len(songs)))

        n_items = sum(s.n_tiles for s in songs)
        kind = self.cfg.index_kind(n_items)
        peak_bytes = pack_bytes(sum(s.duration_s for s in songs), self.landmark_config) if with_peaks else 0
        check_space(self.folder, index_bytes(kind, n_items, self.embedder.dim, self.cfg.n_trees) + peak_bytes,
                    "build the index")
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

    # -- damaged fingerprint files (set aside: a write) ---------------------------------------
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
