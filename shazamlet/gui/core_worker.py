"""The core thread: owns the model and the library, and makes every write to the library.

One `QObject` living in its own `QThread`; the window calls its slots through queued signals, so
requests run one after another (adds, removes, reindexes never overlap). Reads made from the listen
thread (`Recognizer.identify_wave`) are serialised with the writes that could disturb them by
`CoreState.lock`: swapping in another library or model, and the removal of songs. The swap of
index generations inside `Library` is guarded by the library's own lock, so listening goes on
while songs are being embedded.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from shazamlet.gui.messages import CoreFailed, CoreReady, IndexFinished, IndexProgress, LibraryMap
from shazamlet.library.store import FingerprintsDamaged
from shazamlet.memory import release_freed_memory
from shazamlet.names import song_line

MAP_POINTS_PER_SONG = 120
MAP_MAX_POINTS = 30_000
PCA_FIT_POINTS = 1_500


@dataclass
class CoreState:
    """What the core thread shares with the listen thread."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    cancel: threading.Event = field(default_factory=threading.Event)


def pca_map(library, per_song: int = MAP_POINTS_PER_SONG, max_points: int = MAP_MAX_POINTS) -> LibraryMap:
    """PCA of (a subsample of) every song's stored fingerprints (empty for an empty library)."""
    songs = [s for s in library.songs() if library.store.exists(s.emb_file)]
    if not songs:
        return LibraryMap.empty()
    per_song = max(4, min(per_song, max_points // len(songs)))
    rng = np.random.default_rng(0)
    chunks, genres, ids = [], [], []
    for s in songs:
        try:
            fps, _, _ = library.store.read(s.emb_file)
        except FingerprintsDamaged:  # the map only shows the library: the index and `library add` deal with it
            continue
        if len(fps) > per_song:
            fps = fps[np.sort(rng.choice(len(fps), per_song, replace=False))]
        chunks.append(fps.astype(np.float32))
        genres += [s.genre or "unknown"] * len(fps)
        ids.append(np.full(len(fps), s.id))
    if not chunks:
        return LibraryMap.empty()
    x = np.concatenate(chunks)
    mean = x.mean(axis=0)
    xc = x - mean
    if len(xc) >= 3:
        # Fit on at most PCA_FIT_POINTS points through their Gram matrix (small n x n eigenproblem,
        # much cheaper than the d x d covariance or an SVD for 1024-d fingerprints), project them all.
        fit = xc if len(xc) <= PCA_FIT_POINTS else xc[rng.choice(len(xc), PCA_FIT_POINTS, replace=False)]
        vals, vecs = np.linalg.eigh(fit @ fit.T)
        top = vecs[:, ::-1][:, :2] / np.sqrt(np.maximum(vals[::-1][:2], 1e-12))
        axes = (fit.T @ top).astype(np.float32)
    else:
        axes = np.eye(x.shape[1], 2, dtype=np.float32)
    for k in range(axes.shape[1]):  # a stable sign, so the map does not flip between rebuilds
        if axes[np.argmax(np.abs(axes[:, k])), k] < 0:
            axes[:, k] *= -1
    return LibraryMap(xc @ axes, genres, np.concatenate(ids), mean, axes,
                      {s.id: song_line(s.title, s.artist, s.path) for s in songs})


def release_memory() -> None:
    """Give back what indexing freed: the decoders' threads leave their buffers in glibc's per-thread
    arenas, which keep the pages after `free` (the window stayed at ~1 GB after adding songs, ~600 MB
    fresh); `malloc_trim` returns them to the system. A no-op where there is no glibc."""
    gc.collect()
    release_freed_memory()


def remaining_seconds(done: int, total: int, elapsed_s: float) -> float | None:
    """Time left for the files at the mean rate so far; None before two files are done (the first one
    also waits for its decoder to start, so alone it says little)."""
    if done < 2 or elapsed_s <= 0:
        return None
    return (total - done) * elapsed_s / done


class CoreWorker(QObject):
    ready = Signal(object)  # CoreReady
    failed = Signal(object)  # CoreFailed
    status = Signal(str)
    progress = Signal(object)  # IndexProgress
    finished = Signal(object)  # IndexFinished
    map_ready = Signal(object)  # LibraryMap (empty when there is nothing to draw)
    older_songs = Signal(int)  # songs added by a version without in-between tiles or landmarks (reindex adds them)

    def __init__(self, state: CoreState) -> None:
        super().__init__()
        self.state = state
        self.embedder = None
        self.library = None
        self.recognizer = None

    # -- loading --------------------------------------------------------------------------------
    @Slot(str, str)
    def load(self, folder: str, model: str) -> None:
        """Open the model and the library ("" = the defaults)."""
        folder, model = folder or None, model or None
        from shazamlet.library import Library, LibraryError, ModelMismatch
        from shazamlet.model import ModelError, TileEmbedder

        self.status.emit("Loading the model…")
        try:
            embedder = TileEmbedder(model)
        except ModelError as exc:
            self.failed.emit(CoreFailed("model", str(exc)))
            return
        self.status.emit("Opening the library…")
        mismatch = None
        try:
            try:
                library = Library.open(folder, embedder, create=True, check_model=True)
            except ModelMismatch:
                library = Library.open(folder, embedder, create=True, check_model=False)
                mismatch = (f"your library was built with another model ({library.catalog.get_meta('model_name')}); "
                            f"its {library.catalog.count()} songs must be re-embedded with the current one "
                            f"({embedder.model.meta.name}) before they can be recognised.")
        except (LibraryError, OSError) as exc:
            self.failed.emit(CoreFailed("library", str(exc).splitlines()[0]))
            return
        try:
            embedder.check_ready()  # its session was prepared while the library opened
        except ModelError as exc:
            library.close()
            self.failed.emit(CoreFailed("model", str(exc)))
            return
        with self.state.lock:
            if self.library is not None:
                self.library.close()
            self.embedder, self.library = embedder, library
            self.recognizer = None if mismatch else self._make_recognizer()
        self.ready.emit(CoreReady(str(library.folder), embedder.model.meta.name, library.songs(), mismatch,
                                  self.recognizer))
        if not mismatch:  # after `ready`: it reads every song's fingerprint file (~2 s at 10 000 songs)
            older = len(library.songs_from_older_version())
            if older:
                self.older_songs.emit(older)
        self._warm_index()
        self.compute_map()

    def _make_recognizer(self):
        from shazamlet.recognition import Recognizer

        return Recognizer(self.library, self.embedder)

    def _warm_index(self) -> None:
        """Load (or repair) the index now rather than on the first query."""
        if self.recognizer is None:
            return
        try:
            with self.state.lock:
                self.library.index()
        except Exception as exc:  # a broken index is reported, the window goes on
            self.status.emit(f"The index could not be loaded: {str(exc).splitlines()[0]}")

    # -- writing --------------------------------------------------------------------------------
    def _progress_fn(self):
        started = time.perf_counter()
        last = [0.0]

        def progress(p) -> None:
            now = time.perf_counter()
            if p.phase == "embed" or now - last[0] > 0.1 or p.done == p.total:
                last[0] = now
                rate = p.done / max(now - started, 1e-6) if p.phase == "embed" else 0.0
                song = self.library.catalog.song_by_path(p.path) if p.phase == "embed" and not p.error else None
                self.progress.emit(IndexProgress(p.phase, p.done, p.total, rate, p.audio_seconds, p.path, p.error,
                                                 song, remaining_seconds(p.done, p.total, now - started)))

        return progress

    def _not_open(self, job: str) -> bool:
        if self.library is not None:
            return False
        from shazamlet.library import AddReport

        self.finished.emit(IndexFinished(job, AddReport(errors=["the library is not open (see the message at "
                                                                "the top of the window)"]), []))
        return True

    @Slot(object, str)
    def add(self, paths: list[str], genre_from: str) -> None:
        if self._not_open("add"):
            return
        from shazamlet.library import AddReport

        self.state.cancel.clear()
        self.status.emit("Looking for audio files…")
        try:  # counted first, so the window says how many at once rather than after the first song
            from shazamlet.library.importer import collect_audio_files

            found = len(collect_audio_files(paths)[0])
            self.status.emit(f"Found {found} audio file{'' if found == 1 else 's'}; adding them…")
            self.progress.emit(IndexProgress("embed", 0, found, 0.0, 0.0))
        except OSError:
            pass
        try:
            report = self.library.add(paths, genre_from=genre_from, progress=self._progress_fn(),
                                      cancel=self.state.cancel.is_set)
        except Exception as exc:  # a disk error must not kill the thread
            report = AddReport(errors=[f"adding failed: {str(exc).splitlines()[0]}"])
        self.finished.emit(IndexFinished("add", report, self.library.songs()))
        self.compute_map()
        release_memory()

    @Slot(object)
    def remove(self, paths: list[str]) -> None:
        if self._not_open("remove"):
            return
        from shazamlet.library import AddReport

        report = AddReport()
        try:
            with self.state.lock:
                report.updated = [s.path for s in self.library.remove(paths)]
        except Exception as exc:
            report.errors.append(f"removing failed: {str(exc).splitlines()[0]}")
        self.finished.emit(IndexFinished("remove", report, self.library.songs()))
        self.compute_map()

    @Slot()
    def reindex(self) -> None:
        if self._not_open("reindex"):
            return
        from shazamlet.library import AddReport

        self.state.cancel.clear()
        try:
            report = self.library.reindex(progress=self._progress_fn(), cancel=self.state.cancel.is_set)
        except Exception as exc:
            report = AddReport(errors=[f"reindexing failed: {str(exc).splitlines()[0]}"])
        recognizer = None
        if self.library.model_matches() and not report.cancelled:
            with self.state.lock:
                self.recognizer = recognizer = self._make_recognizer()
        self.finished.emit(IndexFinished("reindex", report, self.library.songs(), recognizer))
        self._warm_index()
        self.compute_map()
        release_memory()

    @Slot()
    def compute_map(self) -> None:
        if self.library is None or self.recognizer is None:
            self.map_ready.emit(LibraryMap.empty("The map appears once the library is indexed with the current model."
                                                 if self.library is not None else "No library is open."))
            return
        try:
            self.map_ready.emit(pca_map(self.library))
        except Exception as exc:
            self.status.emit(f"The library map could not be drawn: {str(exc).splitlines()[0]}")

    @Slot()
    def close(self) -> None:
        with self.state.lock:
            if self.library is not None:
                self.library.close()
                self.library = None
