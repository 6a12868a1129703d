"""The library's nearest-neighbour index over all tiles, built atomically and verified on load.

Two kinds, one interface. Up to `IndexConfig.ivf_min_items` tiles it is ANNOY (angular), the
method of the paper: `index-<gen>.ann` plus `index-<gen>.map.npy` (song id and start frame of each
item). Past that, ANNOY's float32 tree nodes no longer fit a laptop's memory (1.45 GiB resident at
10 000 songs, bench/RESULTS.md), and an IVF index of int8 fingerprints takes over
(`shazamlet/library/ivf.py`): `index-<gen>.codes.npy`, `index-<gen>.lists.npz` and the same kind
of map. A new generation is written under temp names, renamed into place, and only then made
current in the catalog, so the previous index answers until the moment the new one is complete.
The catalog records each file's size, sha256 and a sampled hash: the vectors are memory-mapped, so
a truncated or altered file must be caught before it is loaded. Opening checks the size and the
sampled hash (256 blocks spread over the file: ~15 ms at any size, where a full sha256 of a
10 000-song index takes seconds, see bench/RESULTS.md); the full sha256 is checked by `verify()`
(`shazamlet library info --verify`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from annoy import AnnoyIndex

from shazamlet.files import file_sha256
from shazamlet.library.ivf import IvfVectors, quantise, write_ivf
from shazamlet.library.peakpack import PeakPack, PeakPackCorrupt, PeakPackWriter
from shazamlet.library.writing import TEMP_PREFIX


@dataclass
class Neighbours:
    """What a search returns: the k nearest library tiles of each of q query tiles."""

    song_ids: np.ndarray  # (q, k) int, -1 where fewer than k were found
    start_frames: np.ndarray  # (q, k) int: where each library tile starts in its song
    sims: np.ndarray  # (q, k) float: cosine similarity to the query tile
    query_starts: np.ndarray  # (q,) int: where each query tile starts in the query

    @property
    def n_queries(self) -> int:
        return len(self.query_starts)

    def nearest(self, k: int) -> "Neighbours":
        """Only each query tile's k nearest (the index returns them nearest first)."""
        return Neighbours(self.song_ids[:, :k], self.start_frames[:, :k], self.sims[:, :k], self.query_starts)


class IndexCorrupt(Exception):
    """The index files on disk do not match what the catalog recorded."""


# the names `build_index` gives: a record (from the catalog, which can be edited) naming anything else is corrupt
_OWN_NAME = re.compile(r"index-\d+\.(ann|codes\.npy|map\.npy|lists\.npz|peaks\.u32)")


@dataclass
class IndexRecord:
    """What the catalog stores about the current index generation.

    `ann_file` holds the vectors whatever the kind: the ANNOY forest, or the IVF int8 codes (the
    name is kept so that the catalogs of existing libraries still read)."""

    generation: int
    dim: int
    n_items: int
    n_trees: int
    ann_file: str
    ann_size: int
    ann_sha256: str
    map_file: str
    map_size: int
    map_sha256: str
    song_ids: list[int]  # songs covered by this generation
    ann_sampled: str = ""
    map_sampled: str = ""
    kind: str = "annoy"  # or "ivf"
    lists_file: str = ""  # IVF only: centroids, list bounds, song order
    lists_size: int = 0
    lists_sha256: str = ""
    lists_sampled: str = ""
    peaks_file: str = ""  # the songs' peaks (`peakpack.py`); none in a generation built before it, or without peaks
    peaks_size: int = 0
    peaks_sha256: str = ""
    peaks_sampled: str = ""
    peak_songs: list[int] = field(default_factory=list)  # the songs in it, in its order
    peak_bounds: list[int] = field(default_factory=list)  # song i's peaks are its rows bounds[i]:bounds[i + 1]

    def files(self) -> list[tuple[str, int, str, str]]:
        """(name, size, sha256, sampled hash) of every file of this generation."""
        out = [(self.ann_file, self.ann_size, self.ann_sha256, self.ann_sampled),
               (self.map_file, self.map_size, self.map_sha256, self.map_sampled)]
        if self.lists_file:
            out.append((self.lists_file, self.lists_size, self.lists_sha256, self.lists_sampled))
        if self.peaks_file:
            out.append((self.peaks_file, self.peaks_size, self.peaks_sha256, self.peaks_sampled))
        return out


SAMPLE_BLOCKS, SAMPLE_BLOCK_BYTES = 256, 64 * 1024


def sampled_hash(path: Path) -> str:
    """Hash of the size and of 256 blocks of 64 KiB spread evenly over the file (the first and the
    last included): catches truncation always, and any damage that spans a block."""
    size = path.stat().st_size
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        if size <= SAMPLE_BLOCKS * SAMPLE_BLOCK_BYTES:
            h.update(f.read())
        else:
            step = (size - SAMPLE_BLOCK_BYTES) / (SAMPLE_BLOCKS - 1)
            for i in range(SAMPLE_BLOCKS):
                f.seek(int(i * step))
                h.update(f.read(SAMPLE_BLOCK_BYTES))
    return h.hexdigest()


