"""The ANNOY index over all library tiles, built atomically and verified on load.

An index generation is two files: `index-<gen>.ann` (ANNOY, angular) and `index-<gen>.map.npy`
(song id and start frame of each ANNOY item). A new generation is written under temp names, renamed
into place, and only then made current in the catalog, so the previous index answers until the
moment the new one is complete. The catalog records each file's size, sha256 and a sampled hash:
ANNOY memory-maps whatever it is given, so a truncated or altered file must be caught before it is
loaded. Opening checks the size and the sampled hash (256 blocks spread over the file: ~15 ms at any
size, where a full sha256 of a 10 000-song index takes seconds, see bench/RESULTS.md); the full
sha256 is checked by `verify()` (`shazamlet library info --verify`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from annoy import AnnoyIndex

from shazamlet.matcher import Neighbours


class IndexCorrupt(Exception):
    """The index files on disk do not match what the catalog recorded."""


@dataclass
class IndexRecord:
    """What the catalog stores about the current index generation."""

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


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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


def build_index(
    folder: Path,
    generation: int,
    dim: int,
    chunks: Iterable[tuple[int, np.ndarray, np.ndarray]],
    n_trees: int,
    progress: Callable[[int], None] | None = None,
) -> IndexRecord:
    """Write a new generation from `(song_id, fingerprints, start_frames)` chunks; returns its record.

    Nothing existing is touched: the caller makes the record current, then removes old files.
    """
    ann = AnnoyIndex(dim, "angular")
    fd, tmp_ann = tempfile.mkstemp(prefix=".tmp-index-", suffix=".ann", dir=folder)
    os.close(fd)
    ann.on_disk_build(tmp_ann)
    songs, starts, song_ids = [], [], []
    item = 0
    try:
        for song_id, fps, st in chunks:
            for v in fps.astype(np.float32):
                ann.add_item(item, v)
                item += 1
            songs.append(np.full(len(st), song_id, np.int32))
            starts.append(st.astype(np.int32))
            song_ids.append(int(song_id))
            if progress:
                progress(1)
        ann.build(n_trees if item else 1, n_jobs=-1)
        ann.unload()
        mapping = np.stack([np.concatenate(songs) if songs else np.zeros(0, np.int32),
                            np.concatenate(starts) if starts else np.zeros(0, np.int32)])
        fd, tmp_map = tempfile.mkstemp(prefix=".tmp-index-", suffix=".map.npy", dir=folder)
        with os.fdopen(fd, "wb") as f:
            np.save(f, mapping, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        ann_file, map_file = f"index-{generation}.ann", f"index-{generation}.map.npy"
        os.replace(tmp_ann, folder / ann_file)
        os.replace(tmp_map, folder / map_file)
    finally:
        for t in (tmp_ann,):
            if os.path.exists(t):
                os.unlink(t)
    ann_path, map_path = folder / ann_file, folder / map_file
    return IndexRecord(
        generation, dim, item, n_trees, ann_file, ann_path.stat().st_size, sha256_of(ann_path),
        map_file, map_path.stat().st_size, sha256_of(map_path), song_ids, sampled_hash(ann_path), sampled_hash(map_path),
    )


class LibraryIndex:
    """A loaded (memory-mapped) index generation, verified against its record."""

    def __init__(self, folder: Path, record: IndexRecord, verify: str = "sampled") -> None:
        """`verify`: "none" (just built), "sampled" (size + sampled hash) or "full" (sha256 too)."""
        self.record = record
        self.folder = folder
        ann_path, map_path = folder / record.ann_file, folder / record.map_file
        if verify != "none":
            self.verify(full=verify == "full")
        self.map = np.load(map_path, allow_pickle=False)
        self._ranges: dict[int, tuple[int, int]] | None = None  # song id -> its items, built on first use
        self.ann = AnnoyIndex(record.dim, "angular")
        if record.n_items:
            self.ann.load(str(ann_path))  # memory-mapped

    def verify(self, full: bool = False) -> None:
        """Raise IndexCorrupt unless the files are what the catalog recorded."""
        r = self.record
        for name, size, digest, sampled in ((r.ann_file, r.ann_size, r.ann_sha256, r.ann_sampled),
                                            (r.map_file, r.map_size, r.map_sha256, r.map_sampled)):
            path = self.folder / name
            if not path.exists():
                raise IndexCorrupt(f"{name} is missing")
            if path.stat().st_size != size:
                raise IndexCorrupt(f"{name} has {path.stat().st_size} bytes, expected {size}")
            if sampled and sampled_hash(path) != sampled:
                raise IndexCorrupt(f"{name} does not match its recorded checksum")
            if (full or not sampled) and sha256_of(path) != digest:
                raise IndexCorrupt(f"{name} does not match its recorded sha256")

    def __len__(self) -> int:
        return self.record.n_items

    def query(self, fingerprints: np.ndarray, query_starts: np.ndarray, k: int, search_k: int = -1) -> Neighbours:
        q = len(fingerprints)
        ids = np.full((q, k), -1, np.int64)
        starts = np.zeros((q, k), np.int64)
        sims = np.zeros((q, k), np.float32)
        if self.record.n_items:
            for i, v in enumerate(fingerprints):
                items, dist = self.ann.get_nns_by_vector(v.astype(np.float32), k, search_k=search_k,
                                                         include_distances=True)
                n = len(items)
                ids[i, :n] = self.map[0, items]
                starts[i, :n] = self.map[1, items]
                sims[i, :n] = 1.0 - np.square(dist) / 2.0  # angular distance -> cosine
        return Neighbours(ids, starts, sims, np.asarray(query_starts, np.int64))

    def song_tiles(self, song_id: int, first_frame: int, last_frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Fingerprints and start frames of one song's tiles starting in [first_frame, last_frame].

        Read back from the index itself (a song's tiles are consecutive items in start order), so a
        re-scored candidate is compared with exactly what the search saw.
        """
        if self._ranges is None:
            ids = self.map[0]
            cut = np.flatnonzero(np.diff(ids)) + 1
            firsts = np.concatenate([[0], cut]).astype(np.int64)
            lasts = np.concatenate([cut, [len(ids)]]).astype(np.int64)
            self._ranges = {int(ids[a]): (int(a), int(b)) for a, b in zip(firsts, lasts)} if len(ids) else {}
        first, end = self._ranges.get(int(song_id), (0, 0))
        starts = self.map[1, first:end]
        lo, hi = np.searchsorted(starts, first_frame, "left"), np.searchsorted(starts, last_frame, "right")
        items = range(first + int(lo), first + int(hi))
        fps = np.array([self.ann.get_item_vector(i) for i in items], np.float32).reshape(len(items), self.record.dim)
        return fps, starts[lo:hi].astype(np.int64)

    def unload(self) -> None:
        self.ann.unload()