def _temp(folder: Path, suffix: str) -> str:
    fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX + "index-", suffix=suffix, dir=folder)
    os.close(fd)
    return path


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _write_annoy(fingerprints: Iterable[np.ndarray], dim: int, n_trees: int, path: str) -> None:
    """Stream the fingerprints into an ANNOY forest built on disk at `path`; items keep their order."""
    ann = AnnoyIndex(dim, "angular")
    ann.on_disk_build(path)
    item = 0
    for fps in fingerprints:
        for v in fps.astype(np.float32):
            ann.add_item(item, v)
            item += 1
    ann.build(n_trees if item else 1, n_jobs=-1)
    ann.unload()


def _write_ivf(fingerprints: Iterable[np.ndarray], dim: int, codes_path: str, lists_path: str) -> np.ndarray:
    """Quantise the fingerprints to int8 and write them as IVF lists; returns the input row of each
    written row (see `write_ivf`)."""
    codes = [quantise(fps) for fps in fingerprints]
    all_codes = np.empty((sum(len(c) for c in codes), dim), np.int8)
    at = 0
    codes.reverse()
    while codes:  # each chunk is freed as it is copied: the codes are held once, not twice
        c = codes.pop()
        all_codes[at:at + len(c)] = c
        at += len(c)
    return write_ivf(all_codes, Path(codes_path), Path(lists_path))


def index_bytes(kind: str, n_items: int, dim: int, n_trees: int) -> int:
    """About the most disk a generation takes while it is built (what `check_space` asks for first).
    ANNOY: a node of 12 + 4*dim bytes per item plus ~2*n_trees/(dim+2) split nodes per item (measured:
    x1.21 at 192-d, x1.76 at 64-d with 16 trees), and its memory-mapped file grows in steps while
    building, hence x1.5. IVF: one int8 per number. Both: the item map, 8 bytes per item."""
    if kind == "annoy":
        vectors = n_items * (12 + 4 * dim) * (1 + 2 * n_trees / (dim + 2)) * 1.5
    else:
        vectors = n_items * dim * 1.1
    return int(vectors + 8 * n_items + 65536)


def build_index(
    folder: Path,
    generation: int,
    dim: int,
    chunks: Iterable[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]],
    n_trees: int,
    progress: Callable[[int], None] | None = None,
    kind: str = "annoy",
) -> IndexRecord:
    """Write a new generation from `(song_id, fingerprints, start_frames, packed peaks or None)` chunks;
    returns its record.

    Nothing existing is touched: the caller makes the record current, then removes old files.
    """
    names = {"ann": f"index-{generation}.ann" if kind == "annoy" else f"index-{generation}.codes.npy",
             "map": f"index-{generation}.map.npy", "peaks": f"index-{generation}.peaks.u32"}
    if kind == "ivf":
        names["lists"] = f"index-{generation}.lists.npz"
    temps = {key: _temp(folder, "." + name.split(".", 1)[1]) for key, name in names.items()}
    songs, starts, song_ids = [], [], []
    peaks = PeakPackWriter(temps["peaks"])

    def fingerprints():
        """The chunks' fingerprints for the writer; the item map, the peaks and the progress are kept here."""
        for song_id, fps, st, song_peaks in chunks:
            songs.append(np.full(len(st), song_id, np.int32))
            starts.append(st.astype(np.int32))
            song_ids.append(int(song_id))
            peaks.add(song_id, song_peaks)
            yield fps
            if progress:
                progress(1)

    extra: dict = {}
    try:
        if kind == "annoy":
            _write_annoy(fingerprints(), dim, n_trees, temps["ann"])
            rows = None  # ANNOY items stay in the order they came
        else:
            rows = _write_ivf(fingerprints(), dim, temps["ann"], temps["lists"])
        mapping = np.stack([np.concatenate(songs) if songs else np.zeros(0, np.int32),
                            np.concatenate(starts) if starts else np.zeros(0, np.int32)])
        _save_npy(temps["map"], mapping if rows is None else mapping[:, rows])
        peaks.close()
        if peaks.song_ids:
            extra.update(peak_songs=peaks.song_ids, peak_bounds=peaks.bounds)
        else:
            del names["peaks"]
        for key, name in names.items():
            os.replace(temps[key], folder / name)
    finally:
        peaks.close()
        for t in temps.values():
            if os.path.exists(t):
                os.unlink(t)
    paths = {key: folder / name for key, name in names.items()}
    for key in ("lists", "peaks"):
        if key in names:
            extra.update({f"{key}_file": names[key], f"{key}_size": paths[key].stat().st_size,
                          f"{key}_sha256": file_sha256(paths[key]), f"{key}_sampled": sampled_hash(paths[key])})
    return IndexRecord(
        generation, dim, mapping.shape[1], n_trees if kind == "annoy" else 0, names["ann"],
        paths["ann"].stat().st_size, file_sha256(paths["ann"]), names["map"], paths["map"].stat().st_size,
        file_sha256(paths["map"]), song_ids, sampled_hash(paths["ann"]), sampled_hash(paths["map"]), kind=kind, **extra,
    )


class AnnoyVectors:
    """A loaded (memory-mapped) ANNOY forest behind the same two calls as `IvfVectors`."""

    def __init__(self, path: Path, dim: int, n_items: int) -> None:
        self.dim = dim
        self.ann = AnnoyIndex(dim, "angular")
        if n_items:
            self.ann.load(str(path))  # memory-mapped

    def search(self, v: np.ndarray, k: int, search_k: int) -> tuple[np.ndarray, np.ndarray]:
        items, dist = self.ann.get_nns_by_vector(v.astype(np.float32), k, search_k=search_k, include_distances=True)
        return np.asarray(items, np.int64), 1.0 - np.square(np.asarray(dist, np.float32)) / 2.0  # angular -> cosine

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.ann.get_item_vector(int(i)) for i in rows], np.float32).reshape(len(rows), self.dim)

    def unload(self) -> None:
        self.ann.unload()


class LibraryIndex:
    """A loaded index generation, verified against its record."""

    def __init__(self, folder: Path, record: IndexRecord, verify: str = "sampled") -> None:
        """`verify`: "none" (just built), "sampled" (size + sampled hash) or "full" (sha256 too)."""
        self.record = record
        self.folder = folder
        for name, *_ in record.files():
            if not isinstance(name, str) or not _OWN_NAME.fullmatch(name) or (folder / name).is_symlink():
                raise IndexCorrupt(f"{name!r} is not an index file of this library")
        if verify != "none":
            self.verify(full=verify == "full")
        self.map = np.load(folder / record.map_file, allow_pickle=False)
        try:
            self.peaks = PeakPack(folder / record.peaks_file, record.peak_songs, record.peak_bounds) \
                if record.peaks_file else None
        except (PeakPackCorrupt, ValueError, TypeError) as exc:
            raise IndexCorrupt(str(exc)) from None
        self._ranges: dict[int, tuple[int, int]] | None = None  # song id -> its span of `_order`, built on first use
        if record.kind == "ivf":
            self.vectors: AnnoyVectors | IvfVectors = IvfVectors(folder / record.ann_file, folder / record.lists_file)
            self._order = self.vectors.order.astype(np.int64)
        else:
            self.vectors = AnnoyVectors(folder / record.ann_file, record.dim, record.n_items)
            self._order = np.arange(record.n_items, dtype=np.int64)  # ANNOY items are in song/start order

    def verify(self, full: bool = False) -> None:
        """Raise IndexCorrupt unless the files are what the catalog recorded."""
        for name, size, digest, sampled in self.record.files():
            path = self.folder / name
            if not path.exists():
                raise IndexCorrupt(f"{name} is missing")
            if path.stat().st_size != size:
                raise IndexCorrupt(f"{name} has {path.stat().st_size} bytes, expected {size}")
            if sampled and sampled_hash(path) != sampled:
                raise IndexCorrupt(f"{name} does not match its recorded checksum")
            if (full or not sampled) and file_sha256(path) != digest:
                raise IndexCorrupt(f"{name} does not match its recorded sha256")

    def __len__(self) -> int:
        return self.record.n_items

    def query(self, fingerprints: np.ndarray, query_starts: np.ndarray, k: int, search_k: int = -1,
              nprobe: int = 16) -> Neighbours:
        """k nearest tiles of each query fingerprint; `search_k` tunes ANNOY, `nprobe` the IVF index."""
        q = len(fingerprints)
        ids = np.full((q, k), -1, np.int64)
        starts = np.zeros((q, k), np.int64)
        sims = np.zeros((q, k), np.float32)
        effort = nprobe if self.record.kind == "ivf" else search_k
        if self.record.n_items:
            for i, v in enumerate(fingerprints):
                rows, cos = self.vectors.search(v, k, effort)
                n = len(rows)
                ids[i, :n] = self.map[0, rows]
                starts[i, :n] = self.map[1, rows]
                sims[i, :n] = cos
        return Neighbours(ids, starts, sims, np.asarray(query_starts, np.int64))

    def song_tiles(self, song_id: int, first_frame: int, last_frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Fingerprints and start frames of one song's tiles starting in [first_frame, last_frame].

        Read back from the index itself, so a re-scored candidate is compared with exactly what the
        search saw (for the IVF index: the int8 codes).
        """
        if self._ranges is None:
            ids = self.map[0, self._order]
            cut = np.flatnonzero(np.diff(ids)) + 1
            firsts = np.concatenate([[0], cut]).astype(np.int64)
            lasts = np.concatenate([cut, [len(ids)]]).astype(np.int64)
            self._ranges = {int(ids[a]): (int(a), int(b)) for a, b in zip(firsts, lasts)} if len(ids) else {}
        first, end = self._ranges.get(int(song_id), (0, 0))
        rows = self._order[first:end]
        starts = self.map[1, rows]
        lo, hi = np.searchsorted(starts, first_frame, "left"), np.searchsorted(starts, last_frame, "right")
        return self.vectors.vectors(rows[lo:hi]), starts[lo:hi].astype(np.int64)

    def unload(self) -> None:
        self.vectors.unload()
        self.peaks = None
